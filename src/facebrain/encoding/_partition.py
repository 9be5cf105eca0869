"""variance_partition(): unique and shared held-out R2 of two or three feature spaces."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import xarray as xr

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError, ShapeError, StimulusMismatchError
from ._banded import banded_ridge_cv, default_gammas, predict_banded
from ._evaluate import (
    _brain_2d,
    _groups,
    _scores,
    _voxel_coords,
    inner_folds,
    layer_matrix,
    outer_folds,
    resolve_groups,
    warn_mixed_identities,
)
from ._ridge_encoder import DEFAULT_ALPHAS, check_alphas

__all__ = ["partition_r2", "variance_partition"]


def partition_r2(r2: dict) -> dict:
    """Set-theoretic (Venn) decomposition of union R2s.

    Parameters
    ----------
    r2 : dict
        ``frozenset(names) -> r2`` for every non-empty union of 2 or 3 spaces.

    Returns
    -------
    dict
        ``"unique:A"``, ``"shared:A&B"`` (shared by exactly A and B) and, with three
        spaces, ``"shared:A&B&C"``; the parts sum to the full union's R2.
    """
    names = sorted(set().union(*r2))
    full = frozenset(names)
    out = {}
    if len(names) == 2:
        a, b = names
        A, B, AB = r2[frozenset([a])], r2[frozenset([b])], r2[full]
        out[f"unique:{a}"] = AB - B
        out[f"unique:{b}"] = AB - A
        out[f"shared:{a}&{b}"] = A + B - AB
        return out
    if len(names) != 3:
        raise ParameterError(f"variance partitioning takes 2 or 3 feature spaces; got "
                             f"{names}. Give R2s of every union of 2 or 3 spaces.")
    R = {k: v for k, v in r2.items()}

    def r(*s):
        return R[frozenset(s)]

    a, b, c = names
    for x in names:
        others = [y for y in names if y != x]
        out[f"unique:{x}"] = r(a, b, c) - r(*others)
    for x, y in combinations(names, 2):
        z = next(w for w in names if w not in (x, y))
        # in x and y but not z: R(x,z) + R(y,z) - R(z) - R(x,y,z)
        out[f"shared:{x}&{y}"] = r(x, z) + r(y, z) - r(z) - r(a, b, c)
    out[f"shared:{a}&{b}&{c}"] = (r(a) + r(b) + r(c) - r(a, b) - r(a, c) - r(b, c)
                                  + r(a, b, c))
    return out


def _feature_matrix(name, spec, ids):
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], xr.Dataset):
        acts, layer = spec
        aids = [str(s) for s in acts["stimulus"].values]
        missing = sorted(set(ids) - set(aids))
        if missing:
            raise StimulusMismatchError(f"feature set {name!r} lacks stimuli {missing[:5]} "
                                        f"({len(missing)} in all); every set needs the "
                                        "brain's stimuli.")
        acts = acts.assign_coords(stimulus=np.asarray(aids, dtype=object)).sel(stimulus=ids)
        return layer_matrix(acts, layer)
    X = np.asarray(spec, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(ids):
        raise ShapeError(f"feature set {name!r} has shape {X.shape}; an array must be "
                         f"(n_stimuli={len(ids)}, n_features) in the brain's stimulus order.")
    return X


def _unit_scale(X_train, X_test):
    """Centre and scale both parts by the training part's mean and total standard deviation."""
    mu = X_train.mean(0)
    tot = np.sqrt(((X_train - mu) ** 2).sum() / X_train.shape[0])
    tot = tot if tot > 0 else 1.0
    return (X_train - mu) / tot, (X_test - mu) / tot


def _union_task(Xs, Y, folds, alphas, gammas, groups, inner_cv):
    """Held-out predictions of banded ridge on one union: spaces scaled inside each outer fold,
    (gamma, alpha) per voxel chosen by the (grouped) inner CV of the training part."""
    pred = np.full(Y.shape, np.nan)
    deltas = np.empty((len(folds), len(Xs), Y.shape[1]))
    for k, (tr, te) in enumerate(folds):
        parts = [_unit_scale(X[tr], X[te]) for X in Xs]
        Xtr, Xte = [p[0] for p in parts], [p[1] for p in parts]
        g = None if groups is None else groups[tr]
        inner = inner_folds(inner_cv, np.concatenate(Xtr, axis=1), Y[tr], g)
        fit = banded_ridge_cv(Xtr, Y[tr], inner, alphas, gammas)
        pred[te] = predict_banded(Xte, fit)
        deltas[k] = fit["deltas"]
    return pred, deltas


@public
def variance_partition(
    feature_sets: dict,
    brain: xr.DataArray,
    *,
    cv="leave-identity-out",
    n_folds: int = 5,
    alphas=DEFAULT_ALPHAS,
    inner_cv: int = 5,
    groups=None,
    batch_size: int | None = None,
    seed: int = 0,
    client=None,
    gammas=None,
) -> xr.Dataset:
    """Unique and shared variance of 2 or 3 feature spaces, by fitting every union.

    Inside each outer fold, every space is centred and scaled to unit total
    variance with the training stimuli's statistics; a union is fitted by
    banded ridge (one penalty per space, chosen per voxel with ``alphas`` x
    ``gammas`` by an inner CV that never splits an identity; equal to himalaya's
    ``BandedRidgeCV`` on the same grid), so a union is never worse than its best
    member for want of a shared penalty. All unions use the same outer folds and
    the held-out R2s are decomposed set-theoretically (:func:`partition_r2`).

    Parameters
    ----------
    feature_sets : dict
        name -> ``(Activations, layer)`` or ndarray (n_stimuli, n_features) in the
        brain's stimulus order.
    brain : BrainResponses
    groups : array-like of shape (n_stimuli,), optional
        Identities for leave-identity-out and for the inner CV (default: the brain's
        or the first Activations' ``identity`` coordinate).
    gammas : ndarray of shape (n_gammas, n_spaces_in_union), optional
        Not used directly: each union of ``k`` spaces searches
        :func:`~facebrain.encoding._banded.default_gammas` ``(k)`` unless a dict
        ``{k: array}`` is given.
    batch_size : int, optional
        Voxels per task (dask); default all voxels of a union in one task.

    Returns
    -------
    xr.Dataset
        ``r2_union(union, voxel)`` and ``partition(part, voxel)``; voxel coords copied.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from facebrain.encoding import variance_partition
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    >>> brain = xr.DataArray(a @ rng.normal(size=(3, 2)), dims=("stimulus", "voxel"),
    ...                      coords={"stimulus": [f"s{i}" for i in range(30)]})
    >>> res = variance_partition({"a": a, "b": b}, brain, cv="kfold", n_folds=3, inner_cv=3)
    >>> [str(p) for p in res["part"].values]
    ['unique:a', 'unique:b', 'shared:a&b']
    """
    if not isinstance(feature_sets, Mapping):
        raise ParameterTypeError(
            f"feature_sets must be a dict {{name: Activations or (Activations, layer)}}; got "
            f"{type(feature_sets).__name__}.")
    alphas = check_alphas(alphas)
    names = list(feature_sets)
    if len(names) not in (2, 3):
        raise ParameterError(f"feature_sets has {len(names)} spaces ({names}); give 2 or 3.")
    if any("&" in n or "+" in n for n in names):
        raise ParameterError(f"feature set names may not contain '&' or '+': {names}; "
                             "rename them.")
    brain = _brain_2d(brain)
    ids = [str(s) for s in brain["stimulus"].values]
    if len(ids) < 3:
        raise ParameterError(f"the brain responses have {len(ids)} stimuli; need at least 3. "
                             "Pass responses to more stimuli.")
    Xs = {n: _feature_matrix(n, feature_sets[n], ids) for n in names}
    for spec in feature_sets.values():
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], xr.Dataset):
            from ..activations import check_pca_leakage

            acts = spec[0].assign_coords(stimulus=np.asarray(
                [str(i) for i in spec[0]["stimulus"].values], dtype=object))
            check_pca_leakage(acts.sel(stimulus=ids), [spec[1]],
                              analysis="encoding.variance_partition")
    Y = np.asarray(brain.values, dtype=np.float64)
    if groups is None:
        groups = _groups(None, brain)
        first_acts = next((s[0] for s in feature_sets.values() if isinstance(s, tuple)), None)
        if groups is None and first_acts is not None and "identity" in first_acts.coords:
            ident = dict(zip(map(str, first_acts["stimulus"].values),
                             map(str, first_acts["identity"].values)))
            groups = np.array([ident[i] for i in ids])
    groups = None if groups is None else resolve_groups(groups, None, brain, len(ids))
    warn_mixed_identities(cv, groups, "encoding.variance_partition")
    folds = outer_folds(cv, n_folds, Y.shape[0], groups, seed)
    unions = [c for k in range(1, len(names) + 1) for c in combinations(names, k)]
    grids = {k: (gammas[k] if isinstance(gammas, dict) and k in gammas else default_gammas(k))
             for k in range(1, len(names) + 1)}
    nv = Y.shape[1]
    bs = nv if batch_size is None else max(1, int(batch_size))
    blocks = [slice(a, min(a + bs, nv)) for a in range(0, nv, bs)]
    jobs = [(u, b) for u in unions for b in blocks]
    args = [([Xs[n] for n in u], Y[:, b], folds, alphas, grids[len(u)], groups, inner_cv)
            for u, b in jobs]
    if client is None:
        outs = [_union_task(*a) for a in args]
    else:
        outs = client.gather([client.submit(_union_task, *a, pure=False) for a in args])
    preds = {u: np.concatenate([o[0] for (uu, _), o in zip(jobs, outs) if uu == u], axis=1)
             for u in unions}
    r2 = {frozenset(u): _scores(Y, preds[u])[0] for u in unions}
    parts = partition_r2(r2)
    return xr.Dataset(
        {
            "r2_union": (("union", "voxel"), np.array([r2[frozenset(u)] for u in unions])),
            "partition": (("part", "voxel"), np.array(list(parts.values()))),
        },
        coords={"union": ["+".join(u) for u in unions], "part": list(parts),
                **_voxel_coords(brain)},
        attrs={"sets": names, "cv": cv if isinstance(cv, str) else type(cv).__name__,
               "n_folds": len(folds), "alphas": [float(a) for a in alphas],
               "scaling": "each space centred and scaled to unit total variance with the "
                          "training stimuli of each outer fold",
               "model": "banded ridge (one penalty per space; alphas x gammas grid, "
                        "himalaya BandedRidgeCV parameterisation)",
               "inner_groups": "identity groups" if groups is not None else "none",
               "decomposition": "set-theoretic (Venn) on held-out R2 of every union"},
    )
