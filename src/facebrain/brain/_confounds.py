"""fMRIPrep confounds selected by nilearn's ``load_confounds`` strategies.

The selection is nilearn's own (:func:`nilearn.interfaces.fmriprep.load_confounds`):
the motion / white matter and CSF / global signal models with their derivative and
power2 expansions, fMRIPrep's cosine high-pass basis, anatomical or temporal
CompCor components (read from the confounds JSON), scrubbing of motion outliers by
framewise displacement and standardised DVARS, and fMRIPrep's non-steady-state
volumes. Derivative columns are NaN on the first volume; nilearn fills that row with
the second volume's value before demeaning, and the volumes that scrubbing or
non-steady-state detection removes come back as a ``sample_mask`` (indices of the
volumes to keep), as FirstLevelModel expects.

nilearn finds a confounds table from the name of a preprocessed BOLD file
(``*_desc-preproc_bold.nii.gz``). To accept any confounds table (a path with any
name, or a DataFrame), :func:`fmriprep_confounds` copies it (and its JSON sidecar)
into a temporary folder under fMRIPrep names and calls ``load_confounds`` there; the
columns, values and sample mask are nilearn's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._boundary import public
from ..errors import DataFormatError, MissingFileError, ParameterError

__all__ = ["CONFOUND_STRATEGIES", "DEFAULT_CONFOUNDS", "check_confounds_spec",
           "fmriprep_confounds", "merge_sample_masks", "resolve_confounds"]

#: Noise components that can be selected (nilearn's names).
CONFOUND_STRATEGIES = ("compcor", "global_signal", "high_pass", "motion", "scrub", "wm_csf")

#: nilearn's defaults for :func:`nilearn.interfaces.fmriprep.load_confounds`.
DEFAULT_CONFOUNDS: dict = {
    "strategy": ("motion", "high_pass", "wm_csf"),
    "motion": "full",
    "wm_csf": "basic",
    "global_signal": "basic",
    "compcor": "anat_combined",
    "n_compcor": "all",
    "scrub": 5,
    "fd_threshold": 0.5,
    "std_dvars_threshold": 1.5,
    "demean": True,
}
_MODELS = ("basic", "derivatives", "full", "power2")
_COMPCOR = ("anat_combined", "anat_separated", "temporal", "temporal_anat_combined",
            "temporal_anat_separated")
_STEM = "sub-facebrain_task-confounds"


def check_confounds_spec(spec: Mapping | None, where: str = "confounds") -> dict:
    """Validate a strategy mapping and return it completed with nilearn's defaults.

    Parameters
    ----------
    spec : mapping or None
        ``{"strategy": [...], "motion": "full", ...}``; missing keys take nilearn's
        defaults (:data:`DEFAULT_CONFOUNDS`). ``None`` gives the defaults.
    where : str
        Name of the argument or config key, used in error messages.

    Returns
    -------
    dict
        Every key of :data:`DEFAULT_CONFOUNDS`; ``strategy`` as a tuple in the given order.
    """
    spec = dict(spec or {})
    unknown = sorted(set(spec) - set(DEFAULT_CONFOUNDS))
    if unknown:
        raise DataFormatError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(DEFAULT_CONFOUNDS)}.")
    out = {**DEFAULT_CONFOUNDS, **spec}
    strategy = out["strategy"]
    if isinstance(strategy, str):
        strategy = [strategy]
    if not isinstance(strategy, (list, tuple)):
        raise DataFormatError(f"{where}.strategy: expected a list of names from "
                              f"{list(CONFOUND_STRATEGIES)}; got {strategy!r}.")
    bad = [s for s in strategy if s not in CONFOUND_STRATEGIES]
    if bad:
        raise DataFormatError(
            f"{where}.strategy: unknown or unsupported component(s) {bad}; choose from "
            f"{list(CONFOUND_STRATEGIES)} (non-steady-state volumes are always removed).")
    if "compcor" in strategy and "high_pass" not in strategy:
        raise DataFormatError(
            f"{where}.strategy: 'compcor' needs 'high_pass' too (fMRIPrep's CompCor "
            "components are computed after its cosine high-pass filter).")
    out["strategy"] = tuple(strategy)
    for key in ("motion", "wm_csf", "global_signal"):
        if out[key] not in _MODELS:
            raise DataFormatError(f"{where}.{key}: expected one of {list(_MODELS)}; "
                                  f"got {out[key]!r}.")
    if out["compcor"] not in _COMPCOR:
        raise DataFormatError(f"{where}.compcor: expected one of {list(_COMPCOR)}; "
                              f"got {out['compcor']!r}.")
    n = out["n_compcor"]
    if not (n == "all" or (isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                           and n > 0)):
        raise DataFormatError(f"{where}.n_compcor: expected 'all' or a positive int; got {n!r}.")
    if not (isinstance(out["scrub"], (int, np.integer)) and out["scrub"] >= 0):
        raise DataFormatError(f"{where}.scrub: expected an int >= 0 (minimal segment "
                              f"length in volumes); got {out['scrub']!r}.")
    for key in ("fd_threshold", "std_dvars_threshold"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise DataFormatError(f"{where}.{key}: expected a number > 0; got {v!r}.")
    if not isinstance(out["demean"], bool):
        raise DataFormatError(f"{where}.demean: expected true or false; got {out['demean']!r}.")
    return out


@public
def fmriprep_confounds(
    table: str | os.PathLike | pd.DataFrame,
    spec: Mapping | None = None,
    *,
    metadata: str | os.PathLike | Mapping | None = None,
    where: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Select confounds from one fMRIPrep confounds table with a nilearn strategy.

    Parameters
    ----------
    table : path or DataFrame
        An fMRIPrep ``*_desc-confounds_timeseries.tsv`` (``n/a`` for missing values)
        or the same table read into a DataFrame.
    spec : mapping, optional
        Strategy and parameters as :func:`nilearn.interfaces.fmriprep.load_confounds`
        takes them (see :data:`DEFAULT_CONFOUNDS`; missing keys take its defaults).
    metadata : path or mapping, optional
        The confounds JSON (needed by ``compcor``). For a ``table`` path, the ``.json``
        beside it is used when this is not given.
    where : str, optional
        Name of the table in error messages.

    Returns
    -------
    confounds : DataFrame of shape (n_scans, n_confounds)
        nilearn's selection (first-row NaN of derivatives filled, demeaned by default).
    sample_mask : ndarray of int or None
        Volumes to keep (scrubbing, non-steady-state volumes); None keeps all.

    Examples
    --------
    >>> conf, keep = fmriprep_confounds("sub-01_task-faces_desc-confounds_timeseries.tsv",
    ...                                 {"strategy": ["motion", "wm_csf"], "motion": "basic"})  # doctest: +SKIP
    """
    from nilearn.interfaces.fmriprep import load_confounds

    spec = check_confounds_spec(spec, "confounds")
    where = where or (str(table) if not isinstance(table, pd.DataFrame) else "confounds table")
    with tempfile.TemporaryDirectory(prefix="facebrain-confounds-") as tmp:
        tsv = Path(tmp) / f"{_STEM}_desc-confounds_timeseries.tsv"
        meta_out = tsv.with_suffix(".json")
        if isinstance(table, pd.DataFrame):
            table.to_csv(tsv, sep="\t", index=False, na_rep="n/a")
        else:
            src = Path(table)
            if not src.is_file():
                raise MissingFileError(f"{where}: confounds file {src} not found.")
            shutil.copyfile(src, tsv)
            if metadata is None:
                side = src.with_suffix(".json")
                metadata = side if side.is_file() else None
        if isinstance(metadata, Mapping):
            meta_out.write_text(json.dumps(dict(metadata)))
        elif metadata is not None:
            shutil.copyfile(metadata, meta_out)
        bold = Path(tmp) / f"{_STEM}_desc-preproc_bold.nii.gz"  # named, never read
        kwargs = {k: v for k, v in spec.items() if k != "strategy"}
        n_rows = len(pd.read_csv(tsv, sep="\t", usecols=[0]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.filterwarnings("ignore", message="strategy is empty")
                conf, sample_mask = load_confounds(str(bold), strategy=spec["strategy"], **kwargs)
        except (ValueError, KeyError) as exc:
            raise DataFormatError(
                f"{where}: nilearn's load_confounds with strategy {list(spec['strategy'])} "
                f"failed: {exc} Choose a strategy whose columns the table has (or "
                "confounds=False in single_trial_betas to model none).") from exc
    if conf is None:  # an empty strategy: only non-steady-state volumes are handled
        conf = pd.DataFrame(index=range(n_rows))
    if len(conf.columns) and conf.isna().to_numpy().any():
        bad = [c for c in conf.columns if conf[c].isna().any()]
        raise DataFormatError(f"{where}: selected confound column(s) {bad[:5]} still hold NaN "
                              "after nilearn's first-row fill; the table has missing values "
                              "beyond the first volume.")
    if sample_mask is not None:
        sample_mask = np.asarray(sample_mask, dtype=int)
    return conf.reset_index(drop=True), sample_mask


def resolve_confounds(confounds, data, imgs):
    """single_trial_betas's ``confounds`` argument -> (tables or None, sample masks or None,
    description for the attrs)."""
    if confounds is False:
        return None, None, "none"
    if confounds is None or isinstance(confounds, Mapping):
        has = data is not None and (data.confounds or data.paths.get("confounds"))
        if confounds is None and not has:
            return None, None, "none"
        spec = check_confounds_spec(DEFAULT_CONFOUNDS if confounds is None else confounds)
        if not has:
            raise DataFormatError(
                "confounds: a strategy mapping selects columns of fMRIPrep confound tables, "
                "and these runs have none. Pass load_bids(..., derivatives=<fMRIPrep folder>) "
                "output, or select the columns with facebrain.brain.fmriprep_confounds and pass "
                "the tables (and its sample masks as sample_masks=)."
            )
        sources = data.paths.get("confounds") or data.confounds
        out, masks = [], []
        for i, src in enumerate(sources):
            c, m = fmriprep_confounds(src, spec, where=str(src) if isinstance(src, str)
                                      else f"confounds[{i}]")
            out.append(c)
            masks.append(m)
        desc = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()})
        return out, (masks if any(m is not None for m in masks) else None), desc
    if isinstance(confounds, (pd.DataFrame, np.ndarray)):
        confounds = [confounds]
    if len(confounds) != len(imgs):
        raise ParameterError(f"got {len(imgs)} runs but {len(confounds)} confounds tables.")
    conf = []
    for i, (c, img) in enumerate(zip(confounds, imgs)):
        c = pd.DataFrame(c) if not isinstance(c, pd.DataFrame) else c.copy()
        c.columns = [str(x) for x in c.columns]
        if len(c) != img.shape[3]:
            raise DataFormatError(
                f"confounds[{i}] has {len(c)} rows but runs[{i}] has {img.shape[3]} volumes."
            )
        bad = [col for col in c.columns if c[col].isna().any()]
        if bad:
            raise DataFormatError(
                f"confounds[{i}] has NaN in column(s) {bad[:5]}; select columns without NaN, "
                "fill them, or pass a strategy mapping (confounds={'strategy': [...]}) to "
                "let nilearn's load_confounds select fMRIPrep columns (it fills the NaN first "
                "row of derivatives)."
            )
        conf.append(c.reset_index(drop=True))
    return conf, None, "given"


def merge_sample_masks(from_conf, given, imgs):
    """Volumes to keep per run (sorted int indices) or None for all of them."""
    if given is None and from_conf is None:
        return None
    if given is not None:
        if isinstance(given, np.ndarray) and given.ndim == 1 and len(imgs) == 1:
            given = [given]
        if len(given) != len(imgs):
            raise ParameterError(f"got {len(imgs)} runs but {len(given)} sample_masks; pass one per "
                                 "run (None keeps every volume of that run).")
    out = []
    for i, img in enumerate(imgs):
        n = img.shape[3]
        keep = np.arange(n)
        for src, m in (("confound strategy", None if from_conf is None else from_conf[i]),
                       ("sample_masks", None if given is None else given[i])):
            if m is None:
                continue
            m = np.asarray(m)
            if m.dtype == bool:
                if m.shape != (n,):
                    raise DataFormatError(f"sample_masks[{i}]: a boolean mask needs {n} values "
                                          f"(the run's volumes); got shape {m.shape}.")
                m = np.flatnonzero(m)
            if m.size and (not np.issubdtype(m.dtype, np.integer) or m.min() < 0 or m.max() >= n):
                raise DataFormatError(f"{src} of run {i}: volume indices must be ints in "
                                      f"[0, {n}); got {m[:5]} ...")
            keep = np.intersect1d(keep, m)
        if keep.size < 3:
            raise DataFormatError(f"run {i}: only {keep.size} of {n} volumes are kept after "
                                  "scrubbing / sample_masks; nothing to fit.")
        out.append(keep)
    return out
