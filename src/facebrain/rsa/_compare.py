"""compare(): model RDMs (layers) against brain RDMs (ROI x subject) -> ComparisonResult."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from rsatoolbox.rdm import RDMs

from .._boundary import public
from .._deprecation import renamed_kwargs, user_stacklevel
from .._selection import PAIRING_ATTR, add_selection
from .._utils import check_same_stimuli, shared_stimulus_ids, stable_hash
from ..errors import BootstrapError, ParameterError, ParameterTypeError, ShapeError
from ._bootstrap import bootstrap_chunk, prepare
from ._kernels import COMPARISONS, COV_METHODS
from ._rdm import _check_n_stimuli, rdm

__all__ = ["compare", "roi_noise_ceiling"]

OVER = ("stimuli", "subjects", "both")


def _as_model_rdms(model, rdm_method, layers) -> tuple[RDMs, list[str]]:
    if isinstance(model, xr.Dataset):
        model = rdm(model, method=rdm_method, layer=layers)
    elif isinstance(model, (list, tuple)):
        parts = [_as_model_rdms(m, rdm_method, None) for m in model]
        ids = _stimulus_ids(parts[0][0], "model")
        vecs = []
        for part, _ in parts:
            pids = _stimulus_ids(part, "model")
            check_same_stimuli(ids, pids, left_name="first model", right_name="another model")
            vecs.append(_vectors_in(part, pids, ids))
        measures = sorted({str(p.dissimilarity_measure) for p, _ in parts})
        model = RDMs(np.concatenate(vecs), dissimilarity_measure="+".join(measures),
                     rdm_descriptors={"layer": [x for _, names in parts for x in names]},
                     pattern_descriptors={"stimulus": np.asarray(ids, dtype=object)})
    if not isinstance(model, RDMs):
        raise ParameterTypeError("model must be Activations (xr.Dataset), rsatoolbox RDMs or a list of "
                                 f"them; got {type(model).__name__}.")
    if "layer" in model.rdm_descriptors:
        names = [str(x) for x in model.rdm_descriptors["layer"]]
    else:
        names = [f"rdm{i}" for i in range(model.n_rdm)]
    if len(set(names)) != len(names):
        raise ParameterError(f"model RDM names (rdm descriptor 'layer') repeat: {names}; "
                             "give every model RDM a unique 'layer' descriptor.")
    return model, names


def _as_brain_rdms(brain, rdm_method) -> tuple[RDMs, list[str], list[str]]:
    if isinstance(brain, xr.DataArray):
        brain = rdm(brain, method=rdm_method)
    if not isinstance(brain, RDMs):
        raise ParameterTypeError("brain must be BrainResponses (xr.DataArray) or rsatoolbox RDMs with "
                                 f"'roi' and 'subject' rdm descriptors; got {type(brain).__name__}.")
    for d in ("roi", "subject"):
        if d not in brain.rdm_descriptors:
            raise ParameterError(f"brain RDMs lack the rdm descriptor {d!r}; have "
                                 f"{sorted(brain.rdm_descriptors)}.")
    roi = np.asarray([str(x) for x in brain.rdm_descriptors["roi"]], dtype=object)
    sub = np.asarray([str(x) for x in brain.rdm_descriptors["subject"]], dtype=object)
    rois, subjects = sorted(set(roi)), sorted(set(sub))
    for r in rois:
        have = sorted(set(sub[roi == r]))
        if have != subjects:
            raise ParameterError(
                f"ROI {r!r} has subjects {have} but other ROIs have {subjects} (missing "
                f"{sorted(set(subjects) - set(have))}); every ROI needs the same subjects."
            )
    pos = {(r, s): i for i, (r, s) in enumerate(zip(roi, sub))}
    if len(pos) != brain.n_rdm:
        raise ParameterError("brain RDMs contain a repeated (roi, subject) pair.")
    order = [pos[(r, s)] for r in rois for s in subjects]
    return brain.subset("index", order) if order != list(range(brain.n_rdm)) else brain, \
        rois, subjects


def _stimulus_ids(r: RDMs, what: str) -> list[str]:
    if "stimulus" not in r.pattern_descriptors:
        raise ParameterError(f"{what} RDMs lack the pattern descriptor 'stimulus' (stimulus ids); "
                             "build them with facebrain.rsa.rdm or add it.")
    ids = [str(x) for x in r.pattern_descriptors["stimulus"]]
    if len(set(ids)) != len(ids):
        raise ParameterError(f"{what} RDMs repeat stimulus ids; ids must be unique.")
    return ids


def _vectors_in(r: RDMs, ids_from: list[str], ids_to: list[str]) -> np.ndarray:
    pos = {s: i for i, s in enumerate(ids_from)}
    sel = np.array([pos[s] for s in ids_to])
    mats = r.get_matrices()[:, sel][:, :, sel]
    iu = np.triu_indices(sel.size, 1)
    return mats[:, iu[0], iu[1]]


def roi_noise_ceiling(brain_vectors: np.ndarray, method: str) -> tuple[float, float]:
    """Leave-one-subject-out lower and all-subjects upper RSA noise ceiling of one ROI.

    The helper behind ``compare(..., ceiling=True)``; ``facebrain.rsa.noise_ceiling`` until
    facebrain 0.2 (the old name warns until 0.3).

    Uses ``facebrain.brain.rsa_noise_ceiling`` (Nili et al. 2014; rsatoolbox's
    ``pool_rdm`` + ``compare``, as ``boot_noise_ceiling``); NaN with fewer than 2 subjects.

    Parameters
    ----------
    brain_vectors : ndarray of shape (n_subjects, n_pairs)
        One ROI's RDM vectors (NaN where a pair is missing).
    """
    brain_vectors = np.asarray(brain_vectors, dtype=float)
    if brain_vectors.ndim != 2:
        raise ShapeError(f"noise_ceiling: brain_vectors must be (n_subjects, n_pairs); got shape "
                         f"{brain_vectors.shape}.")
    if brain_vectors.shape[0] < 2:
        return np.nan, np.nan
    from ..brain import rsa_noise_ceiling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = rsa_noise_ceiling(RDMs(brain_vectors), method=method)
    return float(lo), float(hi)


@public
@renamed_kwargs(bootstrap="n_bootstrap", noise_ceiling="ceiling")
def compare(
    model,
    brain,
    *,
    method: str = "spearman",
    rdm_method: str = "correlation",
    n_bootstrap: int = 0,
    over: str = "stimuli",
    ceiling: bool = True,
    ci: float = 0.95,
    seed: int = 0,
    client=None,
    align: str = "strict",
    layers=None,
    chunk_size: int = 20,
    max_nan: float = 0.05,
    device: str | None = None,
) -> xr.Dataset:
    """Compare model RDMs with brain RDMs, per layer x ROI x subject.

    Parameters
    ----------
    model : Activations, rsatoolbox RDMs (rdm descriptor ``layer``), or list of those
        Activations are turned into one RDM per layer with ``rdm_method``; combine
        with :func:`label_rdm` for reference rows.
    brain : BrainResponses or rsatoolbox RDMs with rdm descriptors ``roi``, ``subject``
    method : str
        rsatoolbox comparison name: ``cosine``, ``spearman``, ``corr``, ``kendall``
        (tau-b), ``tau-a``, ``rho-a``, ``corr_cov``, ``cosine_cov``.
    rdm_method : str
        RDM measure when Activations/BrainResponses are given (see :func:`rdm`).
    n_bootstrap : int
        Number of bootstrap samples (0: none). Called ``bootstrap`` before facebrain 0.2
        (still accepted, with a ``FutureWarning``, until 0.3).
    over : {"stimuli", "subjects", "both"}
        What the bootstrap resamples. Stimulus resampling follows rsatoolbox
        (pairs of a stimulus with its own copy dropped).
    ceiling : bool
        Fill ``ceiling_lower``/``ceiling_upper`` per ROI (leave-one-subject-out /
        all-subjects pooled RDM, as rsatoolbox's ``boot_noise_ceiling``; see
        :func:`facebrain.rsa.rsa_noise_ceiling`); NaN when False. Called ``noise_ceiling``
        before facebrain 0.2 (still accepted, with a ``FutureWarning``, until 0.3).
    ci : float
        Coverage of the percentile interval (bootstrap) or of the t interval over
        subjects (no bootstrap).
    seed : int
        Sample ``b`` is drawn from ``default_rng([seed, b])``.
    client : dask.distributed.Client, optional
        Run bootstrap chunks as dask tasks; results equal the local run.
    align : {"strict", "intersection"}
        Different stimulus sets raise (listing ids missing on each side) or are
        restricted to the shared ids.
    layers : list of str, optional
        Layers of the Activations to use.
    chunk_size : int
        Bootstrap samples per task.
    max_nan : float
        Largest fraction of unusable (NaN) bootstrap samples accepted for a layer x
        ROI with a finite score; more raises :class:`facebrain.errors.BootstrapError`.
    device : str, optional
        ``"cuda"`` (torch) runs the stimulus bootstrap of the rank methods (spearman,
        rho-a, tau-a, tau-b/kendall) on that device; equal to the CPU kernels at float64.

    Returns
    -------
    xr.Dataset (ComparisonResult)
        ``score(layer, roi, subject)``, ``score_mean(layer, roi)``,
        ``ci_low/ci_high(layer, roi)``, ``ceiling_lower/ceiling_upper(roi)`` and,
        with a bootstrap, ``bootstrap_score(bootstrap, layer, roi)`` (mean over
        subjects of each sample) and ``n_valid_bootstrap(layer, roi)``; the
        selection variables of :func:`facebrain._selection.add_selection`
        (``best_layer(roi)``, ``runnerup_layer``, ``diff_best_runnerup``,
        ``diff_ci_low/high``, ``p_diff_fwe``, ``p_value/p_value_fwe(layer, roi)``);
        attrs ``method``, ``rdm_method``, ``over``, ``bootstrap_pairing``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from facebrain.rsa import compare, rdm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(6, 4))
    >>> acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x)},
    ...                   coords={"stimulus": [f"s{i}" for i in range(6)]})
    >>> brain = xr.DataArray(x @ rng.normal(size=(4, 3)), dims=("stimulus", "voxel"),
    ...     coords={"stimulus": [f"s{i}" for i in range(6)], "roi": ("voxel", ["FFA"] * 3),
    ...             "subject": ("voxel", ["01"] * 3)})
    >>> res = compare(acts, brain, ceiling=False)
    >>> res["score"].dims
    ('layer', 'roi', 'subject')
    """
    if method not in COMPARISONS:
        raise ParameterError(f"method={method!r} is not a comparison method; choose one of "
                             f"{sorted(COMPARISONS)}.")
    if over not in OVER:
        raise ParameterError(f"over={over!r}; choose one of {OVER}.")
    if int(n_bootstrap) < 0:
        raise ParameterError(f"n_bootstrap={n_bootstrap!r} must be >= 0.")
    if not 0 < ci < 1:
        raise ParameterError(f"ci={ci!r} must lie in (0, 1).")
    if not 0 <= max_nan < 1:
        raise ParameterError(f"max_nan={max_nan!r} must lie in [0, 1).")
    mrdm, names = _as_model_rdms(model, rdm_method, layers)
    brdm, rois, subjects = _as_brain_rdms(brain, rdm_method)
    mids, bids = _stimulus_ids(mrdm, "model"), _stimulus_ids(brdm, "brain")
    ids = shared_stimulus_ids(mids, bids, align=align, left_name="model", right_name="brain")
    _check_n_stimuli(len(ids), "The shared stimulus set")
    n = len(ids)
    mv, bv = _vectors_in(mrdm, mids, ids), _vectors_in(brdm, bids, ids)
    nan_m, nan_b = np.isnan(mv), np.isnan(bv)
    valid = ~(nan_m.any(0) | nan_b.any(0))
    allv = np.concatenate([nan_m, nan_b])
    if (allv.any(0) != allv.all(0)).any():
        warnings.warn(f"RDMs have NaN at different pairs; the {int((~valid).sum())} pairs "
                      "missing in any RDM are dropped from every comparison.", RuntimeWarning,
                      stacklevel=user_stacklevel())
    if valid.sum() < 2:
        raise ParameterError("fewer than 2 dissimilarities are present in all RDMs; cannot compare.")
    m_ok, b_ok = mv[:, valid], bv[:, valid]
    if method in COV_METHODS:
        point = COMPARISONS[method](m_ok, b_ok, nan_idx=valid)
    else:
        point = COMPARISONS[method](m_ok, b_ok)
    n_l, n_r, n_s = len(names), len(rois), len(subjects)
    score = point.reshape(n_l, n_r, n_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score_mean = np.nanmean(score, axis=2)
    data_vars = {
        "score": (("layer", "roi", "subject"), score),
        "score_mean": (("layer", "roi"), score_mean),
    }
    alpha = (1 - ci) / 2
    n_boot = int(n_bootstrap)
    if n_boot:
        samples = [list(range(a, min(a + chunk_size, n_boot))) for a in
                   range(0, n_boot, chunk_size)]
        prep = prepare(m_ok, b_ok, method) if over != "subjects" else None
        if client is None:
            parts = [bootstrap_chunk(m_ok, b_ok, n, valid, method, int(seed), s, over, n_s,
                                     prep, device) for s in samples]
        else:
            big = client.scatter([m_ok, b_ok, valid], broadcast=True, hash=False)
            pf = None if prep is None else client.scatter([prep], broadcast=True, hash=False)[0]
            futs = [client.submit(bootstrap_chunk, big[0], big[1], n, big[2], method, int(seed),
                                  s, over, n_s, pf, device, pure=False) for s in samples]
            parts = client.gather(futs)
        boot = np.concatenate([p[0] for p in parts]).reshape(n_boot, n_l, n_r, n_s)
        if over == "stimuli":
            bmean, used = boot, np.broadcast_to(score, boot.shape)
        else:
            subj = np.concatenate([p[1] for p in parts])
            bmean = np.take_along_axis(boot, subj[:, None, None, :], axis=3)
            used = np.take_along_axis(np.broadcast_to(score, boot.shape),
                                      subj[:, None, None, :], axis=3)
        bmean, n_valid = _valid_samples(bmean, used, score_mean, names, rois, max_nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(bmean, [100 * alpha, 100 * (1 - alpha)], axis=0)
        data_vars["bootstrap_score"] = (("bootstrap", "layer", "roi"), bmean)
        data_vars["n_valid_bootstrap"] = (("layer", "roi"), n_valid)
        ci_kind = f"percentile bootstrap over {over}"
    else:
        from scipy import stats

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k = np.sum(~np.isnan(score), axis=2)
            sem = np.nanstd(score, axis=2, ddof=1) / np.sqrt(k)
            tq = stats.t.ppf(1 - alpha, np.maximum(k - 1, 1))
            lo = np.where(k > 1, score_mean - tq * sem, np.nan)
            hi = np.where(k > 1, score_mean + tq * sem, np.nan)
        ci_kind = "t over subjects"
    data_vars["ci_low"] = (("layer", "roi"), lo)
    data_vars["ci_high"] = (("layer", "roi"), hi)
    if ceiling:
        full = np.full((bv.shape[0], valid.size), np.nan)
        full[:, valid] = b_ok
        ceil = np.array([roi_noise_ceiling(full[i * n_s:(i + 1) * n_s], method)
                         for i in range(n_r)]).reshape(n_r, 2)
    else:
        ceil = np.full((n_r, 2), np.nan)
    data_vars["ceiling_lower"] = (("roi",), ceil[:, 0])
    data_vars["ceiling_upper"] = (("roi",), ceil[:, 1])
    coords = {"layer": names, "roi": rois, "subject": subjects}
    if n_boot:
        coords["bootstrap"] = np.arange(n_boot)
    res = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "method": method,
            "rdm_method": str(rdm_method) if not isinstance(model, RDMs) else str(
                mrdm.dissimilarity_measure),
            "over": over if n_boot else "none",
            "n_bootstrap": n_boot,
            "seed": int(seed),
            "ci": float(ci),
            "ci_kind": ci_kind,
            "n_stimuli": n,
            "noise_ceiling": "leave-one-subject-out lower, all-subjects upper "
                             "(facebrain.brain.rsa_noise_ceiling)" if ceiling else "none",
            "max_nan_fraction": float(max_nan),
            PAIRING_ATTR: stable_hash({"ids": list(ids), "subjects": subjects, "seed": int(seed),
                                       "over": over, "n": n_boot}) if n_boot else "",
        },
    )
    return add_selection(res, "score_mean", "bootstrap_score" if n_boot else None, ci=ci)


def _valid_samples(bmean, used, score_mean, names, rois, max_nan):
    """Mean over subjects of each sample, NaN where a subject with a finite point score is NaN.

    Refuses (BootstrapError) when more than ``max_nan`` of the samples of a layer x ROI
    whose point score is finite are unusable.
    """
    bad = (np.isnan(bmean) & np.isfinite(used)).any(axis=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(bmean, axis=3)
    mean[bad] = np.nan
    n_valid = np.isfinite(mean).sum(axis=0)
    frac = 1.0 - n_valid / mean.shape[0]
    worst = np.where(np.isfinite(score_mean), frac, 0.0)
    if (worst > max_nan).any():
        i, j = np.unravel_index(int(np.argmax(worst)), worst.shape)
        raise BootstrapError(
            f"{100 * worst[i, j]:.1f}% of the bootstrap samples of layer {names[i]!r} x ROI "
            f"{rois[j]!r} are NaN (constant RDM in the resampled stimuli/subjects), more than "
            f"the allowed {100 * max_nan:.0f}%; an interval from the rest would be biased. Use "
            "more stimuli, a method robust to ties (e.g. 'corr'), or over='subjects'; "
            "max_nan= raises the limit.")
    return mean, n_valid

