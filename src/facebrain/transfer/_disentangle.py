"""Disentanglement per layer: cross-condition decoding, factor variance, subspace angles."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from .._boundary import public
from .._deprecation import user_stacklevel
from ..activations import _accessor  # noqa: F401  (registers acts.fb, used below)
from ..errors import MissingKeyError, ParameterError, ShapeError
from ._cv import _table
from ._heads import blas_threads_for, make_probe_pipeline
from ._probe import _layers, _target

__all__ = ["cross_decode", "factor_variance", "subspace_angles"]

_CHUNK_UNITS = 8192


def _select(table, selector, name: str) -> np.ndarray:
    """Boolean mask over stimuli from a query string, a mask or a list of ids."""
    n = len(table)
    if isinstance(selector, str):
        try:
            picked = table.query(selector).index
        except Exception as err:  # pandas raises many types for a bad query
            raise ParameterError(
                f"{name}={selector!r} could not be evaluated on the stimulus labels "
                f"{list(table.columns)}: {err}"
            ) from err
        return table.index.isin(picked)
    sel = np.asarray(selector)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise ShapeError(f"{name} mask has shape {sel.shape}; expected ({n},)")
        return sel
    ids = set(map(str, sel.tolist()))
    unknown = sorted(ids - set(table.index))
    if unknown:
        raise MissingKeyError(f"{name} names stimulus ids not in the Activations: {unknown[:5]}")
    return table.index.isin(list(ids))


@public
def cross_decode(acts: xr.Dataset, target: str, *, train, test, layers=None, head="logistic",
                 standardize: bool = True, reduce: str | None = None, seed: int = 0,
                 head_kw: dict | None = None) -> xr.Dataset:
    """Train a ``target`` read-out on one condition set and test it on another.

    Parameters
    ----------
    acts : Activations
    target : str
        Label to decode.
    train, test : str, boolean mask or list of stimulus ids
        The two condition sets; a string is a pandas query on the stimulus
        labels, e.g. ``train="view == 'S'"``, ``test="view != 'S'"``. They must
        not share stimuli.
    layers, head, standardize, reduce, seed, head_kw
        As in :func:`probe`.

    Returns
    -------
    xarray.Dataset
        ``accuracy(layer)``, ``chance`` (majority-class rate of the test set),
        ``confusion(layer, true, predicted)``, ``prediction(layer, test_stimulus)``;
        attrs ``target``, ``train``, ``test``, ``head``.

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> r = cross_decode(acts, "expression", train="view == 'S'", test="view == 'HL'")
    >>> r["accuracy"].sizes["layer"], float(r["chance"]) > 0
    (2, True)
    """
    layers = _layers(acts, layers)
    y, classes = _target(acts, target)
    table = _table(acts)
    tr = _select(table, train, "train")
    te = _select(table, test, "test")
    if not tr.any() or not te.any():
        raise ParameterError(f"train selects {tr.sum()} and test {te.sum()} stimuli; need both > 0")
    both = np.flatnonzero(tr & te)
    if len(both):
        raise ParameterError(
            f"train and test share {len(both)} stimuli (e.g. {list(table.index[both[:3]])}); "
            "cross-decoding must test on stimuli never used for training"
        )
    missing = sorted(set(y[te].tolist()) - set(y[tr].tolist()))
    if missing:
        raise ParameterError(
            f"test contains {target} class(es) {[classes[c] for c in missing]} that never occur "
            "in train; the head cannot predict them. Drop them from test or widen train."
        )
    if len(set(y[tr].tolist())) < 2:
        raise ParameterError(f"train holds a single {target} class; need at least 2")
    n_cls = len(classes)
    acc = np.empty(len(layers))
    conf = np.zeros((len(layers), n_cls, n_cls), np.int64)
    preds = np.empty((len(layers), int(te.sum())), np.int64)
    for i, layer in enumerate(layers):
        X = acts.fb.matrix(layer)
        pipe = make_probe_pipeline(head, standardize=standardize, reduce=reduce, seed=seed,
                             head_kw=head_kw)
        with blas_threads_for(X):
            pipe.fit(X[tr], y[tr])
            p = pipe.predict(X[te])
        preds[i] = p
        acc[i] = np.mean(p == y[te])
        np.add.at(conf[i], (y[te], p), 1)
    cls = np.asarray(classes, dtype=str)
    chance = np.bincount(y[te], minlength=n_cls).max() / te.sum()
    return xr.Dataset(
        {
            "accuracy": ("layer", acc),
            "chance": ((), float(chance)),
            "confusion": (("layer", "true", "predicted"), conf),
            "prediction": (("layer", "test_stimulus"), cls[preds]),
        },
        coords={"layer": np.asarray(layers, dtype=str), "true": cls, "predicted": cls,
                "test_stimulus": np.asarray(table.index[te], dtype=str)},
        attrs={"target": target, "train": str(train) if isinstance(train, str) else "ids/mask",
               "test": str(test) if isinstance(test, str) else "ids/mask",
               "n_train": int(tr.sum()), "n_test": int(te.sum()),
               "head": head if isinstance(head, str) else type(head).__name__,
               "model": str(acts.attrs.get("model", "")),
               "chance_method": "majority-class rate of the test set"},
    )


# ------------------------------------------------------------------ factor variance
def _orth_basis(D: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of column-centred ``D``."""
    D = D - D.mean(axis=0)
    if D.shape[1] == 0:
        return D
    U, s, _ = np.linalg.svd(D, full_matrices=False)
    tol = s.max() * max(D.shape) * np.finfo(float).eps if s.size else 0
    return U[:, s > tol]


def _onehot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(codes), k))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _unit_chunks(acts, layer):
    da = acts[layer]
    n_units = da.shape[1]
    for a in range(0, n_units, _CHUNK_UNITS):
        yield np.asarray(da[:, a:a + _CHUNK_UNITS].values, dtype=np.float64)


@public
def factor_variance(acts: xr.Dataset, factors=("identity", "expression"), *,
                    layers=None) -> xr.Dataset:
    """Fraction of unit variance explained by two factors and their interaction, per layer.

    For each unit the total sum of squares around the unit mean is split into
    ``A`` (first factor), ``B`` (second), ``A:B`` (interaction) and residual
    (within-cell). In a balanced design (every cell, equal counts) this is the
    classical two-way ANOVA decomposition. Unbalanced designs (missing cells or
    unequal counts) use sequential (type-I) sums of squares, ``A`` first: the
    four parts still sum to the total and are never NaN, but depend on the
    order of ``factors``; a warning says so. Per-layer fractions average the
    units weighted by their variance: ``sum_u SS_x,u / sum_u SS_total,u``.

    Parameters
    ----------
    acts : Activations
    factors : (str, str)
        Two stimulus labels.
    layers : list of str, optional

    Returns
    -------
    xarray.Dataset
        ``fraction(layer, component)`` with components ``(A, B, "A:B", "residual")``
        named after the factors, and ``ss_total(layer)``; attrs ``balanced``, ``method``.

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> fv = factor_variance(acts)
    >>> [str(c) for c in fv["component"].values]
    ['identity', 'expression', 'identity:expression', 'residual']
    >>> bool(np.allclose(fv.fraction.sum("component"), 1.0))
    True
    """
    if len(factors) != 2:
        raise ParameterError(f"factors must name two stimulus labels; got {factors!r}")
    fa, fb = map(str, factors)
    layers = _layers(acts, layers)
    a, cats_a = acts.fb.labels(fa)
    b, cats_b = acts.fb.labels(fb)
    la, lb = len(cats_a), len(cats_b)
    cell = a * lb + b
    counts = np.bincount(cell, minlength=la * lb)
    balanced = bool(counts.min() > 0 and counts.min() == counts.max())
    if not balanced:
        n_empty = int((counts == 0).sum())
        warnings.warn(
            f"factor_variance: the {fa} x {fb} design is unbalanced ({n_empty} empty cells of "
            f"{la * lb}, cell sizes {counts[counts > 0].min()}..{counts.max()}); using "
            f"sequential (type-I) sums of squares with {fa} entered first, so the split "
            f"between {fa} and {fb} depends on that order",
            UserWarning, stacklevel=user_stacklevel(),
        )
    Qa = _orth_basis(_onehot(a, la))
    Qab = _orth_basis(np.hstack([_onehot(a, la), _onehot(b, lb)]))
    Qc = _orth_basis(_onehot(cell, la * lb))
    comps = [fa, fb, f"{fa}:{fb}", "residual"]
    frac = np.zeros((len(layers), 4))
    ss_tot = np.zeros(len(layers))
    for i, layer in enumerate(layers):
        ss = np.zeros(4)
        for Y in _unit_chunks(acts, layer):
            Yc = Y - Y.mean(axis=0)
            tot = (Yc ** 2).sum(axis=0)
            s_a = ((Qa.T @ Yc) ** 2).sum(axis=0)
            s_ab = ((Qab.T @ Yc) ** 2).sum(axis=0)
            s_c = ((Qc.T @ Yc) ** 2).sum(axis=0)
            parts = np.stack([s_a, s_ab - s_a, s_c - s_ab, tot - s_c])
            ss += np.clip(parts, 0, None).sum(axis=1)
            ss_tot[i] += tot.sum()
        if ss.sum() > 0:
            frac[i] = ss / ss.sum()
        else:
            warnings.warn(f"factor_variance: layer {layer!r} has zero variance; fractions set "
                          "to 0", UserWarning, stacklevel=user_stacklevel())
    return xr.Dataset(
        {"fraction": (("layer", "component"), frac), "ss_total": ("layer", ss_tot)},
        coords={"layer": np.asarray(layers, dtype=str), "component": np.asarray(comps, str)},
        attrs={"factors": [fa, fb], "balanced": int(balanced),
               "method": "two-way ANOVA sums of squares (type-I if unbalanced), "
                         "variance-weighted average over units",
               "model": str(acts.attrs.get("model", ""))},
    )


# -------------------------------------------------------------------- subspaces
def _between_class(acts, layer, codes, k):
    """sqrt(n_c)-weighted class-mean deviations, shape (k, n_units)."""
    counts = np.bincount(codes, minlength=k).astype(float)
    H = _onehot(codes, k) / counts  # (n, k) averaging weights
    parts = []
    for Y in _unit_chunks(acts, layer):
        Yc = Y - Y.mean(axis=0)
        parts.append((H.T @ Yc) * np.sqrt(counts)[:, None])
    return np.hstack(parts)


def _basis(G: np.ndarray, n_components: int | None) -> np.ndarray:
    _, s, Vt = np.linalg.svd(G, full_matrices=False)
    tol = (s.max() if s.size else 0) * max(G.shape) * np.finfo(float).eps
    r = int((s > tol).sum())
    if n_components is not None:
        r = min(r, int(n_components))
    return Vt[:r].T


@public
def subspace_angles(acts: xr.Dataset, factor_a: str = "identity",
                    factor_b: str = "expression", *, layers=None,
                    n_components: int | None = None) -> xr.Dataset:
    """Principal angles between the two factors' discriminant subspaces, per layer.

    Each factor's subspace is spanned by its class-mean directions (the range of
    the between-class scatter ``S = sum_c n_c (m_c - m)(m_c - m)^T``, as in LDA),
    truncated to its top ``n_components`` directions if given. Angles come from
    :func:`scipy.linalg.subspace_angles` (0 deg: shared direction, 90 deg:
    orthogonal). ``congruence`` is Tucker's congruence coefficient between the two
    between-class scatter matrices, ``<S_a, S_b>_F / (|S_a|_F |S_b|_F)``: 1 when
    both factors vary the same units in the same proportions, 0 when their
    subspaces are orthogonal.

    Parameters
    ----------
    acts : Activations
    factor_a, factor_b : str
        Stimulus labels.
    layers : list of str, optional
    n_components : int, optional
        Keep at most this many directions per factor.

    Returns
    -------
    xarray.Dataset
        ``angle(layer, angle_index)`` in degrees, ascending (NaN-padded when layers
        differ in dimension), ``min_angle``, ``mean_angle``, ``congruence``,
        ``n_dims_a``, ``n_dims_b`` (all per layer).

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> sa = subspace_angles(acts, "identity", "expression")
    >>> bool(((sa["min_angle"] >= 0) & (sa["min_angle"] <= 90)).all())
    True
    """
    from scipy.linalg import subspace_angles as _angles

    layers = _layers(acts, layers)
    a, cats_a = acts.fb.labels(factor_a)
    b, cats_b = acts.fb.labels(factor_b)
    for f, cats in ((factor_a, cats_a), (factor_b, cats_b)):
        if len(cats) < 2:
            raise ParameterError(f"{f!r} has a single value {cats}; its subspace is empty")
    all_angles, rows = [], []
    for layer in layers:
        Ga = _between_class(acts, layer, a, len(cats_a))
        Gb = _between_class(acts, layer, b, len(cats_b))
        Ba, Bb = _basis(Ga, n_components), _basis(Gb, n_components)
        if Ba.shape[1] == 0 or Bb.shape[1] == 0:
            ang = np.array([])
        else:
            ang = np.sort(np.degrees(_angles(Ba, Bb)))
        cross = np.linalg.norm(Ga @ Gb.T) ** 2
        na, nb = np.linalg.norm(Ga @ Ga.T), np.linalg.norm(Gb @ Gb.T)
        cong = cross / (na * nb) if na > 0 and nb > 0 else 0.0
        all_angles.append(ang)
        rows.append((Ba.shape[1], Bb.shape[1], cong))
    m = max((len(x) for x in all_angles), default=0)
    angle = np.full((len(layers), m), np.nan)
    for i, x in enumerate(all_angles):
        angle[i, :len(x)] = x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mn = np.array([x.min() if len(x) else np.nan for x in all_angles])
        mean = np.array([x.mean() if len(x) else np.nan for x in all_angles])
    return xr.Dataset(
        {
            "angle": (("layer", "angle_index"), angle),
            "min_angle": ("layer", mn),
            "mean_angle": ("layer", mean),
            "congruence": ("layer", np.array([r[2] for r in rows])),
            "n_dims_a": ("layer", np.array([r[0] for r in rows])),
            "n_dims_b": ("layer", np.array([r[1] for r in rows])),
        },
        coords={"layer": np.asarray(layers, dtype=str), "angle_index": np.arange(m)},
        attrs={"factor_a": factor_a, "factor_b": factor_b, "units": "degrees",
               "subspace": "span of between-class (class-mean) directions",
               "model": str(acts.attrs.get("model", ""))},
    )
