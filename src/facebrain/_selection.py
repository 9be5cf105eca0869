"""Which candidate (layer, or network:layer) fits an ROI best, with paired bootstrap statistics.

A bare argmax over layers says nothing about whether the winner is better than
the runner-up, and its own p-value ignores that it was selected. Given the
point scores of every candidate and their bootstrap replicates drawn on the
*same* samples (paired: sample ``b`` resamples the same stimuli/identities for
every candidate), this module reports per ROI

- ``best_{dim}`` / ``runnerup_{dim}``: the argmax and the second best;
- ``diff_best_runnerup`` with a paired percentile bootstrap interval
  ``diff_ci_low`` / ``diff_ci_high``;
- ``p_diff_fwe``: is the best candidate ahead of *every* other one? Multiple
  comparisons with the best (Hsu 1984) by bootstrap: the smallest studentised
  lead ``min_m (s_best - s_m) / sd`` against the bootstrap null of the largest
  centred studentised deviation ``max_m (d*_m - d_m) / sd`` over the other
  candidates (single-step max-T, Romano & Wolf 2005). Hsu's intervals hold for
  all candidates simultaneously, so having picked the best from the data is
  accounted for;
- ``p_value(dim, roi)`` / ``p_value_fwe(dim, roi)``: score > 0, uncorrected and
  corrected by the max statistic over candidates (the best candidate's
  ``p_value_fwe`` is the p of "the selected layer beats zero").

Bootstrap replicates are centred at the point estimate (the bootstrap
distribution of ``boot - point`` stands in for the null), and studentised by
their bootstrap standard deviation. Samples where a candidate is NaN are left
out of the statistics that involve it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ._boundary import public
from .errors import ParameterError, ParameterTypeError, StimulusMismatchError

__all__ = [
    "PAIRING_ATTR",
    "SELECTION_METHOD",
    "add_selection",
    "network_contrasts",
    "select_candidates",
    "selection_arrays",
]

#: result attr whose equality means "bootstrap sample b resampled the same units"
PAIRING_ATTR = "bootstrap_pairing"

SELECTION_METHOD = (
    "best = argmax of the point score; diff CI: paired percentile bootstrap of best minus "
    "runner-up (same samples for both); p_diff_fwe: multiple comparisons with the best "
    "(Hsu), (1 + #{max over other candidates m of (boot lead_m - lead_m) / sd_m >= min over "
    "m of lead_m / sd_m}) / (1 + n_valid), lead_m = score(best) - score(m), bootstrap "
    "max statistic, valid although the best was selected; p_value_fwe: max over "
    "candidates of the centred, studentised bootstrap score against score > 0"
)


def _pvalue(null: np.ndarray, observed, valid: np.ndarray) -> np.ndarray:
    """(1 + #{null >= observed}) / (1 + n_valid) along axis 0 (NaN nulls do not count)."""
    hits = np.sum((null >= observed - 1e-12) & valid, axis=0)
    n = np.sum(valid, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (1.0 + hits) / (1.0 + n), np.nan)


def selection_arrays(point: np.ndarray, boot: np.ndarray | None, ci: float = 0.95) -> dict:
    """Selection statistics of one ROI.

    Parameters
    ----------
    point : ndarray of shape (n_candidates,)
        Point scores (NaN: candidate unusable, never selected).
    boot : ndarray of shape (n_bootstrap, n_candidates) or None
        Paired bootstrap replicates of the scores.
    ci : float
        Coverage of the percentile interval of the difference.

    Returns
    -------
    dict
        ``best``, ``runnerup`` (int index or -1), ``diff``, ``diff_ci_low``,
        ``diff_ci_high``, ``p_diff_fwe`` (float), ``p_value``, ``p_value_fwe``
        (ndarray of shape (n_candidates,)) and ``n_valid`` (int: samples where
        the best and runner-up are both finite).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> boot = np.array([0.1, 0.5, 0.2]) + 0.02 * rng.normal(size=(200, 3))
    >>> out = selection_arrays(np.array([0.1, 0.5, 0.2]), boot)
    >>> int(out["best"]), int(out["runnerup"]), out["p_diff_fwe"] < 0.05
    (1, 2, True)
    """
    point = np.asarray(point, dtype=float)
    n_c = point.size
    nan = float("nan")
    out = {"best": -1, "runnerup": -1, "diff": nan, "diff_ci_low": nan, "diff_ci_high": nan,
           "p_diff_fwe": nan, "p_value": np.full(n_c, nan), "p_value_fwe": np.full(n_c, nan),
           "n_valid": 0}
    ok = np.flatnonzero(np.isfinite(point))
    if ok.size == 0:
        return out
    order = ok[np.argsort(-point[ok], kind="stable")]
    out["best"] = int(order[0])
    if ok.size > 1:
        out["runnerup"] = int(order[1])
        out["diff"] = float(point[order[0]] - point[order[1]])
    if boot is None or boot.shape[0] == 0:
        return out
    boot = np.asarray(boot, dtype=float)
    alpha = (1.0 - ci) / 2.0
    fin = np.isfinite(boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # score > 0, studentised; max over the usable candidates for the FWE null
        sd = np.nanstd(boot, axis=0, ddof=1)
        sd = np.where(sd > 0, sd, np.nan)
        t_obs = point / sd
        t_null = (boot - point) / sd
        usable = np.isfinite(t_obs)
        out["p_value"] = np.where(usable, _pvalue(t_null, t_obs, fin), nan)
        tn = np.where(fin & usable, t_null, -np.inf)
        row_ok = np.isfinite(tn.max(axis=1)) if usable.any() else np.zeros(len(boot), bool)
        mx = tn.max(axis=1) if usable.any() else np.full(len(boot), -np.inf)
        out["p_value_fwe"] = np.where(
            usable, _pvalue(mx[:, None], t_obs[None, :], row_ok[:, None]), nan)
        if out["runnerup"] < 0:
            return out
        b, r = out["best"], out["runnerup"]
        d = boot[:, b] - boot[:, r]
        dv = np.isfinite(d)
        out["n_valid"] = int(dv.sum())
        if dv.sum() < 2:
            return out
        lo, hi = np.percentile(d[dv], [100 * alpha, 100 * (1 - alpha)])
        out["diff_ci_low"], out["diff_ci_high"] = float(lo), float(hi)
        # multiple comparisons with the best (Hsu 1984), bootstrap max statistic over the
        # other candidates: the best is ahead of every other one with simultaneous
        # confidence; these intervals hold for every candidate at once, so picking the
        # best from the data needs no further correction
        others = ok[ok != b]
        D = point[b] - point[others]
        Db = boot[:, [b]] - boot[:, others]
        sdp = np.nanstd(Db, axis=0, ddof=1)
        sdp = np.where(sdp > 0, sdp, np.nan)
        if not np.isfinite(sdp).all():
            return out
        T = (Db - D) / sdp
        Tm = np.where(np.isfinite(T), T, -np.inf).max(axis=1)
        t_obs = float(np.min(D / sdp))
        out["p_diff_fwe"] = float(_pvalue(Tm, t_obs, np.isfinite(Tm) & dv))
    return out


def add_selection(ds: xr.Dataset, point_var: str, boot_var: str | None, *, dim: str = "layer",
                  ci: float = 0.95, roi_dim: str = "roi") -> xr.Dataset:
    """Add the selection variables (see module docstring) over ``dim`` for every ROI.

    Parameters
    ----------
    ds : xr.Dataset
        Holds ``point_var(dim, roi)`` and, optionally, ``boot_var(bootstrap, dim, roi)``
        (``roi`` named ``roi_dim``).

    Returns
    -------
    xr.Dataset
        A copy with ``best_{dim}(roi)``, ``runnerup_{dim}(roi)``, ``diff_best_runnerup``,
        ``diff_ci_low``, ``diff_ci_high``, ``p_diff_fwe``, ``n_valid_diff`` (roi) and
        ``p_value``/``p_value_fwe(dim, roi)``.
    """
    R = roi_dim
    point = np.asarray(ds[point_var].transpose(dim, R).values, dtype=float)
    boot = None
    if boot_var is not None and boot_var in ds:
        boot = np.asarray(ds[boot_var].transpose("bootstrap", dim, R).values, dtype=float)
    names = np.asarray(ds[dim].values).astype(str)
    n_r = point.shape[1]
    res = [selection_arrays(point[:, j], None if boot is None else boot[:, :, j], ci)
           for j in range(n_r)]
    pick = np.vectorize(lambda k: names[k] if k >= 0 else "", otypes=[object])
    best = np.array([r["best"] for r in res])
    run = np.array([r["runnerup"] for r in res])
    ds = ds.copy()
    ds[f"best_{dim}"] = ((R,), pick(best).astype(str) if n_r else np.array([], str))
    ds[f"runnerup_{dim}"] = ((R,), pick(run).astype(str) if n_r else np.array([], str))
    for key, var in (("diff", "diff_best_runnerup"), ("diff_ci_low", "diff_ci_low"),
                     ("diff_ci_high", "diff_ci_high"), ("p_diff_fwe", "p_diff_fwe")):
        ds[var] = ((R,), np.array([r[key] for r in res], dtype=float))
    ds["n_valid_diff"] = ((R,), np.array([r["n_valid"] for r in res], dtype=np.int64))
    ds["p_value"] = ((dim, R), np.array([r["p_value"] for r in res]).T.reshape(point.shape))
    ds["p_value_fwe"] = ((dim, R),
                         np.array([r["p_value_fwe"] for r in res]).T.reshape(point.shape))
    ds.attrs["selection"] = SELECTION_METHOD if boot is not None else (
        "argmax of the point score only: no bootstrap, so no interval or corrected p "
        "(set bootstrap > 0)")
    ds.attrs["selection_ci"] = float(ci)
    return ds


def _check_paired(results: dict, what: str) -> str | None:
    keys = {name: ds.attrs.get(PAIRING_ATTR) for name, ds in results.items()}
    have = {k: v for k, v in keys.items() if v}
    if len(set(have.values())) > 1:
        raise StimulusMismatchError(
            f"{what} results were bootstrapped on different samples ({PAIRING_ATTR} differs: "
            f"{have}); paired statistics need the same stimuli, subjects/identities, seed, "
            "resampling scheme and bootstrap size for every candidate. Recompute them with "
            "the same settings.")
    return next(iter(have.values()), None)


@public
def select_candidates(results: dict, point_var: str, boot_var: str, *, ci: float = 0.95,
                      what: str = "RSA", roi_dim: str = "roi") -> xr.Dataset:
    """Pool several results (one per network) into one candidate set and select per ROI.

    Parameters
    ----------
    results : dict
        model name -> result Dataset with ``point_var(layer, roi)`` and, when
        bootstrapped, ``boot_var(bootstrap, layer, roi)`` drawn on the same
        samples (same ``bootstrap_pairing`` attr, else a StimulusMismatchError).

    Returns
    -------
    xr.Dataset
        Dims ``candidate`` (``"model:layer"``), ``roi`` (+ ``bootstrap``); vars
        ``score(candidate, roi)``, ``bootstrap_score`` (``roi`` is the results'
        ``roi_dim``) and the :func:`add_selection`
        variables with ``dim="candidate"``; coords ``model`` and ``layer`` on
        ``candidate``.
    """
    if not isinstance(results, Mapping) or not all(
            isinstance(ds, xr.Dataset) for ds in results.values()):
        raise ParameterTypeError(
            f"results must be a dict of model name -> {what} result Dataset; got "
            f"{type(results).__name__}.")
    if not results:
        raise ParameterError(f"no {what} results to select from.")
    pairing = _check_paired(results, what)
    rois = sorted(set.intersection(*[set(map(str, ds[roi_dim].values))
                                     for ds in results.values()]))
    cands, models, layers, pts, boots = [], [], [], [], []
    n_boot = {int(ds.sizes.get("bootstrap", 0)) if boot_var in ds else 0
              for ds in results.values()}
    use_boot = len(n_boot) == 1 and n_boot.pop() > 0
    for name, ds in results.items():
        p = ds[point_var].sel({roi_dim: rois}).transpose("layer", roi_dim)
        for lyr in map(str, p["layer"].values):
            cands.append(f"{name}:{lyr}")
            models.append(name)
            layers.append(lyr)
        pts.append(np.asarray(p.values, dtype=float))
        if use_boot:
            boots.append(np.asarray(ds[boot_var].sel({roi_dim: rois}).transpose(
                "bootstrap", "layer", roi_dim).values, dtype=float))
    data = {"score": (("candidate", "roi"), np.concatenate(pts, axis=0))}
    coords = {"candidate": cands, "roi": rois, "model": ("candidate", models),
              "layer": ("candidate", layers)}
    if use_boot:
        data["bootstrap_score"] = (("bootstrap", "candidate", "roi"),
                                   np.concatenate(boots, axis=1))
        coords["bootstrap"] = np.arange(boots[0].shape[0])
    out = xr.Dataset(data, coords=coords, attrs={"what": what, "score": point_var,
                                                 PAIRING_ATTR: pairing or ""})
    out = add_selection(out, "score", "bootstrap_score" if use_boot else None,
                        dim="candidate", ci=ci)
    return out


@public
def network_contrasts(pooled: xr.Dataset, pairs: list[tuple[str, str]], *,
                      ci: float = 0.95) -> xr.Dataset:
    """Paired differences between two networks at each layer they share, per ROI.

    Parameters
    ----------
    pooled : xr.Dataset
        From :func:`select_candidates`.
    pairs : list of (model_a, model_b)
        Each contrast is ``a - b`` at every layer name both have.

    Returns
    -------
    xr.Dataset
        Dims ``contrast`` (``"a-b@layer"``), ``roi``; vars ``diff``, ``diff_ci_low``,
        ``diff_ci_high``, ``p_value`` (two-sided, paired bootstrap) and ``p_value_fwe``
        (max-T over the layers of the same pair); coords ``model_a``, ``model_b``, ``layer``.
    """
    cand = list(map(str, pooled["candidate"].values))
    names, ma, mb, ly, rows_a, rows_b = [], [], [], [], [], []
    for a, b in pairs:
        for lyr in [c.split(":", 1)[1] for c in cand if c.startswith(f"{a}:")]:
            if f"{b}:{lyr}" in cand:
                names.append(f"{a}-{b}@{lyr}")
                ma.append(a)
                mb.append(b)
                ly.append(lyr)
                rows_a.append(cand.index(f"{a}:{lyr}"))
                rows_b.append(cand.index(f"{b}:{lyr}"))
    score = np.asarray(pooled["score"].transpose("candidate", "roi").values, float)
    n_r = score.shape[1]
    diff = score[rows_a] - score[rows_b] if names else np.empty((0, n_r))
    lo = np.full(diff.shape, np.nan)
    hi = np.full(diff.shape, np.nan)
    p = np.full(diff.shape, np.nan)
    pf = np.full(diff.shape, np.nan)
    if "bootstrap_score" in pooled and names:
        boot = np.asarray(pooled["bootstrap_score"].transpose("bootstrap", "candidate",
                                                               "roi").values, float)
        db = boot[:, rows_a] - boot[:, rows_b]  # (B, n_contrasts, n_roi)
        alpha = (1 - ci) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(db, [100 * alpha, 100 * (1 - alpha)], axis=0)
            sd = np.nanstd(db, axis=0, ddof=1)
            sd = np.where(sd > 0, sd, np.nan)
            t_obs = np.abs(diff) / sd
            t_null = np.abs(db - diff) / sd
            fin = np.isfinite(t_null)
            p = _pvalue(t_null, t_obs, fin)
            pair_of = np.array([f"{a}|{b}" for a, b in zip(ma, mb)])
            for key in np.unique(pair_of):
                rows = np.flatnonzero(pair_of == key)
                tn = np.where(fin[:, rows], t_null[:, rows], -np.inf).max(axis=1)  # (B, R)
                ok = np.isfinite(tn)
                pf[rows] = _pvalue(tn[:, None, :], t_obs[rows][None], ok[:, None, :])
        p = np.where(np.isfinite(t_obs), p, np.nan)
        pf = np.where(np.isfinite(t_obs), pf, np.nan)
    return xr.Dataset(
        {"diff": (("contrast", "roi"), diff), "diff_ci_low": (("contrast", "roi"), lo),
         "diff_ci_high": (("contrast", "roi"), hi), "p_value": (("contrast", "roi"), p),
         "p_value_fwe": (("contrast", "roi"), pf)},
        coords={"contrast": names, "roi": pooled["roi"].values, "model_a": ("contrast", ma),
                "model_b": ("contrast", mb), "layer": ("contrast", ly)},
        attrs={"method": "paired percentile bootstrap of a - b (same samples); p: two-sided "
                         "centred studentised bootstrap; p_value_fwe: max-T over the layers "
                         "of each network pair", "ci": float(ci)},
    )
