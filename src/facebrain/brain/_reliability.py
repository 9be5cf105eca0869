"""Reliability and noise ceilings: split-half per voxel, encoding ceiling per voxel, RSA ceiling per ROI.

Encoding noise ceiling (per voxel, for responses averaged over ``n`` repeats).
With ``b[s, r] = mu[s] + e[s, r]`` (signal variance ``sigma_s^2`` across stimuli,
noise variance ``sigma_n^2`` across repeats),

    sigma_n^2 = mean_s var_r(b[s, :])                (ddof=1, stimuli with >= 2 repeats)
    sigma_s^2 = max(0, var_s(mean_r b[s, :]) - sigma_n^2 / n)
    ceiling   = sigma_s^2 / (sigma_s^2 + sigma_n^2 / n)

i.e. the fraction of the variance of the ``n``-trial average that a perfect model
could explain (``n`` = harmonic mean of repeats per stimulus). This is the
"signal power" estimator of Sahani & Linden (2003, NIPS 15) as used for noise
ceilings by Schoppe et al. (2016, Front. Comput. Neurosci. 10:10) and the
``NC = ncsnr^2 / (ncsnr^2 + 1/n)`` form of Allen et al. (2022, Nat. Neurosci.
25:116); see Lage-Castellanos et al. (2019, PLoS Comput. Biol. 15:e1006397) for
a comparison of such estimators.

RSA noise ceiling (Nili et al. 2014, PLoS Comput. Biol. 10:e1003553): upper bound =
mean over subjects of the similarity between a subject's RDM and the pooled RDM of
all subjects; lower bound = the same against the pooled RDM of the *other* subjects
(leave one subject out). Pooling and comparison use rsatoolbox (``pool_rdm``,
``compare``), so with ``method="spearman"`` RDMs are rank-transformed before averaging.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .._boundary import public
from ..errors import DataFormatError, ParameterError, ParameterTypeError

__all__ = ["rsa_noise_ceiling", "split_half_reliability", "voxel_noise_ceiling"]


def _repeat_array(responses: xr.DataArray, fn: str) -> np.ndarray:
    if not isinstance(responses, xr.DataArray) or "repeat" not in responses.dims:
        raise DataFormatError(
            f"{fn} needs responses with a 'repeat' dim (single_trial_betas(..., "
            "average_repeats=False)); got dims "
            f"{getattr(responses, 'dims', type(responses).__name__)}."
        )
    if responses.sizes["repeat"] < 2:
        raise DataFormatError(f"{fn} needs at least 2 repeats per stimulus; got 1.")
    return responses.transpose("stimulus", "repeat", "voxel").values.astype(float)


@public
def split_half_reliability(responses: xr.DataArray) -> xr.DataArray:
    """Split-half reliability per voxel, Spearman-Brown corrected.

    The mean of odd repeats (1st, 3rd, ...) and of even repeats (2nd, 4th, ...)
    are correlated across stimuli (Pearson, over stimuli present in both
    halves); ``r_sb = 2 r / (1 + r)``.

    Parameters
    ----------
    responses : DataArray of shape (n_stimuli, n_repeats, n_voxels)

    Returns
    -------
    DataArray of shape (n_voxels,) named ``"reliability"`` (NaN where undefined).

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((20, 1, 5))  # 20 stimuli, 5 voxels
    >>> betas = xr.DataArray(signal + 0.5 * rng.standard_normal((20, 4, 5)),
    ...                      dims=("stimulus", "repeat", "voxel"))
    >>> rel = split_half_reliability(betas)
    >>> rel.shape, bool((rel > 0.8).all())
    ((5,), True)
    """
    b = _repeat_array(responses, "split_half_reliability")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        odd = np.nanmean(b[:, 0::2], axis=1)
        even = np.nanmean(b[:, 1::2], axis=1)
    ok = np.isfinite(odd) & np.isfinite(even)
    n = ok.sum(axis=0)
    o = np.where(ok, odd, 0.0)
    e = np.where(ok, even, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        om = o.sum(0) / n
        em = e.sum(0) / n
        oc = np.where(ok, o - om, 0.0)
        ec = np.where(ok, e - em, 0.0)
        r = (oc * ec).sum(0) / np.sqrt((oc ** 2).sum(0) * (ec ** 2).sum(0))
        r = np.where(n >= 3, r, np.nan)
        r_sb = 2 * r / (1 + r)
    return xr.DataArray(r_sb, dims=("voxel",), coords={"voxel": responses["voxel"].values},
                        name="reliability")


@public
def voxel_noise_ceiling(responses: xr.DataArray, *,
                        n_average: float | None = None) -> xr.DataArray:
    """Encoding noise ceiling per voxel: explainable fraction of variance (see module doc).

    Not the RSA ceiling of an ROI's RDMs across subjects: that is :func:`rsa_noise_ceiling`.
    Called ``noise_ceiling`` before facebrain 0.2 (the old name warns until 0.3).

    Parameters
    ----------
    responses : DataArray of shape (n_stimuli, n_repeats, n_voxels)
        NaN marks missing repeats.
    n_average : float, optional
        Number of repeats averaged in the responses a model will predict (default:
        harmonic mean of the repeats per stimulus, i.e. the averaged responses).

    Returns
    -------
    DataArray of shape (n_voxels,) named ``"noise_ceiling"``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((20, 1, 5))  # 20 stimuli, 5 voxels
    >>> betas = xr.DataArray(signal + 0.5 * rng.standard_normal((20, 4, 5)),
    ...                      dims=("stimulus", "repeat", "voxel"))
    >>> nc = voxel_noise_ceiling(betas)
    >>> nc.shape, bool(((nc > 0.5) & (nc <= 1)).all())
    ((5,), True)
    """
    b = _repeat_array(responses, "voxel_noise_ceiling")
    counts = np.isfinite(b).sum(axis=1)  # (stim, vox)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var_r = np.nanvar(b, axis=1, ddof=1)  # (stim, vox)
        var_r = np.where(counts >= 2, var_r, np.nan)
        sigma_n2 = np.nanmean(var_r, axis=0)
        means = np.nanmean(b, axis=1)
        var_m = np.nanvar(means, axis=0, ddof=1)
        n_stim_rep = np.where(counts > 0, counts, np.nan)
        n_h = np.nanmean(1.0 / n_stim_rep, axis=0) ** -1  # harmonic mean of repeats
        sigma_s2 = np.maximum(var_m - sigma_n2 / n_h, 0.0)
        n_avg = n_h if n_average is None else float(n_average)
        nc = sigma_s2 / (sigma_s2 + sigma_n2 / n_avg)
    return xr.DataArray(nc, dims=("voxel",), coords={"voxel": responses["voxel"].values},
                        name="noise_ceiling")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@public
def rsa_noise_ceiling(
    rdms_by_subject, method: str = "spearman", *, return_per_subject: bool = False
):
    """Lower and upper RSA noise ceiling of one ROI across subjects (Nili et al. 2014).

    Parameters
    ----------
    rdms_by_subject : rsatoolbox.rdm.RDMs, or a list / dict of RDMs
        One RDM per subject (same conditions, same order). A list or dict is
        concatenated in order.
    method : str
        rsatoolbox comparison (``"spearman"``, ``"corr"``, ``"cosine"``, ``"rho-a"``,
        ``"tau-a"``, ...), also used to pool RDMs.
    return_per_subject : bool
        Also return the per-subject lower and upper values (arrays of shape (n_subjects,)).

    Returns
    -------
    lower, upper : float
        ``lower <= upper`` up to sampling error is expected (it holds exactly for
        ``"corr"``/``"cosine"``, whose pooled RDM includes the subject's own).

    Examples
    --------
    >>> import numpy as np
    >>> from rsatoolbox.data import Dataset
    >>> from rsatoolbox.rdm import calc_rdm
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.standard_normal((8, 10))  # 8 conditions, the pattern all subjects share
    >>> rdms = [calc_rdm(Dataset(shared + 0.5 * rng.standard_normal((8, 10))))
    ...         for _ in range(4)]
    >>> lo, hi = rsa_noise_ceiling(rdms, method="corr")
    >>> bool(0 < lo <= hi <= 1)
    True
    """
    from rsatoolbox.rdm import RDMs, compare, concat
    from rsatoolbox.util.inference_util import pool_rdm

    if isinstance(rdms_by_subject, Mapping):
        rdms_by_subject = list(rdms_by_subject.values())
    if (isinstance(rdms_by_subject, Sequence) and not isinstance(rdms_by_subject, (RDMs, str))
            and all(isinstance(r, RDMs) for r in rdms_by_subject)):
        if not rdms_by_subject:
            raise ParameterError("rdms_by_subject is empty.")
        rdms_by_subject = concat(list(rdms_by_subject))
    if not isinstance(rdms_by_subject, RDMs):
        raise ParameterTypeError(
            "rdms_by_subject must be an rsatoolbox RDMs object (one RDM per subject) or a list "
            f"or dict of them; got {type(rdms_by_subject).__name__} {_short(rdms_by_subject)}."
        )
    n = rdms_by_subject.n_rdm
    if n < 2:
        raise ParameterError(
            f"an RSA noise ceiling needs RDMs of at least 2 subjects; got {n}. The lower bound "
            "is leave-one-subject-out."
        )
    vec = rdms_by_subject.get_vectors()
    if not np.isfinite(vec).any(axis=1).all():
        raise DataFormatError("an RDM is all NaN; check that every subject has data for the ROI.")
    pooled_all = pool_rdm(rdms_by_subject, method=method)
    lower = np.empty(n)
    upper = np.empty(n)
    for s in range(n):
        this = rdms_by_subject[s]
        others = rdms_by_subject[[i for i in range(n) if i != s]]
        pooled_others = pool_rdm(others, method=method)
        lower[s] = float(np.mean(compare(pooled_others, this, method=method)))
        upper[s] = float(np.mean(compare(pooled_all, this, method=method)))
    lo, hi = float(np.mean(lower)), float(np.mean(upper))
    if return_per_subject:
        return lo, hi, lower, upper
    return lo, hi
