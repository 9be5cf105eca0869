"""variance_partition(): unique and shared held-out R2 of two or three feature spaces."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import xarray as xr

from ._evaluate import (
    _brain_2d,
    _groups,
    _run_blocks,
    _scores,
    _voxel_coords,
    layer_matrix,
    outer_folds,
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
        raise ValueError(f"variance partitioning takes 2 or 3 feature spaces; got {names}.")
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
            raise ValueError(f"feature set {name!r} lacks stimuli {missing[:5]} "
                             f"({len(missing)} in all); every set needs the brain's stimuli.")
        acts = acts.assign_coords(stimulus=np.asarray(aids, dtype=object)).sel(stimulus=ids)
        return layer_matrix(acts, layer)
    X = np.asarray(spec, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(ids):
        raise ValueError(f"feature set {name!r} has shape {X.shape}; an array must be "
                         f"(n_stimuli={len(ids)}, n_features) in the brain's stimulus order.")
    return X


def _unit_scale(X):
    """Centre and scale to unit total variance so each space weighs the same in a union."""
    Xc = X - X.mean(0)
    tot = np.sqrt((Xc**2).sum() / X.shape[0])
    return Xc / tot if tot > 0 else Xc


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
) -> xr.Dataset:
    """Unique and shared variance of 2 or 3 feature spaces, by fitting every union.

    Each space is centred and scaled to unit total variance, unions are the
    concatenated spaces; every union gets the same cross-validated per-voxel
    ridge as :func:`evaluate` (same outer folds), and the held-out R2s are
    decomposed set-theoretically (:func:`partition_r2`).

    Parameters
    ----------
    feature_sets : dict
        name -> ``(Activations, layer)`` or ndarray (n_stimuli, n_features) in the
        brain's stimulus order.
    brain : BrainResponses
    groups : array-like of shape (n_stimuli,), optional
        Identities for leave-identity-out (default: the brain's or the first
        Activations' ``identity`` coordinate).

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
    alphas = check_alphas(alphas)
    names = list(feature_sets)
    if len(names) not in (2, 3):
        raise ValueError(f"feature_sets has {len(names)} spaces ({names}); give 2 or 3.")
    if any("&" in n or "+" in n for n in names):
        raise ValueError(f"feature set names may not contain '&' or '+': {names}.")
    brain = _brain_2d(brain)
    ids = [str(s) for s in brain["stimulus"].values]
    if len(ids) < 3:
        raise ValueError(f"the brain responses have {len(ids)} stimuli; need at least 3.")
    Xs = {n: _unit_scale(_feature_matrix(n, feature_sets[n], ids)) for n in names}
    Y = np.asarray(brain.values, dtype=np.float64)
    if groups is None and cv == "leave-identity-out":
        groups = _groups(None, brain)
        first_acts = next((s[0] for s in feature_sets.values() if isinstance(s, tuple)), None)
        if groups is None and first_acts is not None and "identity" in first_acts.coords:
            ident = dict(zip(map(str, first_acts["stimulus"].values),
                             map(str, first_acts["identity"].values)))
            groups = np.array([ident[i] for i in ids])
    groups = None if groups is None else np.asarray(groups).astype(str)
    folds = outer_folds(cv, n_folds, Y.shape[0], groups, seed)
    unions = [c for k in range(1, len(names) + 1) for c in combinations(names, k)]
    U = {"+".join(u): np.concatenate([Xs[n] for n in u], axis=1) for u in unions}
    res = _run_blocks(U, Y, folds, alphas, groups if cv == "leave-identity-out" else None,
                      inner_cv, True, "auto", "neg_mse", batch_size, client)
    r2 = {frozenset(u): _scores(Y, res["+".join(u)][0])[0] for u in unions}
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
               "scaling": "each space centred and scaled to unit total variance",
               "decomposition": "set-theoretic (Venn) on held-out R2 of every union"},
    )
