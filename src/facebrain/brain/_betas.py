"""Single-trial response estimates (LSA and vectorised LSS) on nilearn design matrices.

LSS (least squares separate; Mumford et al. 2012, NeuroImage 59:2636) fits, for
every trial ``i``, a GLM whose design is ``[x_i, sum_{j != i} x_j, nuisance]``.
Only the first coefficient is kept, i.e. ``beta_i = pinv(X_i)[0] @ Y``. The
first rows of all ``pinv(X_i)`` are computed in one batched call over trials
(``(n_trials, n_scans, p)`` designs, ``p`` small), then multiplied with the
masked data ``Y (n_scans, n_voxels)`` in one matmul: the cost is one GLM's worth
of voxel work instead of one per trial.

The designs are nilearn's (:func:`nilearn.glm.first_level.make_first_level_design_matrix`,
same frame times, HRF, drift and confounds as :class:`~nilearn.glm.first_level.FirstLevelModel`);
nilearn builds a condition's regressor by summing its events' neural signals
before a linear convolution and resampling, so the "all other trials" column
equals the sum of the single-trial columns (to rounding). With derivative or
dispersion HRF models the extra columns are orthogonalised per condition, which
is not linear, so each trial's design is then built by nilearn itself.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr
from nilearn.glm.first_level import make_first_level_design_matrix, mean_scaling
from nilearn.image import resample_to_img

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import (
    DataFormatError,
    MissingFileError,
    ParameterError,
    ParameterTypeError,
    StimulusMismatchError,
)
from ._bids import BIDSRuns, check_events
from ._confounds import merge_sample_masks, resolve_confounds
from ._regressors import event_regressors
from ._rois import nib_load
from ._timing import (
    check_onsets,
    check_sampled,
    check_tr_header,
    parse_seconds,
    resolve_slice_time_ref,
)

__all__ = ["single_trial_betas"]

METHODS = ("lss", "lsa")
_TRIAL = "__fb_trial_{:05d}"


def _load_img(img, where: str):
    if isinstance(img, (str, os.PathLike)):
        if not os.path.exists(img):
            raise MissingFileError(f"{where}: {img} does not exist.")
        return nib_load(img, where)
    if not hasattr(img, "affine") or not hasattr(img, "shape"):
        raise ParameterTypeError(f"{where}: expected a NIfTI image or a path; got {type(img).__name__}.")
    return img


def _check_runs(runs) -> list:
    if not isinstance(runs, (list, tuple)):
        runs = [runs]
    imgs = [_load_img(r, f"runs[{i}]") for i, r in enumerate(runs)]
    if not imgs:
        raise ParameterError("runs is empty; pass at least one 4D BOLD image.")
    ref = imgs[0]
    for i, img in enumerate(imgs):
        if len(img.shape) != 4:
            raise DataFormatError(f"runs[{i}] must be a 4D image; got shape {img.shape}.")
        if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-4):
            raise DataFormatError(
                f"runs[{i}] is on a different grid than runs[0]: shape {img.shape[:3]} vs "
                f"{ref.shape[:3]}, affine\n{np.round(img.affine, 3)}\nvs\n"
                f"{np.round(ref.affine, 3)}. Resample the runs to one grid (e.g. "
                "nilearn.image.resample_to_img) before estimating betas."
            )
    return imgs


def _check_mask(mask, ref) -> np.ndarray:
    """Boolean mask on the grid of ``ref`` (resampled with nearest neighbour)."""
    if mask is None:
        return np.ones(ref.shape[:3], dtype=bool)
    mask = _load_img(mask, "mask")
    if len(mask.shape) == 4 and mask.shape[3] == 1:
        mask = nib.Nifti1Image(np.asarray(mask.dataobj)[..., 0], mask.affine)
    if mask.shape[:3] != ref.shape[:3] or not np.allclose(mask.affine, ref.affine, atol=1e-4):
        ref3 = nib.Nifti1Image(np.zeros(ref.shape[:3], np.int8), ref.affine)
        mask = resample_to_img(mask, ref3, interpolation="nearest", force_resample=True,
                               copy_header=True)
    data = np.asarray(mask.dataobj)
    data = np.nan_to_num(data) != 0
    if not data.any():
        raise DataFormatError(
            "mask is all zeros (after resampling to the runs' grid if it was on another one); "
            "pass a mask that overlaps the BOLD field of view."
        )
    return data


def _design(frame_times, events, hrf_model, drift_model, high_pass, drift_order,
            confounds, min_onset, oversampling) -> pd.DataFrame:
    conf_arr = conf_names = None
    if confounds is not None:
        conf_arr = confounds.to_numpy(dtype=float)
        conf_names = [f"__fb_conf_{c}" for c in confounds.columns]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unexpected columns.*")
        return make_first_level_design_matrix(
            frame_times, None if events is None else events[
                [c for c in ("onset", "duration", "trial_type", "modulation") if c in events]],
            hrf_model=hrf_model,
            drift_model=drift_model, high_pass=high_pass, drift_order=drift_order,
            add_regs=conf_arr, add_reg_names=conf_names, min_onset=min_onset,
            oversampling=oversampling,
        )


def _batched_first_row_pinv(designs: np.ndarray) -> np.ndarray:
    """First row of ``pinv(X_i)`` for a stack of designs ``(n, n_scans, p)`` -> ``(n, n_scans)``.

    Uses the SVD with scipy's default cut-off (``max(M, N) * eps * s_max``), as
    nilearn's OLS (``scipy.linalg.pinv``) does.
    """
    u, s, vt = np.linalg.svd(designs, full_matrices=False)
    cut = max(designs.shape[1:]) * np.finfo(float).eps * s[:, :1]
    inv_s = np.where(s > cut, 1.0 / np.where(s > cut, s, 1.0), 0.0)
    # pinv = V diag(1/s) U^T ; first row = vt[:, :, 0] * inv_s @ U^T
    return np.einsum("nk,nk,ntk->nt", vt[:, :, 0], inv_s, u)


def _lss_weights(T: np.ndarray, N: np.ndarray) -> np.ndarray:
    """LSS weights ``(n_trials, n_scans)`` from trial regressors ``T (n_scans, k)``
    and nuisance columns ``N (n_scans, q)`` (linear HRF models)."""
    k, n = T.shape[1], T.shape[0]
    if k == 1:
        stack = np.concatenate([T[None], N[None]], axis=2)
    else:
        other = T.sum(axis=1, keepdims=True) - T  # (n_scans, k)
        stack = np.empty((k, n, 2 + N.shape[1]))
        stack[:, :, 0] = T.T
        stack[:, :, 1] = other.T
        stack[:, :, 2:] = N[None]
    return _batched_first_row_pinv(stack)


def _lss_weights_nilearn(frame_times, events, trial_rows, kw, rows=slice(None)) -> np.ndarray:
    """LSS weights building each trial's design with nilearn (non-linear HRF models)."""
    designs = []
    for r in trial_rows:
        ev = events.copy()
        is_trial = ev["stimulus_id"].notna().to_numpy()
        tt = np.where(is_trial, "__fb_other", ev["trial_type"].to_numpy(dtype=object))
        tt[r] = "__fb_this"
        ev["trial_type"] = tt
        d = _design(frame_times, ev, **kw)
        cols = ["__fb_this"] + [c for c in d.columns if c != "__fb_this"]
        designs.append(d[cols].to_numpy(dtype=float)[rows])
    return _batched_first_row_pinv(np.stack(designs))


def _scaling_str(signal_scaling) -> str:
    if signal_scaling is False:
        return "false"
    if isinstance(signal_scaling, (tuple, list)):
        return ",".join(str(int(v)) for v in signal_scaling)
    return str(int(signal_scaling))


@public
def single_trial_betas(
    runs,
    events: Sequence | None = None,
    *,
    method: str = "lss",
    hrf_model: str = "glover",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    drift_order: int = 1,
    slice_time_ref: float | None = None,
    signal_scaling: bool | int | tuple = False,
    confounds: Sequence | Mapping | bool | None = None,
    sample_masks: Sequence | None = None,
    mask=None,
    noise_model: str = "ols",
    average_repeats: bool = True,
    tr: float | None = None,
    stimuli=None,
    min_onset: float = -24,
    oversampling: int = 50,
    stimulus_map: dict | None = None,
    out_of_range: str = "error",
) -> tuple[xr.DataArray, nib.Nifti1Image]:
    """Estimate one response pattern per trial (LSS or LSA) and label it by stimulus.

    Parameters
    ----------
    runs : BIDSRuns, or list of 4D images / paths
        BOLD runs on one grid. A :class:`BIDSRuns` also supplies ``events``, ``tr``
        and ``mask`` unless they are given here.
    events : list of DataFrame or .tsv paths, one per run
        ``onset, duration, trial_type, stimulus_id`` (optional ``modulation``, used as
        nilearn does). Rows without a stimulus id (``n/a``) are modelled as nuisance
        conditions named by ``trial_type``. Without a ``stimulus_id`` column (and no
        ``stimulus_map``), ``trial_type`` is taken as the stimulus id.
    method : {"lss", "lsa"}
        ``"lss"``: each trial against one regressor of all other trials of its run
        (Mumford et al. 2012). ``"lsa"``: one GLM with a regressor per trial.
    hrf_model, drift_model, high_pass, drift_order, min_onset, oversampling
        As in :class:`nilearn.glm.first_level.FirstLevelModel`. ``"fir"`` is not supported.
    slice_time_ref : float in [0, 1], optional
        Time of the reference slice as a fraction of the TR (frame times are
        ``(k + slice_time_ref) * tr``). ``None``: a BIDSRuns' value read from the
        sidecars (``StartTime``, else the middle of ``SliceTiming``, as
        :func:`load_bids` documents), else 0.0 (nilearn's default).
    signal_scaling : False, 0, 1 or (0, 1)
        As in FirstLevelModel (False: no scaling; nilearn's default is 0, percent
        signal change of each voxel's mean over time).
    confounds : None, False, mapping, or list of DataFrame / array (one per run)
        ``None``: a BIDSRuns' fMRIPrep confounds selected with nilearn's default
        strategy (:data:`DEFAULT_CONFOUNDS`: 24 motion parameters, fMRIPrep's cosine
        high-pass basis, white matter and CSF), none otherwise. ``False``: none. A
        mapping ``{"strategy": [...], "motion": ..., ...}``: that
        :func:`nilearn.interfaces.fmriprep.load_confounds` selection of a BIDSRuns'
        fMRIPrep tables (see :func:`fmriprep_confounds`); volumes it scrubs are
        left out. A list: extra regressors used as given (rows = volumes, no NaN).
    sample_masks : list of int or bool arrays, one per run, optional
        Volumes to keep (nilearn's ``sample_masks``); intersected with those a
        confound strategy keeps. The design is built on all volumes, then cut.
    out_of_range : {"error", "drop"}
        Events whose onset lies outside a run's acquisition window
        ``[0, n_scans * tr)`` raise :class:`~facebrain.errors.TimingError`
        (``"error"``), or are dropped with a warning (``"drop"``).
    mask : image or path, optional
        Voxels to model; resampled (nearest) to the runs' grid if needed. ``None``
        models every voxel of the field of view. The cost grows with mask voxels.
    noise_model : {"ols"}
        Only ordinary least squares is vectorised; use nilearn's FirstLevelModel for AR models.
    average_repeats : bool
        Average trials of the same stimulus (across and within runs); otherwise
        keep them along a ``repeat`` dim (NaN-padded where a stimulus has fewer).
    tr : float, optional
        Repetition time in seconds (required unless ``runs`` is a BIDSRuns).
    stimuli : StimulusSet, optional
        Every event's stimulus id must be in it; output stimuli follow its order.
    stimulus_map : mapping, optional
        ``{trial_type: stimulus_id}`` for events without a ``stimulus_id`` column.

    Returns
    -------
    betas : DataArray of shape (n_stimuli, n_voxels) or (n_stimuli, n_repeats, n_voxels)
        Named ``"betas"``; coords ``stimulus`` (str), ``voxel`` (int), ``i, j, k`` (int
        voxel indices), ``x, y, z`` (mm), ``n_repeats`` (per stimulus), and with repeats
        ``run`` / ``onset`` (per stimulus and repeat; repeats are numbered in run, then
        onset order); attrs ``tr``, ``slice_time_ref`` (+ ``slice_time_ref_source``),
        ``signal_scaling`` (a string: ``"false"``, ``"0"``, ``"1"`` or ``"0,1"``),
        ``confounds`` (JSON of the strategy, ``"none"`` or ``"given"``),
        ``n_confounds`` and ``n_scans_used`` (per run), ``method``, ``affine`` (16
        floats, row-major), ``grid_shape``, ``n_dropped_voxels``.
    mask_img : Nifti1Image
        The voxels actually modelled (mask minus dropped NaN/constant voxels).

    Examples
    --------
    >>> betas, mask = single_trial_betas(load_bids("bids", subject="01", task="faces"))  # doctest: +SKIP
    >>> betas.dims  # doctest: +SKIP
    ('stimulus', 'voxel')
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}; got {method!r}.")
    if noise_model != "ols":
        raise ParameterError(
            f"noise_model={noise_model!r} is not supported by the vectorised solver; use "
            "noise_model='ols' (or nilearn's FirstLevelModel for AR noise models)."
        )
    if not isinstance(hrf_model, str) or "fir" in hrf_model.lower():
        raise ParameterError(
            f"hrf_model must be a nilearn HRF name other than 'fir' (e.g. 'glover', 'spm', "
            f"'glover + derivative'); got {hrf_model!r}."
        )
    if isinstance(signal_scaling, list):  # (0, 1) as it comes from YAML
        signal_scaling = tuple(signal_scaling)
    if signal_scaling not in (False, 0, 1, (0, 1)) or signal_scaling is True:
        raise ParameterError(f"signal_scaling must be False, 0, 1 or (0, 1); got {signal_scaling!r}.")
    data = runs if isinstance(runs, BIDSRuns) else None
    own_events = data is not None and events is None
    if data is not None:
        runs = data.runs
        events = data.events if events is None else events
        tr = data.tr if tr is None else tr
        mask = data.mask if mask is None else mask
    imgs = _check_runs(runs)
    paths = data.paths if data is not None else {}
    run_names = list(paths.get("bold") or [f"runs[{i}]" for i in range(len(imgs))])
    if tr is None:
        raise ParameterError(
            "tr is missing: pass tr=<seconds> (the BOLD repetition time), or pass the output "
            "of load_bids, which reads RepetitionTime from the sidecar."
        )
    tr = parse_seconds(tr, "tr", "tr")
    for name, img in zip(run_names, imgs):
        check_tr_header(tr, img, f"run {name}")
    slice_time_ref, stref_source = resolve_slice_time_ref(slice_time_ref, data)
    if events is None:
        raise ParameterError("events is missing: pass one events table per run.")
    if isinstance(events, (pd.DataFrame, str, os.PathLike)):
        events = [events]
    if len(events) != len(imgs):
        raise ParameterError(f"got {len(imgs)} runs but {len(events)} events tables; pass one per run.")
    ev_names = list((own_events and paths.get("events")) or
                    [f"events[{i}]" for i in range(len(imgs))])
    events = [check_onsets(check_events(e, where=ev_names[i], stimulus_map=stimulus_map,
                                        trial_type_is_stimulus=True),
                           imgs[i].shape[3], tr, where=ev_names[i], run=run_names[i],
                           out_of_range=out_of_range)
              for i, e in enumerate(events)]
    confounds, keep_scans, conf_desc = resolve_confounds(confounds, data, imgs)
    keep_scans = merge_sample_masks(keep_scans, sample_masks, imgs)
    if drift_model == "cosine" and '"high_pass"' in conf_desc:
        warnings.warn(
            "the confound strategy includes 'high_pass' (fMRIPrep's cosine regressors) and "
            "drift_model='cosine' adds nilearn's: the design is rank deficient and nilearn "
            "regularises it. Pass drift_model=None, or drop 'high_pass' from the strategy.",
            UserWarning, stacklevel=user_stacklevel())
    events = [check_sampled(ev, imgs[i].shape[3], tr, slice_time_ref,
                             None if keep_scans is None else keep_scans[i], hrf_model,
                             where=ev_names[i], run=run_names[i], out_of_range=out_of_range)
              for i, ev in enumerate(events)]
    all_ids = pd.unique(pd.concat([e["stimulus_id"].dropna() for e in events]).astype(str))
    if stimuli is not None:
        known = set(map(str, stimuli.ids))
        missing = [s for s in all_ids if s not in known]
        if missing:
            raise StimulusMismatchError(
                f"events name {len(missing)} stimulus id(s) absent from the StimulusSet "
                f"{getattr(stimuli, 'name', '')!r}: {missing[:10]}{' ...' if len(missing) > 10 else ''}. "
                "Use the StimulusSet that was shown, or fix the events' stimulus_id column."
            )
        order = [s for s in map(str, stimuli.ids) if s in set(all_ids)]
    else:
        order = sorted(all_ids)

    ref = imgs[0]
    mask_arr = _check_mask(mask, ref)
    ijk = np.argwhere(mask_arr)  # C order
    Ys = []
    keep = np.ones(len(ijk), dtype=bool)
    everything = bool(mask_arr.all())
    # read only the mask's bounding box (nibabel proxies slice lazily from disk)
    lo, hi = ijk.min(axis=0), ijk.max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    in_box = np.flatnonzero(mask_arr[box].ravel())
    for img in imgs:
        if everything:
            arr = np.asarray(img.dataobj)
            raw = arr.reshape(-1, arr.shape[3])
        else:
            arr = np.asarray(img.dataobj[box + (slice(None),)])
            raw = arr.reshape(-1, arr.shape[3])[in_box]  # (n_vox, n_scans), C order
        y = raw.T.astype(np.float64)  # (n_scans, n_vox)
        finite = np.isfinite(y.sum(axis=0))  # one reduction; NaN/inf anywhere -> non-finite
        if not finite.all():
            finite &= np.isfinite(y).all(axis=0)
            keep &= finite
            y = np.where(np.isfinite(y), y, 0.0)
        keep &= raw.max(axis=1) > raw.min(axis=1)
        Ys.append(y)
    n_drop = int((~keep).sum())
    if n_drop:
        warnings.warn(
            f"dropped {n_drop} of {len(keep)} mask voxels that are NaN or constant in at least "
            "one run; they get no betas.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if not keep.any():
        raise DataFormatError("every mask voxel is NaN or constant; nothing to model.")
    if n_drop:
        ijk = ijk[keep]
        Ys = [y[:, keep] for y in Ys]

    kw = {"hrf_model": hrf_model, "drift_model": drift_model, "high_pass": high_pass,
          "drift_order": drift_order, "min_onset": min_onset, "oversampling": oversampling}
    linear_hrf = hrf_model.lower() in ("glover", "spm")
    rows_b, rows_sid, rows_run, rows_onset = [], [], [], []
    for r, (img, ev, Y) in enumerate(zip(imgs, events, Ys)):
        n_scans = img.shape[3]
        frame_times = np.linspace(slice_time_ref * tr, (n_scans - 1 + slice_time_ref) * tr, n_scans)
        # as FirstLevelModel: the design on every volume, then the kept rows; the data
        # cut to the kept volumes before scaling
        rows = slice(None) if keep_scans is None else keep_scans[r]
        Y = Y[rows]
        if signal_scaling is not False:
            Y, _ = mean_scaling(Y, signal_scaling)
        is_trial = ev["stimulus_id"].notna().to_numpy()
        trial_rows = np.flatnonzero(is_trial)
        if len(trial_rows) == 0:
            continue
        conf = None if confounds is None else confounds[r]
        if linear_hrf:
            # trial columns from the vectorised nilearn-equivalent regressors; the rest
            # (non-stimulus conditions, confounds, drift) from nilearn itself
            T = event_regressors(frame_times, ev["onset"].to_numpy()[trial_rows],
                                 ev["duration"].to_numpy()[trial_rows], hrf_model=hrf_model,
                                 oversampling=oversampling, min_onset=min_onset)
            if "modulation" in ev.columns:  # nilearn scales each event by its modulation
                T = T * ev["modulation"].to_numpy()[trial_rows][None, :]
            nuis_ev = ev.loc[~is_trial]
            N = _design(frame_times, nuis_ev if len(nuis_ev) else None, confounds=conf,
                        **kw).to_numpy(dtype=float)[rows]
            T = T[rows]
            if method == "lsa":
                W = np.linalg.pinv(np.concatenate([T, N], axis=1))[: T.shape[1]]
            else:
                W = _lss_weights(T, N)
        else:
            ev_lsa = ev.copy()
            names = [_TRIAL.format(t) for t in range(len(trial_rows))]
            tt = ev_lsa["trial_type"].to_numpy(dtype=object)
            tt[trial_rows] = names
            ev_lsa["trial_type"] = tt
            if method == "lsa":
                design = _design(frame_times, ev_lsa, confounds=conf, **kw)
                pinv = np.linalg.pinv(design.to_numpy(dtype=float)[rows])
                W = pinv[[design.columns.get_loc(c) for c in names]]
            else:
                W = _lss_weights_nilearn(frame_times, ev, trial_rows, dict(kw, confounds=conf),
                                         rows)
        rows_b.append(W @ Y)
        rows_sid.extend(ev["stimulus_id"].to_numpy()[trial_rows].astype(str))
        rows_run.extend([r] * len(trial_rows))
        rows_onset.extend(ev["onset"].to_numpy()[trial_rows])
    B = np.concatenate(rows_b, axis=0)
    sid = np.asarray(rows_sid)
    n_rep = pd.Series(sid).value_counts()
    max_rep = int(n_rep.max())
    pos = {s: i for i, s in enumerate(order)}
    out = np.full((len(order), max_rep, B.shape[1]), np.nan)
    run_of = np.full((len(order), max_rep), -1)
    onset_of = np.full((len(order), max_rep), np.nan)
    seen: dict[str, int] = {}
    for t, s in enumerate(sid):  # trials are in (run, onset) order
        k = seen.get(s, 0)
        out[pos[s], k] = B[t]
        run_of[pos[s], k] = rows_run[t]
        onset_of[pos[s], k] = rows_onset[t]
        seen[s] = k + 1
    xyz = nib.affines.apply_affine(ref.affine, ijk)
    coords = {
        "stimulus": np.asarray(order, dtype=object).astype(str),
        "voxel": np.arange(len(ijk)),
        "i": ("voxel", ijk[:, 0].astype(int)),
        "j": ("voxel", ijk[:, 1].astype(int)),
        "k": ("voxel", ijk[:, 2].astype(int)),
        "x": ("voxel", xyz[:, 0].astype(float)),
        "y": ("voxel", xyz[:, 1].astype(float)),
        "z": ("voxel", xyz[:, 2].astype(float)),
        "n_repeats": ("stimulus", np.array([int(n_rep[s]) for s in order])),
    }
    attrs = {
        "tr": tr,
        "method": method,
        "hrf_model": hrf_model,
        "drift_model": str(drift_model),
        "high_pass": float(high_pass),
        "noise_model": noise_model,
        "affine": [float(v) for v in np.asarray(ref.affine).ravel()],
        "grid_shape": [int(v) for v in ref.shape[:3]],
        "n_dropped_voxels": n_drop,
        "slice_time_ref": float(slice_time_ref),
        "slice_time_ref_source": stref_source,
        "signal_scaling": _scaling_str(signal_scaling),
        "confounds": conf_desc,
        "n_confounds": [0 if confounds is None else int(c.shape[1]) for c in
                        (confounds or [None] * len(imgs))],
        "n_scans_used": [int(img.shape[3]) if keep_scans is None else len(keep_scans[i])
                         for i, img in enumerate(imgs)],
    }
    if average_repeats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(out, axis=1)
        da = xr.DataArray(values, dims=("stimulus", "voxel"), coords=coords, name="betas",
                          attrs=attrs)
    else:
        coords["repeat"] = np.arange(max_rep)
        coords["run"] = (("stimulus", "repeat"), run_of)  # -1 where a stimulus has fewer repeats
        coords["onset"] = (("stimulus", "repeat"), onset_of)
        da = xr.DataArray(out, dims=("stimulus", "repeat", "voxel"), coords=coords,
                          name="betas", attrs=attrs)
    final = np.zeros(ref.shape[:3], dtype=np.uint8)
    final[tuple(ijk.T)] = 1
    return da, nib.Nifti1Image(final, ref.affine)
