"""evaluate() and fit(): voxelwise encoding of BrainResponses from Activations layers."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from sklearn.model_selection import GroupKFold, KFold

from .._boundary import public
from .._deprecation import renamed_kwargs, user_stacklevel
from .._utils import shared_stimulus_ids
from ..errors import (
    DataFormatError,
    LeakageError,
    MissingKeyError,
    ParameterError,
    ShapeError,
    StimulusMismatchError,
)
from ._ridge_encoder import (
    DEFAULT_ALPHAS,
    EDGE_FRACTION,
    AlphaGridWarning,
    RidgeEncoder,
    check_alphas,
    check_grid_edges,
)

__all__ = ["FittedEncoder", "align_inputs", "cv_predict", "evaluate", "fit", "inner_folds",
           "layer_matrix", "outer_folds", "resolve_groups", "warn_mixed_identities"]

CV_SCHEMES = ("leave-identity-out", "kfold")


def layer_matrix(acts: xr.Dataset, layer: str) -> np.ndarray:
    """``acts[layer]`` as a float array of shape (n_stimuli, n_units)."""
    if layer not in acts.data_vars:
        raise MissingKeyError(f"layer {layer!r} is not in the Activations; available layers: "
                              f"{sorted(map(str, acts.data_vars))}. Pick one of these or "
                              "extract the layer.")
    da = acts[layer]
    if da.ndim != 2 or "stimulus" not in da.dims:
        raise DataFormatError(f"Activations variable {layer!r} has dims {da.dims}; expected "
                              f"('stimulus', '{layer}_unit').")
    other = next(d for d in da.dims if d != "stimulus")
    return np.asarray(da.transpose("stimulus", other).values, dtype=np.float64)


def _brain_2d(brain: xr.DataArray) -> xr.DataArray:
    if not isinstance(brain, xr.DataArray) or "stimulus" not in brain.dims or \
            "voxel" not in brain.dims:
        raise DataFormatError("brain must be BrainResponses: an xr.DataArray with dims "
                              "('stimulus', 'voxel') or ('stimulus', 'repeat', 'voxel').")
    if "repeat" in brain.dims:
        brain = brain.mean("repeat", skipna=True, keep_attrs=True)
    return brain.transpose("stimulus", "voxel")


def align_inputs(acts, brain: xr.DataArray, align: str = "strict"):
    """Subset/reorder Activations to the brain's stimulus order (or the shared ids)."""
    brain = _brain_2d(brain)
    bids = [str(s) for s in brain["stimulus"].values]
    aids = [str(s) for s in acts["stimulus"].values]
    ids = shared_stimulus_ids(aids, bids, align=align, left_name="activations",
                              right_name="brain")
    if len(ids) < 3:
        raise StimulusMismatchError(
            f"only {len(ids)} stimuli are shared by the activations and the brain responses; "
            "encoding needs at least 3 (and enough for the folds). Extract the brain's "
            "stimuli or select the responses of the extracted ones.")
    acts = acts.assign_coords(stimulus=np.asarray(aids, dtype=object)).sel(stimulus=ids)
    brain = brain.assign_coords(stimulus=np.asarray(bids, dtype=object)).sel(stimulus=ids)
    return acts, brain


def _groups(acts, brain, column="identity"):
    for obj in (acts, brain):
        if obj is not None and column in obj.coords and obj.coords[column].dims == ("stimulus",):
            return np.asarray(obj[column].values).astype(str)
    return None


def resolve_groups(groups, acts, brain, n: int):
    """Identity groups: None (the ``identity`` coordinate, if any), a coordinate name or an array."""
    if groups is None:
        return _groups(acts, brain)
    if isinstance(groups, str):
        g = _groups(acts, brain, column=groups)
        if g is None:
            raise MissingKeyError(f"groups={groups!r} is not a stimulus coordinate of the Activations "
                                  "or BrainResponses; pass a coordinate name or an array of "
                                  "labels.")
        return g
    g = np.asarray(groups).astype(str)
    if g.shape != (n,):
        raise ShapeError(f"groups has shape {g.shape}; expected ({n},), one label per stimulus "
                         "in the brain's stimulus order.")
    return g


def warn_mixed_identities(cv, groups, where: str) -> None:
    """Warn when ``cv="kfold"`` splits stimuli of one identity across folds."""
    if isinstance(cv, str) and cv == "kfold" and groups is not None and \
            np.unique(groups).size < len(groups):
        warnings.warn(f"{where}: cv='kfold' puts images of the same identity in training and "
                      "test folds (identities are mixed across folds), so scores include "
                      "recognising people seen in training; use cv='leave-identity-out' for "
                      "generalisation to new faces.", UserWarning,
                      stacklevel=user_stacklevel())


def outer_folds(cv, n_folds, n, groups, seed):
    """List of (train, test) index arrays for the outer cross-validation."""
    if cv == "leave-identity-out":
        if groups is None:
            raise ParameterError("cv='leave-identity-out' needs an 'identity' stimulus coordinate "
                                 "on the Activations or BrainResponses; add it or pass "
                                 "cv='kfold'.")
        n_id = np.unique(groups).size
        if n_id < 2:
            raise ParameterError(f"cv='leave-identity-out' needs >= 2 identities; found {n_id}. "
                                 "Add stimuli of other identities or pass cv='kfold'.")
        splitter = GroupKFold(n_splits=min(n_folds, n_id))
        return [(tr, te) for tr, te in splitter.split(np.zeros(n), groups=groups)]
    if cv == "kfold":
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n)))
    if hasattr(cv, "split") and not isinstance(cv, str):  # str has .split too
        return [(np.asarray(tr), np.asarray(te)) for tr, te in
                cv.split(np.zeros(n), groups=groups)]
    raise ParameterError(f"cv={cv!r}; choose one of {CV_SCHEMES} or pass a scikit-learn "
                         "splitter.")


def _inner_cv(inner_cv, groups_train):
    if isinstance(inner_cv, int) and groups_train is not None:
        n_id = np.unique(groups_train).size
        if n_id < 2:
            raise ParameterError(f"the training set has {n_id} identity; the inner CV that "
                                 "picks alphas holds out whole identities and needs >= 2. Use "
                                 "fewer outer folds or more identities.")
        return GroupKFold(n_splits=min(inner_cv, n_id))
    if isinstance(inner_cv, int):
        return KFold(n_splits=inner_cv)
    return inner_cv


def inner_folds(inner_cv, X, Y, groups):
    """Inner (train, test) folds; with ``groups`` no fold may share a group between its sides.

    Raises
    ------
    LeakageError
        A splitter that ignores the groups put one identity on both sides.
    """
    cv = _inner_cv(inner_cv, groups)
    if isinstance(cv, int) or not hasattr(cv, "split"):
        from sklearn.model_selection import check_cv

        cv = check_cv(cv)
    folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, Y, groups)]
    if groups is not None:
        for k, (tr, te) in enumerate(folds):
            both = sorted(set(groups[tr]) & set(groups[te]))
            if both:
                raise LeakageError(
                    f"inner_cv={inner_cv!r} put identities {both[:5]} in both the training and "
                    f"the test part of inner fold {k}; the alpha would be chosen on faces seen "
                    "in training. Pass an int (GroupKFold over identities) or a group-aware "
                    "splitter such as GroupKFold.")
    return folds


def cv_predict(X, Y, folds, alphas, *, groups=None, inner_cv=5, fit_intercept=True,
               solver="auto", scoring="neg_mse", warn_edges=True):
    """Held-out predictions of per-voxel ridge, alphas chosen by inner CV on each training set.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_features)
    Y : ndarray of shape (n_stimuli, n_voxels)
    folds : list of (train, test)
    groups : ndarray of shape (n_stimuli,), optional
        Identities: inner folds are then grouped too.

    Returns
    -------
    pred : ndarray of shape (n_stimuli, n_voxels)
    fold_alphas : ndarray of shape (n_folds, n_voxels)
    """
    pred = np.full(Y.shape, np.nan)
    fold_alphas = np.empty((len(folds), Y.shape[1]))
    for k, (tr, te) in enumerate(folds):
        g = None if groups is None else groups[tr]
        enc = RidgeEncoder(alphas, cv=inner_folds(inner_cv, X[tr], Y[tr], g),
                           fit_intercept=fit_intercept, solver=solver, scoring=scoring)
        with warnings.catch_warnings():  # one grid-edge warning for all folds, below
            warnings.simplefilter("ignore", AlphaGridWarning)
            enc.fit(X[tr], Y[tr])
        pred[te] = enc.predict(X[te])
        fold_alphas[k] = enc.best_alphas_
    if warn_edges:
        grid = check_alphas(alphas)
        idx = np.abs(np.log(fold_alphas.ravel()[:, None]) - np.log(grid)[None, :]).argmin(1)
        check_grid_edges(idx, grid)
    return pred, fold_alphas


def _scores(Y, pred):
    """Pooled held-out R2 and Pearson r per voxel; NaN (with a warning) for constant voxels."""
    yc = Y - Y.mean(0)
    sst = (yc**2).sum(0)
    sse = ((Y - pred) ** 2).sum(0)
    pc = pred - pred.mean(0)
    den = np.sqrt(sst * (pc**2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1 - sse / sst, np.nan)
        r = np.where(den > 0, (yc * pc).sum(0) / den, np.nan)
    n_const = int((sst == 0).sum())
    if n_const:
        warnings.warn(f"{n_const} voxel(s) are constant over the stimuli; their r2 and r are "
                      "NaN. Remove them or check the ROI mask.", RuntimeWarning,
                      stacklevel=user_stacklevel())
    return r2, r


def _block_task(X, Y, folds, alphas, groups, inner_cv, fit_intercept, solver, scoring):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return cv_predict(X, Y, folds, alphas, groups=groups, inner_cv=inner_cv,
                          fit_intercept=fit_intercept, solver=solver, scoring=scoring,
                          warn_edges=False)  # evaluate warns once, over all layers


def _run_blocks(Xs: dict, Y, folds, alphas, groups, inner_cv, fit_intercept, solver, scoring,
                batch_size, client):
    """Held-out predictions for every (layer, voxel batch); dask tasks when ``client``."""
    nv = Y.shape[1]
    bs = nv if batch_size is None else max(1, int(batch_size))
    blocks = [slice(a, min(a + bs, nv)) for a in range(0, nv, bs)]
    jobs = [(name, b) for name in Xs for b in blocks]
    common = (folds, alphas, groups, inner_cv, fit_intercept, solver, scoring)
    if client is None:
        outs = [_block_task(Xs[name], Y[:, b], *common) for name, b in jobs]
    else:
        xf = {name: client.scatter(x, hash=False) for name, x in Xs.items()}
        futs = [client.submit(_block_task, xf[name], Y[:, b], *common, pure=False)
                for name, b in jobs]
        outs = client.gather(futs)
    res = {}
    for name in Xs:
        parts = [o for (n_, _), o in zip(jobs, outs) if n_ == name]
        res[name] = (np.concatenate([p[0] for p in parts], axis=1),
                     np.concatenate([p[1] for p in parts], axis=1))
    return res


def _warn_grid_edges(names, fold_alphas, alphas) -> None:
    """One :class:`AlphaGridWarning` for all layers whose fold alphas sit on a grid edge for
    more than 5% of (fold, voxel) fits."""
    alphas = check_alphas(alphas)
    lo_a, hi_a = alphas.min(), alphas.max()
    bad = []
    for name, fa in zip(names, fold_alphas):
        lo, hi = float(np.mean(np.isclose(fa, lo_a))), float(np.mean(np.isclose(fa, hi_a)))
        if max(lo, hi) > EDGE_FRACTION:
            bad.append(f"{name} (smallest {100 * lo:.0f}%, largest {100 * hi:.0f}%)")
    if bad:
        warnings.warn(
            f"Cross-validation chose an edge of the alpha grid [{lo_a:g}, {hi_a:g}] for more "
            f"than {100 * EDGE_FRACTION:.0f}% of voxel fits in {len(bad)} of {len(names)} "
            f"layer(s): {', '.join(bad)}. Voxels without predictable signal pick the largest "
            "alpha; many picking the smallest means the best penalty may lie below the grid. "
            f"Consider alphas=np.logspace({np.log10(lo_a) - 2:.0f}, {np.log10(hi_a) + 2:.0f}, "
            f"{alphas.size + 4}).", AlphaGridWarning,
            stacklevel=user_stacklevel())


def _voxel_coords(brain: xr.DataArray) -> dict:
    return {k: (("voxel",), np.asarray(v.values)) if k != "voxel" else np.asarray(v.values)
            for k, v in brain.coords.items() if v.dims == ("voxel",)}


@public
@renamed_kwargs(bootstrap="n_bootstrap")
def evaluate(
    acts: xr.Dataset,
    brain: xr.DataArray,
    *,
    layers=None,
    cv="leave-identity-out",
    n_folds: int = 5,
    alphas=DEFAULT_ALPHAS,
    inner_cv: int = 5,
    fit_intercept: bool = True,
    solver: str = "auto",
    scoring: str = "neg_mse",
    align: str = "strict",
    batch_size: int | None = None,
    seed: int = 0,
    client=None,
    groups=None,
    n_bootstrap: int = 0,
    ci: float = 0.95,
) -> xr.Dataset:
    """Cross-validated voxelwise encoding of each layer.

    Outer folds hold out whole identities (``cv="leave-identity-out"``), so a
    layer is credited only for predicting responses to new faces; within each
    training set the ridge penalty is chosen per voxel by an inner
    (identity-grouped) CV.

    Parameters
    ----------
    acts : Activations (xr.Dataset)
    brain : BrainResponses (xr.DataArray); a ``repeat`` dim is averaged
    layers : list of str, optional
        Default all layers.
    cv : {"leave-identity-out", "kfold"} or scikit-learn splitter
    n_folds : int
    alphas : array-like of shape (n_alphas,)
    inner_cv : int or splitter
    align : {"strict", "intersection"}
    batch_size : int, optional
        Voxels per task (default all voxels in one block per layer).
    seed : int
        Shuffling seed for ``cv="kfold"``.
    client : dask.distributed.Client, optional
        Run (layer, voxel batch) blocks as dask tasks; results equal the local run
        with the same ``batch_size``.
    groups : str or array-like of shape (n_stimuli,), optional
        Identity of each stimulus (default: the ``identity`` coordinate). Whatever
        the outer splitter, the inner CV never splits a group (an int ``inner_cv``
        becomes ``GroupKFold``; a splitter that mixes groups raises LeakageError).
    n_bootstrap : int
        Paired bootstrap samples of the held-out predictions (0: none). Sample ``b``
        resamples identities (stimuli without groups) with
        ``default_rng([seed, b])``, the same for every layer and for every call with
        the same stimuli, groups and seed, so results of several networks pair up.
        Called ``bootstrap`` before facebrain 0.2 (still accepted, with a
        ``FutureWarning``, until 0.3).
    ci : float
        Coverage of the bootstrap intervals.

    Returns
    -------
    xr.Dataset (EncodingResult)
        ``r2(layer, voxel)`` (held-out, pooled over folds), ``r(layer, voxel)``,
        ``best_alpha(layer, voxel)`` (median over folds of the chosen log-alpha,
        snapped to the grid), ``fold_alpha(layer, fold, voxel)`` and
        ``r2_normalised`` = r2 / voxel ``noise_ceiling`` (NaN when unknown);
        voxel coords copied from ``brain``. Per ROI (dim ``region``): ``r2_roi(layer,
        region)`` (mean of ``r2`` over the ROI's voxels) and, with a bootstrap,
        ``bootstrap_r2(bootstrap, layer, region)``, ``r2_ci_low/high``, plus the
        selection variables (``best_layer(region)``, ``runnerup_layer``,
        ``diff_best_runnerup``, ``diff_ci_low/high``, ``p_diff_fwe``,
        ``p_value/p_value_fwe(layer, region)``; see ``facebrain._selection``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from facebrain.encoding import evaluate
    >>> rng = np.random.default_rng(0)
    >>> ids = [f"s{i}" for i in range(24)]
    >>> ident = [f"p{i % 6}" for i in range(24)]
    >>> x = rng.normal(size=(24, 5))
    >>> acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x)},
    ...                   coords={"stimulus": ids, "identity": ("stimulus", ident)})
    >>> brain = xr.DataArray(x @ rng.normal(size=(5, 2)), dims=("stimulus", "voxel"),
    ...                      coords={"stimulus": ids, "voxel": ["a", "b"]})
    >>> bool((evaluate(acts, brain, n_folds=3, inner_cv=2)["r2"] > 0.9).all())
    True
    """
    alphas = check_alphas(alphas)
    if int(n_bootstrap) < 0:
        raise ParameterError(f"n_bootstrap={n_bootstrap!r} must be >= 0 (0 for no interval).")
    if not 0 < ci < 1:
        raise ParameterError(f"ci={ci!r} must lie in (0, 1), e.g. ci=0.95.")
    acts, brain = align_inputs(acts, brain, align)
    names = list(map(str, acts.data_vars)) if layers is None else (
        [layers] if isinstance(layers, str) else list(layers))
    Y = np.asarray(brain.values, dtype=np.float64)
    if np.isnan(Y).any():
        raise DataFormatError(f"BrainResponses contain NaN ({int(np.isnan(Y).sum())} values); "
                              "drop or impute those voxels/stimuli first.")
    groups = resolve_groups(groups, acts, brain, Y.shape[0])
    Xs = {name: layer_matrix(acts, name) for name in names}
    from ..activations import check_pca_leakage

    check_pca_leakage(acts, names, analysis="encoding.evaluate", groups=groups)
    warn_mixed_identities(cv, groups, "encoding.evaluate")
    folds = outer_folds(cv, n_folds, Y.shape[0], groups, seed)
    res = _run_blocks(Xs, Y, folds, alphas, groups,
                      inner_cv, fit_intercept, solver, scoring, batch_size, client)
    r2s, rs, best, fold_a = [], [], [], []
    for name in names:
        pred, fa = res[name]
        r2, r = _scores(Y, pred)
        r2s.append(r2)
        rs.append(r)
        med = np.median(np.log(fa), axis=0)
        best.append(alphas[np.argmin(np.abs(np.log(alphas)[:, None] - med[None]), axis=0)])
        fold_a.append(fa)
    _warn_grid_edges(names, fold_a, alphas)
    r2s = np.array(r2s)
    if "noise_ceiling" in brain.coords:
        nc = np.asarray(brain["noise_ceiling"].values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.where(nc > 0, r2s / nc, np.nan)
    else:
        norm = np.full_like(r2s, np.nan)
    coords = {"layer": names, "fold": np.arange(len(folds)), **_voxel_coords(brain)}
    cv_name = cv if isinstance(cv, str) else type(cv).__name__
    ds = xr.Dataset(
        {
            "r2": (("layer", "voxel"), r2s),
            "r": (("layer", "voxel"), np.array(rs)),
            "best_alpha": (("layer", "voxel"), np.array(best)),
            "fold_alpha": (("layer", "fold", "voxel"), np.array(fold_a)),
            "r2_normalised": (("layer", "voxel"), norm),
        },
        coords=coords,
        attrs={"cv": cv_name, "n_folds": len(folds), "inner_cv": str(inner_cv),
               "alphas": [float(a) for a in alphas], "scoring": scoring,
               "n_stimuli": int(Y.shape[0]),
               "inner_groups": "identity groups (GroupKFold)" if groups is not None else "none"},
    )
    from ._select import add_roi_selection

    preds = {name: res[name][0] for name in names}
    ids = [str(i) for i in brain["stimulus"].values]
    return add_roi_selection(ds, Y, preds, ids=ids, groups=groups, n_boot=int(n_bootstrap),
                             seed=int(seed), ci=ci)


@public
@dataclass
class FittedEncoder:
    """A RidgeEncoder fitted on one layer, predicting BrainResponses for new stimuli."""

    encoder: RidgeEncoder
    layer: str
    voxel_coords: dict
    attrs: dict

    def predict(self, new_acts: xr.Dataset) -> xr.DataArray:
        """Predicted responses, dims ``(stimulus, voxel)``, voxel coords of the training brain.

        Parameters
        ----------
        new_acts : Activations with the same layer (and unit count)
        """
        X = layer_matrix(new_acts, self.layer)
        n_feat = self.encoder.n_features_in_
        if X.shape[1] != n_feat:
            raise DataFormatError(f"layer {self.layer!r} has {X.shape[1]} units in new_acts but "
                                  f"the encoder was fitted on {n_feat}; extract the same layer "
                                  "with the same reduction.")
        pred = self.encoder.predict(X)
        if pred.ndim == 1:
            pred = pred[:, None]
        coords = {k: (("stimulus",), np.asarray(v.values)) for k, v in new_acts.coords.items()
                  if v.dims == ("stimulus",) and k != "stimulus"}
        coords["stimulus"] = np.asarray(new_acts["stimulus"].values)
        coords.update(self.voxel_coords)
        return xr.DataArray(pred, dims=("stimulus", "voxel"), coords=coords, name="responses",
                            attrs={**self.attrs, "source": "predicted", "layer": self.layer})


@public
def fit(acts: xr.Dataset, brain: xr.DataArray, *, layer: str, alphas=DEFAULT_ALPHAS,
        cv=5, fit_intercept: bool = True, solver: str = "auto", scoring: str = "neg_mse",
        align: str = "strict") -> FittedEncoder:
    """Fit one layer's voxelwise encoder on all stimuli (alphas by identity-grouped inner CV).

    Returns
    -------
    FittedEncoder
        ``.predict(new_acts)`` gives a BrainResponses-shaped DataArray.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from facebrain.encoding import fit
    >>> rng = np.random.default_rng(0)
    >>> ids = [f"s{i}" for i in range(20)]
    >>> x = rng.normal(size=(20, 4))
    >>> acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x)}, coords={"stimulus": ids})
    >>> brain = xr.DataArray(x[:, :2], dims=("stimulus", "voxel"),
    ...                      coords={"stimulus": ids, "voxel": ["a", "b"]})
    >>> fit(acts, brain, layer="fc").predict(acts).dims
    ('stimulus', 'voxel')
    """
    alphas = check_alphas(alphas)
    acts, brain = align_inputs(acts, brain, align)
    X = layer_matrix(acts, layer)
    Y = np.asarray(brain.values, dtype=np.float64)
    groups = _groups(acts, brain)
    enc = RidgeEncoder(alphas, cv=inner_folds(cv, X, Y, groups), fit_intercept=fit_intercept,
                       solver=solver, scoring=scoring).fit(X, Y)
    attrs = {k: v for k, v in brain.attrs.items() if isinstance(v, (str, int, float, list))}
    return FittedEncoder(enc, layer, _voxel_coords(brain), attrs)
