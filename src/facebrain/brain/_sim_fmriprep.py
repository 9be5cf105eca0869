"""Nuisance signals for the simulator, written as fMRIPrep confound tables.

:func:`nuisance_signals` draws head motion (6 rigid-body parameters: a slow random
walk, a few jerks, and a small stimulus-locked part, the case in which not
regressing motion biases the betas) and two physiological signals (CSF and white
matter: slow AR(1) plus an aliased respiratory sinusoid). The simulator adds them
to every voxel with random weights, so regressing them matters.

:func:`fmriprep_table` lays them out as fMRIPrep does
(``*_desc-confounds_timeseries.tsv``): motion, CSF, white matter and global signal
with ``_derivative1`` (n/a on the first volume), ``_power2`` and
``_derivative1_power2`` columns, ``framewise_displacement`` (Power et al. 2012: sum
of absolute translation differences plus 50 mm times rotation differences, n/a
first), ``dvars`` / ``std_dvars`` (n/a first; ``std_dvars`` here is DVARS over its
median, a stand-in for fMRIPrep's AR-model standardisation), the DCT cosine basis
(``cosine00``... for a 128 s cut-off), aCompCor / tCompCor components with their JSON
metadata, and ``non_steady_state_outlierXX`` one-hot columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["fmriprep_table", "nuisance_signals"]

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def nuisance_signals(n_scans: int, tr: float, task: np.ndarray, rng: np.random.Generator,
                     task_locked: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Motion ``(n_scans, 6)`` (mm, rad) and physiology ``(n_scans, 2)`` (csf, wm).

    ``task`` is the sum of the trial regressors; ``task_locked`` scales the part of the
    motion that follows it.
    """
    walk = np.cumsum(rng.standard_normal((n_scans, 6)) * 0.03, axis=0)
    jerks = np.zeros((n_scans, 6))
    for t in rng.choice(np.arange(1, n_scans), size=max(1, n_scans // 60), replace=False):
        jerks[t:] += rng.standard_normal(6) * 0.3
    task = (task - task.mean()) / (task.std() or 1.0)
    locked = task[:, None] * rng.standard_normal(6)[None, :] * 0.1 * task_locked
    motion = walk + jerks + locked
    motion[:, 3:] *= np.pi / 180  # rotations in radians (about 1 degree per mm)
    phys = np.empty((n_scans, 2))
    for k in range(2):
        ar = np.empty(n_scans)
        e = rng.standard_normal(n_scans)
        ar[0] = e[0]
        for t in range(1, n_scans):
            ar[t] = 0.7 * ar[t - 1] + e[t]
        f = rng.uniform(0.02, 0.2)  # aliased respiration
        phys[:, k] = ar + np.sin(2 * np.pi * f * np.arange(n_scans) * tr + rng.uniform(0, 6))
    return motion, phys


def _expand(name: str, x: np.ndarray) -> dict:
    d = np.r_[np.nan, np.diff(x)]
    return {name: x, f"{name}_derivative1": d, f"{name}_power2": x ** 2,
            f"{name}_derivative1_power2": d ** 2}


def fmriprep_table(motion: np.ndarray, phys: np.ndarray, data: np.ndarray, tr: float,
                   noise: np.ndarray, n_non_steady: int = 0, n_compcor: int = 5):
    """An fMRIPrep-style confounds table and its JSON metadata.

    Parameters
    ----------
    motion : ndarray of shape (n_scans, 6)
    phys : ndarray of shape (n_scans, 2)
        CSF and white-matter signals.
    data : ndarray of shape (n_scans, n_voxels)
        The written BOLD (global signal, DVARS).
    noise : ndarray of shape (n_scans, n_noise_voxels)
        Signal-free voxels whose principal components stand in for CompCor.
    """
    n = motion.shape[0]
    cols: dict = {}
    gs = data.mean(axis=1)
    cols.update(_expand("global_signal", gs))
    cols.update(_expand("csf", phys[:, 0]))
    cols.update(_expand("white_matter", phys[:, 1]))
    dv = np.r_[np.nan, np.sqrt((np.diff(data, axis=0) ** 2).mean(axis=1))]
    cols["std_dvars"] = dv / np.nanmedian(dv)
    cols["dvars"] = dv
    dm = np.abs(np.diff(motion, axis=0))
    cols["framewise_displacement"] = np.r_[np.nan, dm[:, :3].sum(1) + 50.0 * dm[:, 3:].sum(1)]
    meta = {}
    nz = noise - noise.mean(axis=0)
    u, s, _ = np.linalg.svd(nz, full_matrices=False)
    var = s ** 2 / (s ** 2).sum()
    for prefix, method, mask, offset in (("a", "aCompCor", "combined", 0), ("t", "tCompCor", None, 1)):
        for k in range(n_compcor):
            name = f"{prefix}_comp_cor_{k:02d}"
            cols[name] = u[:, k + offset] if prefix == "t" else u[:, k]
            meta[name] = {"Method": method, "Retained": True, "SingularValue": float(s[k]),
                          "VarianceExplained": float(var[k]),
                          "CumulativeVarianceExplained": float(var[: k + 1].sum())}
            if mask:
                meta[name]["Mask"] = mask
    n_cos = int(np.floor(2 * n * tr / 128.0))
    t = np.arange(n)
    for k in range(1, n_cos + 1):
        cols[f"cosine{k - 1:02d}"] = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * k / (2 * n))
    for k in range(n_non_steady):
        cols[f"non_steady_state_outlier{k:02d}"] = (t == k).astype(float)
    for j, name in enumerate(MOTION):
        cols.update(_expand(name, motion[:, j]))
    return pd.DataFrame(cols), meta
