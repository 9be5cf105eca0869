"""Per-ROI encoding scores with a paired bootstrap of the held-out predictions."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from .._selection import PAIRING_ATTR, add_selection
from .._utils import stable_hash

__all__ = ["add_roi_selection", "bootstrap_weights", "roi_r2_bootstrap"]


def bootstrap_weights(n_boot: int, seed: int, groups) -> np.ndarray:
    """How often each stimulus enters bootstrap sample ``b`` (rows), from ``default_rng([seed, b])``.

    With ``groups`` whole groups (identities) are drawn with replacement, otherwise
    single stimuli.

    Returns
    -------
    ndarray of shape (n_boot, n_stimuli)
    """
    groups = np.asarray(groups)
    codes = np.unique(groups, return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1
    W = np.empty((n_boot, codes.size))
    for b in range(n_boot):
        pick = np.random.default_rng([int(seed), int(b)]).integers(0, k, k)
        W[b] = np.bincount(pick, minlength=k)[codes]
    return W


def roi_r2_bootstrap(Y, pred, W, members) -> np.ndarray:
    """Mean over each ROI's voxels of the held-out R2 in every bootstrap sample.

    ``R2_v = 1 - sum_i w_i (y_iv - p_iv)^2 / sum_i w_i (y_iv - ybar_v)^2`` with the
    weighted mean ``ybar`` (the resampled stimuli, predictions kept as they are).

    Parameters
    ----------
    Y, pred : ndarray of shape (n_stimuli, n_voxels)
    W : ndarray of shape (n_boot, n_stimuli)
    members : list of int arrays (voxel indices of each ROI)

    Returns
    -------
    ndarray of shape (n_boot, n_rois)
    """
    n = W.sum(axis=1, keepdims=True)
    out = np.empty((W.shape[0], len(members)))
    for j, vox in enumerate(members):
        y, p = Y[:, vox], pred[:, vox]
        sse = W @ (y - p) ** 2
        sst = W @ (y * y) - (W @ y) ** 2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.where(sst > 1e-12 * np.abs(W @ (y * y)), 1.0 - sse / sst, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[:, j] = np.nanmean(r2, axis=1)
    return out


def add_roi_selection(ds: xr.Dataset, Y, preds: dict, *, ids, groups, n_boot: int, seed: int,
                      ci: float) -> xr.Dataset:
    """Add ``r2_roi(layer, region)``, the bootstrap and the selection variables to an EncodingResult."""
    if "roi" in ds.coords and ds["roi"].dims == ("voxel",):
        roi = np.asarray(ds["roi"].values).astype(str)
    else:
        roi = np.full(ds.sizes["voxel"], "all")
    regions = sorted(set(roi))
    members = [np.flatnonzero(roi == r) for r in regions]
    r2 = np.asarray(ds["r2"].transpose("layer", "voxel").values, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r2_roi = np.stack([np.nanmean(r2[:, m], axis=1) for m in members], axis=1)
    ds = ds.assign_coords(region=regions)
    ds["r2_roi"] = (("layer", "region"), r2_roi)
    unit = "identity" if groups is not None else "stimulus"
    if n_boot:
        g = groups if groups is not None else np.asarray(ids)
        W = bootstrap_weights(n_boot, seed, g)
        boot = np.stack([roi_r2_bootstrap(Y, preds[name], W, members)
                         for name in map(str, ds["layer"].values)], axis=1)
        alpha = (1 - ci) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
        ds = ds.assign_coords(bootstrap=np.arange(n_boot))
        ds["bootstrap_r2"] = (("bootstrap", "layer", "region"), boot)
        ds["r2_ci_low"] = (("layer", "region"), lo)
        ds["r2_ci_high"] = (("layer", "region"), hi)
        ds["n_valid_bootstrap"] = (("layer", "region"), np.isfinite(boot).sum(axis=0))
    ds.attrs.update({
        "n_bootstrap": int(n_boot), "bootstrap_unit": unit, "seed": int(seed),
        "ci": float(ci),
        PAIRING_ATTR: stable_hash({"ids": list(ids), "groups": None if groups is None else
                                   list(map(str, groups)), "seed": int(seed), "n": n_boot})
        if n_boot else "",
    })
    return add_selection(ds, "r2_roi", "bootstrap_r2" if n_boot else None, roi_dim="region",
                         ci=ci)
