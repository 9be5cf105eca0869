"""Simulated BIDS fMRI of a face experiment with planted ROI responses (known ground truth).

The grid is MNI-aligned (default 4 mm voxels) over a box around the ventral and
lateral occipito-temporal cortex of both hemispheres (x -64..64, y -104..-24,
z -32..24 mm: 33 x 21 x 15 voxels). ROIs are spheres at the default face-network
coordinates (``face_roi_table``), jittered per subject; voxels outside ROIs carry
noise only. Each ROI has a *driver* that maps stimuli to voxel responses:

``"identity"`` / ``"expression"`` / ``{"kind": "labels", "identity": w}``
    A random pattern per category and voxel; a stimulus' response is
    ``sqrt(w) * pattern[identity] + sqrt(1 - w) * pattern[expression]``.
``ndarray (n_stimuli, n_features)`` or ``{"kind": "features", "features": X}``
    z-scored features times a random Gaussian map ``(n_features, n_voxels)``
    (an ``xr.DataArray`` with a ``stimulus`` dim is aligned by stimulus id).
``"pixels"`` / ``{"kind": "pixels", "size": 24}``
    Local contrast energy of the grayscale image (``|g - mean(g)|`` at ``size`` x
    ``size``) pooled by a random Gaussian receptive field per voxel (centre
    uniform in the image, sigma 1.5-4 px).

Per voxel, the stimulus pattern is z-scored across stimuli and an evoked
response of ``evoked`` (default 1) is added: ``true[s, v] = evoked + z[s, v]``
(this is what ``ground_truth.json`` stores). The BOLD signal is
``sum_trials true[s_trial, v] * x_trial(t)`` with ``x_trial`` the trial's
glover-HRF regressor (nilearn-identical, see ``_regressors.py``), plus a
voxel baseline, slow cosine drift (periods >= 128 s) and AR(1) noise.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr

from .._boundary import public
from .._utils import check_path_like
from ..errors import (
    DataFormatError,
    MissingFileError,
    MissingKeyError,
    OutputExistsError,
    ParameterError,
    ParameterTypeError,
)
from ._regressors import event_regressors
from ._rois import face_roi_table
from ._sim_fmriprep import fmriprep_table, nuisance_signals

__all__ = ["load_ground_truth", "simulate"]

SPACE = "MNI152NLin2009cAsym"
BIDS_VERSION = "1.9.0"
BOX_MM = ((-64.0, 64.0), (-104.0, -24.0), (-32.0, 24.0))


def _grid(voxel_size: float):
    lo = np.array([b[0] for b in BOX_MM])
    hi = np.array([b[1] for b in BOX_MM])
    shape = tuple(int(v) for v in np.floor((hi - lo) / voxel_size + 1e-9).astype(int) + 1)
    affine = np.diag([voxel_size] * 3 + [1.0])
    affine[:3, 3] = lo
    return affine, shape


def _zscore(a: np.ndarray, axis: int = 0) -> np.ndarray:
    sd = a.std(axis=axis, keepdims=True)
    return (a - a.mean(axis=axis, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def _normalise_driver(name: str, driver, stimuli) -> dict:
    if isinstance(driver, str):
        key = driver.lower()
        if key == "identity":
            return {"kind": "labels", "identity": 1.0}
        if key == "expression":
            return {"kind": "labels", "identity": 0.0}
        if key == "pixels":
            return {"kind": "pixels", "size": 24}
        raise ParameterError(
            f"driver for ROI {name!r}: unknown name {driver!r}; use 'identity', 'expression', "
            "'pixels', a dict with 'kind', or a feature array (n_stimuli, n_features)."
        )
    if isinstance(driver, (np.ndarray, xr.DataArray)):
        driver = {"kind": "features", "features": driver}
    if not isinstance(driver, Mapping) or "kind" not in driver:
        raise ParameterError(f"driver for ROI {name!r} must be a str, array or dict with 'kind'; got {driver!r}.")
    d = dict(driver)
    if d["kind"] == "labels":
        w = float(d.get("identity", 0.5))
        if not 0.0 <= w <= 1.0:
            raise ParameterError(f"driver for ROI {name!r}: identity weight must be in [0, 1]; got {w}.")
        d["identity"] = w
    elif d["kind"] == "features":
        X = d.get("features")
        if isinstance(X, xr.DataArray):
            if "stimulus" not in X.dims:
                raise DataFormatError(f"driver for ROI {name!r}: feature DataArray lacks a 'stimulus' dim.")
            missing = sorted(set(map(str, stimuli.ids)) - set(map(str, X["stimulus"].values)))
            if missing:
                raise DataFormatError(
                    f"driver for ROI {name!r}: features lack stimuli {missing[:5]} "
                    f"({len(missing)} in all)."
                )
            X = X.sel(stimulus=list(stimuli.ids)).transpose("stimulus", ...).values
        X = np.asarray(X, dtype=float).reshape(len(np.asarray(X)), -1) if np.ndim(X) else None
        if X is None or X.shape[0] != len(stimuli):
            raise DataFormatError(
                f"driver for ROI {name!r}: features need one row per stimulus ({len(stimuli)}); "
                f"got shape {None if X is None else X.shape}."
            )
        if not np.isfinite(X).all():
            raise DataFormatError(f"driver for ROI {name!r}: features contain NaN or inf.")
        d["features"] = X
        d.setdefault("label", "features")
    elif d["kind"] == "pixels":
        d["size"] = int(d.get("size", 24))
    else:
        raise ParameterError(f"driver for ROI {name!r}: unknown kind {d['kind']!r} "
                             "(labels, features, pixels).")
    return d


def _driver_patterns(d: dict, stimuli, n_vox: int, rng: np.random.Generator, cache: dict) -> np.ndarray:
    """z-scored stimulus x voxel patterns for one ROI."""
    n = len(stimuli)
    if d["kind"] == "labels":
        w = d["identity"]
        out = np.zeros((n, n_vox))
        for col, weight in (("identity", w), ("expression", 1.0 - w)):
            codes, cats = pd.factorize(stimuli.table[col].astype(str))
            pat = rng.standard_normal((len(cats), n_vox))
            out += np.sqrt(weight) * pat[codes]
    elif d["kind"] == "features":
        X = d["features"]
        keep = X.std(axis=0) > 0
        if not keep.any():
            raise DataFormatError("feature driver: every feature is constant across stimuli.")
        Xz = _zscore(X[:, keep])
        W = rng.standard_normal((Xz.shape[1], n_vox)) / np.sqrt(Xz.shape[1])
        out = Xz @ W
    else:  # pixels
        size = d["size"]
        key = ("pixels", size)
        if key not in cache:
            imgs = np.stack([stimuli.load(i, size=size).astype(float).mean(axis=2)
                             for i in range(n)])  # (n, size, size) grayscale
            cache[key] = np.abs(imgs - imgs.mean(axis=(1, 2), keepdims=True)).reshape(n, -1)
        energy = cache[key]
        yy, xx = np.mgrid[0:size, 0:size]
        cy = rng.uniform(0, size - 1, n_vox)
        cx = rng.uniform(0, size - 1, n_vox)
        sig = rng.uniform(1.5, 4.0, n_vox)
        rf = np.exp(-((yy.ravel()[:, None] - cy) ** 2 + (xx.ravel()[:, None] - cx) ** 2)
                    / (2 * sig ** 2))
        out = energy @ (rf / rf.sum(axis=0))
    return _zscore(out)


def _describe(d: dict) -> dict:
    if d["kind"] == "features":
        X = d["features"]
        return {"kind": "features", "label": str(d.get("label", "features")),
                "n_features": int(X.shape[1])}
    return {k: v for k, v in d.items()}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


@public
def simulate(
    out_dir: str | os.PathLike,
    stimuli,
    *,
    subjects: int = 2,
    runs: int = 4,
    repeats: int = 2,
    rois=None,
    drivers: Mapping[str, object] | None = None,
    tr: float = 2.0,
    snr: float = 0.5,
    seed: int = 0,
    trial_duration: float = 1.0,
    isi: tuple[float, float] = (2.0, 4.0),
    radius: float | None = None,
    jitter_mm: float = 2.0,
    voxel_size: float = 4.0,
    ar_coef: float = 0.4,
    drift_scale: float = 0.5,
    evoked: float = 1.0,
    task: str = "faces",
    overwrite: bool = False,
    confounds: bool = False,
    motion_scale: float = 1.0,
    non_steady: int = 0,
) -> Path:
    """Write a BIDS dataset of simulated face-experiment fMRI with planted ROI responses.

    Parameters
    ----------
    out_dir : path
        Dataset root to create (must not exist or be empty unless ``overwrite``).
        Everything is written to a temporary folder beside it, then renamed.
    stimuli : StimulusSet
        The images shown; each is shown ``repeats`` times per subject.
    subjects, runs, repeats : int
        ``repeats`` shuffled passes over the stimuli are concatenated and cut into
        ``runs`` runs (each run's order shuffled again, seeded).
    rois : None, list of names, or mapping name -> (x, y, z) mm
        ``None``: every ROI of :func:`face_roi_table`. Voxels claimed by an earlier
        ROI are not reassigned (ROIs are disjoint).
    drivers : mapping roi -> driver, optional
        See the module docstring. Defaults: FFA identity (w=0.8), OFA labels
        (w=0.5), pSTS expression, EVC pixels; other ROIs identity.
    tr : float
        Repetition time (s).
    snr : float
        Signal-to-noise ratio: the temporal standard deviation of the
        stimulus-specific part of the signal (``sum_trials z[s_trial, v] x_trial(t)``,
        pooled over all ROI voxels and runs of a subject) divided by the standard
        deviation of the (stationary) AR(1) noise. The evoked mean and the drift are
        not counted.
    seed : int
        Everything (event orders, jitter, ROI maps, noise) follows from it.
    trial_duration : float
        Stimulus duration (s).
    isi : (low, high)
        Inter-stimulus interval drawn uniformly (s); the SOA is duration + isi.
    radius : float, optional
        Sphere radius (mm) overriding the table's.
    jitter_mm : float
        Per-subject standard deviation of the ROI centre shift (each axis, mm).
    voxel_size : float
        Isotropic voxel size (mm) of the MNI-aligned grid.
    ar_coef : float
        AR(1) coefficient of the noise (per scan).
    drift_scale : float
        Standard deviation of the slow drift relative to the noise's.
    evoked : float
        Mean evoked response added to every ROI voxel's z-scored pattern.
    task : str
        BIDS task label.
    confounds : bool
        Also add head motion and physiological (CSF, white-matter) signals to every
        voxel (random weights; a small part of the motion is stimulus-locked, see
        ``_sim_fmriprep.py``) and write an fMRIPrep-style derivatives folder
        ``derivatives/fmriprep`` (the runs as ``*_space-MNI152NLin2009cAsym_desc-preproc_bold``
        plus ``*_desc-confounds_timeseries.tsv/.json``) for
        ``load_bids(..., derivatives=root / "derivatives" / "fmriprep")``.
    motion_scale : float
        Standard deviation of each voxel's motion-related and of its physiological
        signal, relative to the noise's (with ``confounds``).
    non_steady : int
        Number of first volumes per run with a decaying T1 saturation excess (half the
        baseline at volume 0), flagged as ``non_steady_state_outlierXX`` (with ``confounds``).

    Returns
    -------
    Path
        The dataset root. ``ground_truth.json`` there (listed in ``.bidsignore``)
        records per subject and ROI the driver, its seed, the jittered centre, the
        voxel indices and the true per-stimulus responses; read it with
        :func:`load_ground_truth`.

    Examples
    --------
    >>> from facebrain.brain import load_bids
    >>> from facebrain.stimuli import synthetic_faces
    >>> stim = synthetic_faces(3, ["neutral", "happy"], ["S"], image_size=16)
    >>> root = simulate("bids_sim", stim, subjects=1, runs=2, repeats=1, rois=["rFFA"])
    >>> load_bids(root, subject="01", task="faces")
    <BIDSRuns sub-01 task-faces: 2 runs of shape (...), TR=2.0 s, confounds=no>
    """
    if not (hasattr(stimuli, "table") and hasattr(stimuli, "ids") and hasattr(stimuli, "load")):
        raise ParameterTypeError("simulate: stimuli must be a StimulusSet (facebrain.stimuli); got "
                                 f"{type(stimuli).__name__}.")
    check_path_like(out_dir, "out_dir", where="simulate")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out_dir} exists and is not empty; pass overwrite=True or a new path.")
    for name, val, lo in (("subjects", subjects, 1), ("runs", runs, 1), ("repeats", repeats, 1)):
        if int(val) != val or val < lo:
            raise ParameterError(f"{name} must be an integer >= {lo}; got {val!r}.")
    if not tr > 0 or not snr > 0:
        raise ParameterError(f"tr and snr must be > 0; got tr={tr}, snr={snr}.")
    if len(isi) != 2 or isi[0] < 0 or isi[1] < isi[0]:
        raise ParameterError(f"isi must be (low, high) with 0 <= low <= high; got {isi}.")
    if len(stimuli) < 2:
        raise ParameterError("stimuli needs at least 2 images.")
    table = face_roi_table()
    if rois is None:
        rois = list(table.index)
    if isinstance(rois, Mapping):
        centers = {n: np.asarray(c, float) for n, c in rois.items()}
        radii = {n: float(radius or 8.0) for n in rois}
    else:
        unknown = [n for n in rois if n not in table.index]
        if unknown:
            raise MissingKeyError(f"unknown ROI name(s) {unknown}; known: {list(table.index)}, or pass "
                                  "a mapping name -> (x, y, z).")
        centers = {n: table.loc[n, ["x", "y", "z"]].to_numpy(float) for n in rois}
        radii = {n: float(radius or table.loc[n, "radius_mm"]) for n in rois}
    drivers = dict(drivers or {})
    unknown = sorted(set(drivers) - set(centers))
    if unknown:
        raise MissingKeyError(f"drivers given for unknown ROI(s) {unknown}; ROIs: {list(centers)}.")
    specs = {}
    for n in centers:
        if n in drivers:
            d = drivers[n]
        elif "FFA" in n:
            d = {"kind": "labels", "identity": 0.8}
        elif "OFA" in n:
            d = {"kind": "labels", "identity": 0.5}
        elif "STS" in n:
            d = "expression"
        elif "EVC" in n or "V1" in n:
            d = "pixels"
        else:
            d = "identity"
        specs[n] = _normalise_driver(n, d, stimuli)

    affine, shape = _grid(voxel_size)
    ijk_all = np.indices(shape).reshape(3, -1).T
    xyz_all = nib.affines.apply_affine(affine, ijk_all)
    ss = np.random.SeedSequence(seed)
    sub_seqs = ss.spawn(int(subjects))
    ids = [str(s) for s in stimuli.ids]
    n_stim = len(ids)
    from .. import __version__

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_json(tmp / "dataset_description.json", {
            "Name": "facebrain simulated face experiment",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "facebrain.brain.simulate", "Version": __version__}],
        })
        (tmp / ".bidsignore").write_text("ground_truth.json\n")
        (tmp / "README").write_text(
            "Simulated BOLD data written by facebrain.brain.simulate; see ground_truth.json.\n")
        labels = [f"{s + 1:02d}" for s in range(int(subjects))]
        pd.DataFrame({"participant_id": [f"sub-{lab}" for lab in labels]}).to_csv(
            tmp / "participants.tsv", sep="\t", index=False)
        _write_json(tmp / f"task-{task}_bold.json", {"RepetitionTime": float(tr), "TaskName": task})
        deriv = tmp / "derivatives" / "facebrain-rois"
        _write_json(deriv / "dataset_description.json", {
            "Name": "facebrain simulated ROI masks",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "facebrain.brain.simulate", "Version": __version__}],
        })
        truth = {
            "facebrain_version": __version__, "seed": int(seed), "task": task, "tr": float(tr),
            "snr": float(snr), "snr_definition": "std_t(stimulus-specific signal) / std(AR(1) noise)",
            "space": SPACE, "affine": affine.tolist(), "shape": list(shape),
            "evoked": float(evoked), "ar_coef": float(ar_coef), "stimulus_ids": ids,
            "confounds": bool(confounds), "motion_scale": float(motion_scale) if confounds else 0.0,
            "non_steady": int(non_steady) if confounds else 0,
            "subjects": {},
        }
        pixel_cache: dict = {}
        for lab, sseq in zip(labels, sub_seqs):
            rng = np.random.default_rng(sseq)
            owner = np.full(len(ijk_all), -1)
            sub_truth = {"rois": {}}
            roi_resp = []
            for r_i, (name, c) in enumerate(centers.items()):
                shift = rng.normal(0.0, jitter_mm, 3)
                center = c + shift
                inside = (np.sum((xyz_all - center) ** 2, axis=1) <= radii[name] ** 2) & (owner < 0)
                if not inside.any():
                    raise DataFormatError(
                        f"ROI {name!r} at {tuple(np.round(center, 1))} mm (radius {radii[name]}) has "
                        f"no free voxel on the simulated grid (box {BOX_MM} mm); move it inside."
                    )
                owner[inside] = r_i
                vox = np.flatnonzero(inside)
                roi_seed = int(rng.integers(0, 2**31 - 1))
                z = _driver_patterns(specs[name], stimuli, vox.size,
                                     np.random.default_rng(roi_seed), pixel_cache)
                roi_resp.append((vox, z))
                sub_truth["rois"][name] = {
                    "driver": _describe(specs[name]), "seed": roi_seed,
                    "center_mm": [float(v) for v in center], "jitter_mm": [float(v) for v in shift],
                    "radius_mm": radii[name], "voxels_ijk": ijk_all[vox].tolist(),
                    "responses": np.round(evoked + z, 6).tolist(),
                }
                mask = np.zeros(shape, np.uint8)
                mask.reshape(-1)[vox] = 1
                anat = deriv / f"sub-{lab}" / "anat"
                anat.mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(mask, affine),
                         anat / f"sub-{lab}_space-{SPACE}_label-{name}_mask.nii.gz")
            # trial order: `repeats` shuffled passes cut into `runs` runs
            seq = np.concatenate([rng.permutation(n_stim) for _ in range(int(repeats))])
            chunks = np.array_split(seq, int(runs))
            run_data = []
            for r, chunk in enumerate(chunks):
                order = rng.permutation(chunk)
                soa = trial_duration + rng.uniform(isi[0], isi[1], len(order))
                onsets = 6.0 + np.concatenate([[0.0], np.cumsum(soa[:-1])])
                n_scans = int(np.ceil((onsets[-1] + trial_duration + 20.0) / tr))
                frame_times = np.linspace(0.0, (n_scans - 1) * tr, n_scans)
                X = event_regressors(frame_times, onsets, np.full(len(order), trial_duration))
                run_data.append((order, onsets, n_scans, frame_times, X))
            # noise level from the stimulus-specific signal of all ROI voxels and runs
            sig_sd = float(np.concatenate(
                [(X @ z[order]).ravel() for (order, _, _, _, X) in run_data for (_, z) in roi_resp]
            ).std())
            sigma = float(sig_sd / snr)
            baseline = 100.0 + 10.0 * rng.standard_normal(len(ijk_all))
            sub_truth["noise_sigma"] = sigma
            sub_truth["signal_sd"] = float(sig_sd)
            func = tmp / f"sub-{lab}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            for r, (order, onsets, n_scans, frame_times, X) in enumerate(run_data):
                n_vox = len(ijk_all)
                innov = rng.standard_normal((n_scans, n_vox)) * sigma * np.sqrt(1 - ar_coef ** 2)
                noise = np.empty_like(innov)
                noise[0] = innov[0] / np.sqrt(1 - ar_coef ** 2)
                for t in range(1, n_scans):
                    noise[t] = ar_coef * noise[t - 1] + innov[t]
                n_cos = 3
                period = np.array([128.0, 192.0, 256.0])[:n_cos]
                phase = rng.uniform(0, 2 * np.pi, (n_cos, n_vox))
                amp = rng.standard_normal((n_cos, n_vox)) * drift_scale * sigma / np.sqrt(n_cos / 2)
                # sum_c amp cos(w_c t + phase) as one matmul: [cos wt, -sin wt] @ [amp cos, amp sin]
                wt = 2 * np.pi * frame_times[:, None] / period[None, :]
                drift = np.concatenate([np.cos(wt), -np.sin(wt)], axis=1) @ np.concatenate(
                    [amp * np.cos(phase), amp * np.sin(phase)], axis=0)
                Y = baseline[None] + noise + drift
                for vox, z in roi_resp:
                    Y[:, vox] += X @ (evoked + z[order])
                if confounds:
                    motion, phys = nuisance_signals(n_scans, tr, X.sum(axis=1), rng)
                    nuis = np.concatenate([_zscore(motion), _zscore(phys)], axis=1)
                    weights = rng.standard_normal((8, n_vox)) * motion_scale * sigma / 2.0
                    nuis_vox = nuis @ weights  # 6 motion + 2 physiology columns, sd ~ scale
                    Y += nuis_vox
                    k = min(int(non_steady), n_scans - 1)
                    Y[:k] += 0.5 * baseline[None] * np.exp(-np.arange(k))[:, None]
                    free = np.flatnonzero(owner < 0)
                    pick = free[rng.permutation(free.size)[:500]]
                    table, meta = fmriprep_table(motion, phys, Y, tr,
                                                 (noise + nuis_vox)[:, pick], n_non_steady=k)
                img = nib.Nifti1Image(Y.T.reshape(shape + (n_scans,)).astype(np.float32), affine)
                img.set_data_dtype(np.int16)  # scaled int16, as scanners write; ~1e-3 steps
                img.header.set_xyzt_units("mm", "sec")
                img.header["pixdim"][4] = tr
                stem = f"sub-{lab}_task-{task}_run-{r + 1}"
                nib.save(img, func / f"{stem}_bold.nii.gz")
                _write_json(func / f"{stem}_bold.json", {"RepetitionTime": float(tr), "TaskName": task})
                if confounds:
                    _write_fmriprep(tmp, lab, stem, func / f"{stem}_bold.nii.gz", table, meta, tr)
                pd.DataFrame({
                    "onset": np.round(onsets, 4),
                    "duration": trial_duration,
                    "trial_type": "face",
                    "stimulus_id": [ids[i] for i in order],
                }).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
            truth["subjects"][lab] = sub_truth
        _write_json(tmp / "ground_truth.json", truth)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _write_fmriprep(root: Path, lab: str, stem: str, bold: Path, table, meta, tr: float) -> None:
    """The run as fMRIPrep would name it (same voxels: already "preprocessed"), its
    confounds table and JSON."""
    deriv = root / "derivatives" / "fmriprep"
    if not (deriv / "dataset_description.json").is_file():
        _write_json(deriv / "dataset_description.json", {
            "Name": "facebrain simulated fMRIPrep-style derivatives", "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "facebrain.brain.simulate"}]})
    func = deriv / f"sub-{lab}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    pre = func / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz"
    try:
        os.link(bold, pre)  # same bytes; no second copy on disk
    except OSError:
        shutil.copyfile(bold, pre)
    _write_json(pre.with_name(pre.name.replace(".nii.gz", ".json")),
                {"RepetitionTime": float(tr), "TaskName": stem.split("task-")[1].split("_")[0]})
    table.to_csv(func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                 na_rep="n/a")
    _write_json(func / f"{stem}_desc-confounds_timeseries.json", meta)


@public
def load_ground_truth(root: str | os.PathLike) -> dict:
    """Read ``ground_truth.json`` of a simulated dataset.

    Returns
    -------
    dict
        The JSON content, with each ROI's ``responses`` turned into a DataArray
        (``stimulus`` x ``voxel``; coords ``i, j, k, x, y, z``) under ``"truth"``.

    Examples
    --------
    >>> from facebrain.stimuli import synthetic_faces
    >>> stim = synthetic_faces(3, ["neutral", "happy"], ["S"], image_size=16)
    >>> root = simulate("bids_truth", stim, subjects=1, runs=2, repeats=1, rois=["rFFA"])
    >>> gt = load_ground_truth(root)
    >>> gt["subjects"]["01"]["rois"]["rFFA"]["truth"].dims
    ('stimulus', 'voxel')
    """
    check_path_like(root, "root", where="load_ground_truth")
    path = Path(root) / "ground_truth.json"
    if not path.is_file():
        raise MissingFileError(f"{path} not found; was {root} written by facebrain.brain.simulate?")
    gt = json.loads(path.read_text())
    affine = np.asarray(gt["affine"])
    for sub in gt["subjects"].values():
        for name, roi in sub["rois"].items():
            ijk = np.asarray(roi["voxels_ijk"], dtype=int)
            xyz = nib.affines.apply_affine(affine, ijk)
            roi["truth"] = xr.DataArray(
                np.asarray(roi["responses"], dtype=float), dims=("stimulus", "voxel"),
                coords={"stimulus": gt["stimulus_ids"], "i": ("voxel", ijk[:, 0]),
                        "j": ("voxel", ijk[:, 1]), "k": ("voxel", ijk[:, 2]),
                        "x": ("voxel", xyz[:, 0]), "y": ("voxel", xyz[:, 1]),
                        "z": ("voxel", xyz[:, 2])},
                name=f"truth_{name}",
            )
    return gt
