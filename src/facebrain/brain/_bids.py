"""Read one subject's BOLD runs, events and confounds from a BIDS dataset.

Only the parts of BIDS that a single-trial analysis needs are read; ``pybids``
is not required. Raw data follow ``sub-<label>/[ses-<label>/]func/
sub-<label>[_ses-<label>]_task-<label>[_run-<index>]_bold.nii[.gz]``; fMRIPrep
derivatives add ``_space-<label>_desc-preproc_bold`` and
``_desc-confounds_timeseries.tsv``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from .._utils import check_path_like
from ..errors import DataFormatError, MissingFileError, ParameterTypeError, TimingError
from ._timing import check_tr_header, header_tr, parse_seconds, slice_time_ref_from

__all__ = ["BIDSRuns", "load_bids"]

EVENT_COLUMNS = ("onset", "duration", "trial_type")
_NA = {"", "n/a"}  # BIDS's missing marker; "NA", "None", "null" can be real names


@public
@dataclass
class BIDSRuns:
    """The runs of one subject and task, ready for :func:`single_trial_betas`.

    Attributes
    ----------
    runs : list of Nifti1Image
        4D BOLD images, one per run, in run order.
    tr : float
        Repetition time in seconds.
    events : list of DataFrame
        One table per run with ``onset, duration, trial_type, stimulus_id``
        (``stimulus_id`` is missing (NA) on non-stimulus events).
    confounds : list of DataFrame or None
        fMRIPrep confound tables (all columns as read) when derivatives hold them.
    mask : Nifti1Image or None
        Brain mask from the derivatives (first run's), if present.
    slice_time_ref : float or None
        Slice-time reference as a fraction of the TR, from the sidecars (``StartTime``,
        else the middle of ``SliceTiming``, else 0.0); see ``slice_time_ref_source``.
    slice_time_ref_source : str
        Where ``slice_time_ref`` came from.
    paths : dict
        ``{"bold": [...], "events": [...], "confounds": [...], "mask": ...}``.
    subject, task, space : str
    """

    runs: list
    tr: float
    events: list
    confounds: list | None = None
    mask: object = None
    paths: dict = field(default_factory=dict)
    subject: str = ""
    task: str = ""
    space: str | None = None
    slice_time_ref: float | None = None
    slice_time_ref_source: str = ""

    def __repr__(self) -> str:
        shape = self.runs[0].shape if self.runs else ()
        return (
            f"<BIDSRuns sub-{self.subject} task-{self.task}: {len(self.runs)} runs of shape "
            f"{shape}, TR={self.tr} s, confounds={'yes' if self.confounds else 'no'}>"
        )


def _entities(name: str) -> dict[str, str]:
    stem = re.sub(r"\.(nii\.gz|nii|tsv|json|tsv\.gz)$", "", name)
    ents = {}
    for part in stem.split("_")[:-1]:
        if "-" in part:
            k, v = part.split("-", 1)
            ents[k] = v
    ents["suffix"] = stem.split("_")[-1]
    return ents


def _raw_stem(name: str) -> str:
    """``sub-01_task-x_run-1_space-S_desc-preproc_bold.nii.gz`` -> ``sub-01_task-x_run-1``."""
    stem = re.sub(r"_(space|desc|res|den)-[^_.]+", "", name)
    return re.sub(r"_bold\.nii(\.gz)?$", "", stem)


def _run_sort_key(path: Path):
    ents = _entities(path.name)
    run = ents.get("run", "0")
    return (ents.get("ses", ""), ents.get("acq", ""), int(run) if run.isdigit() else run)


def check_events(
    events,
    *,
    where: str = "events",
    stimulus_map: Mapping[str, str] | None = None,
    trial_type_is_stimulus: bool = False,
) -> pd.DataFrame:
    """Validate one events table and return a copy with a ``stimulus_id`` column.

    Rows whose ``stimulus_id`` is missing (``n/a``) are kept as non-stimulus
    events (modelled as nuisance conditions by :func:`single_trial_betas`). The
    result is sorted by onset; its index is each event's row in the input (0-based,
    header excluded), so that later messages can name the row.
    """
    if isinstance(events, (str, os.PathLike)):
        where = str(events)
        events = pd.read_csv(events, sep="\t", na_values=["n/a", ""], keep_default_na=False,
                             dtype={"stimulus_id": str, "trial_type": str})  # "NA" is a name
    if not isinstance(events, pd.DataFrame):
        raise ParameterTypeError(f"{where}: events must be a DataFrame or a .tsv path; got {type(events)}")
    df = events.copy()
    if not (df.index.is_unique and pd.api.types.is_integer_dtype(df.index)):
        df = df.reset_index(drop=True)
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{where}: events lack column(s) {missing}; found {list(df.columns)}. BIDS events "
            "need onset, duration and trial_type (add trial_type, e.g. equal to stimulus_id)."
        )
    for col in ("onset", "duration"):
        vals = pd.to_numeric(df[col], errors="coerce")
        if vals.isna().any():
            bad = df.loc[vals.isna(), col].tolist()[:5]
            raise DataFormatError(f"{where}: column {col!r} has non-numeric values {bad}.")
        df[col] = vals.astype(float)
    df["trial_type"] = df["trial_type"].astype(str)
    if "modulation" in df.columns:
        mod = pd.to_numeric(df["modulation"], errors="coerce")
        if mod.isna().any():
            raise DataFormatError(f"{where}: column 'modulation' has missing or non-numeric values.")
        df["modulation"] = mod.astype(float)
    if stimulus_map is not None:
        mapped = df["trial_type"].map(dict(stimulus_map))
        if "stimulus_id" in df.columns:
            mapped = df["stimulus_id"].where(~_is_na(df["stimulus_id"]), mapped)
        df["stimulus_id"] = mapped
    elif "stimulus_id" not in df.columns and trial_type_is_stimulus:
        df["stimulus_id"] = df["trial_type"]
    elif "stimulus_id" not in df.columns:
        raise DataFormatError(
            f"{where}: events have no 'stimulus_id' column. Add one, or pass "
            "stimulus_map={trial_type: stimulus_id} to say which trial types are which images."
        )
    sid = df["stimulus_id"]
    na = _is_na(sid)
    df["stimulus_id"] = sid.astype(object).where(~na, None)
    df.loc[~na, "stimulus_id"] = df.loc[~na, "stimulus_id"].astype(str)
    if (~na).sum() == 0:
        raise DataFormatError(
            f"{where}: no event names a stimulus (stimulus_id is n/a on every row); check the "
            "stimulus_id column or the stimulus_map."
        )
    # sorted by onset; the index keeps each event's row in the file (0-based) for messages
    return df.sort_values("onset", kind="stable")


def _is_na(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype(str).str.strip().str.lower().isin(_NA)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read JSON sidecar ({exc}).") from exc


_META_KEYS = ("RepetitionTime", "StartTime", "SliceTiming")


def _sidecar_meta(bold: Path, roots: Sequence[Path], task: str,
                  raw_json: Path | None = None) -> dict:
    """Timing keys by BIDS inheritance: ``{key: (value, sidecar path)}``, the most
    specific sidecar first (run's own, raw run's, subject-level, task-level)."""
    stem = re.sub(r"\.nii(\.gz)?$", "", bold.name)
    candidates = [bold.with_name(stem + ".json")]
    if raw_json is not None:
        candidates.append(raw_json)
    ents = _entities(bold.name)
    for root in roots:
        if "sub" in ents:
            candidates.append(root / f"sub-{ents['sub']}" / f"sub-{ents['sub']}_task-{task}_bold.json")
        candidates.append(root / f"task-{task}_bold.json")
    meta: dict = {}
    for c in candidates:
        if c.is_file():
            found = _read_json(c)
            for key in _META_KEYS:
                if key in found and key not in meta:
                    meta[key] = (found[key], c)
    return meta


def _header_tr(img, path: Path) -> float | None:
    tr, pix, unit = header_tr(img)
    if tr is None:  # a zoom without time units (nibabel's default 1.0) is not a TR
        return None
    tr = parse_seconds(tr, f"{path}: NIfTI header pixdim[4] = {pix:g} ({unit})")
    warnings.warn(
        f"{path}: no RepetitionTime in a JSON sidecar; using the NIfTI header's TR = {tr} s. "
        "Add RepetitionTime to the sidecar to silence this.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return tr


@public
def load_bids(
    root: str | os.PathLike,
    *,
    subject: str,
    task: str,
    space: str | None = None,
    derivatives: str | os.PathLike | None = None,
    stimulus_map: Mapping[str, str] | None = None,
) -> BIDSRuns:
    """Load one subject's BOLD runs, events and confounds for one task.

    Parameters
    ----------
    root : path
        BIDS dataset root (holding ``dataset_description.json`` and ``sub-*``).
    subject : str
        Subject label, with or without ``sub-``.
    task : str
        Task label, with or without ``task-``.
    space : str, optional
        Template space of the derivatives (``"MNI152NLin2009cAsym"``). Needed when
        ``derivatives`` hold more than one space.
    derivatives : path, optional
        An fMRIPrep-style derivatives folder. When given, BOLD runs are its
        ``*_desc-preproc_bold.nii.gz`` files, confounds its
        ``*_desc-confounds_timeseries.tsv`` and the mask its ``*_desc-brain_mask``;
        events still come from ``root``.
    stimulus_map : mapping, optional
        ``{trial_type: stimulus_id}`` for events files without a ``stimulus_id`` column.

    Returns
    -------
    BIDSRuns
        With ``slice_time_ref`` from the sidecars: ``StartTime / RepetitionTime`` (what
        fMRIPrep writes after slice-timing correction; as nilearn's
        ``first_level_from_bids``), else the middle of ``SliceTiming`` over the TR, else 0.

    Raises
    ------
    TimingError
        ``RepetitionTime`` that is not a plain number of seconds (``"2.0s"``), above 32 s
        (milliseconds), or that disagrees (> 1 %) with the NIfTI header's pixdim[4] in its
        xyzt time unit; ``StartTime`` / ``SliceTiming`` outside ``[0, TR)``.

    Examples
    --------
    >>> data = load_bids("bids", subject="01", task="faces")  # doctest: +SKIP
    >>> betas, mask = single_trial_betas(data)  # doctest: +SKIP
    """
    check_path_like(root, "root", where="load_bids")
    root = Path(root)
    subject = str(subject).removeprefix("sub-")
    task = str(task).removeprefix("task-")
    if not root.is_dir():
        raise MissingFileError(f"BIDS root {root} does not exist.")
    sub_dir = root / f"sub-{subject}"
    if not sub_dir.is_dir():
        have = sorted(p.name for p in root.glob("sub-*"))
        raise MissingFileError(f"{sub_dir} not found; subjects in {root}: {have}.")
    raw_bolds = sorted(
        [p for p in sub_dir.rglob(f"sub-{subject}*_task-{task}_*bold.nii*")
         if _entities(p.name).get("task") == task and _entities(p.name)["suffix"] == "bold"],
        key=_run_sort_key,
    )
    confound_paths = None
    mask_path = None
    tr_roots = [root]
    if derivatives is not None:
        deriv = Path(derivatives)
        dsub = deriv / f"sub-{subject}"
        if not dsub.is_dir():
            raise MissingFileError(f"derivatives folder {dsub} not found.")
        found = [p for p in dsub.rglob(f"sub-{subject}*_task-{task}_*desc-preproc_bold.nii*")
                 if _entities(p.name).get("task") == task]
        spaces = sorted({_entities(p.name).get("space", "") for p in found})
        if space is None and len(spaces) > 1:
            raise DataFormatError(
                f"{dsub}: preprocessed runs exist in several spaces {spaces}; pass space=..."
            )
        if space is not None:
            found = [p for p in found if _entities(p.name).get("space") == space]
            if not found:
                raise MissingFileError(
                    f"{dsub}: no *_space-{space}_desc-preproc_bold for task {task!r}; spaces "
                    f"found: {spaces}."
                )
        bolds = sorted(found, key=_run_sort_key)
        tr_roots = [deriv, root]
        confound_paths = []
        for b in bolds:
            prefix = _raw_stem(b.name)
            cands = [b.with_name(prefix + "_desc-confounds_timeseries.tsv"),
                     b.with_name(prefix + "_desc-confounds_regressors.tsv")]
            confound_paths.append(next((c for c in cands if c.is_file()), None))
            m = b.with_name(b.name.replace("desc-preproc_bold", "desc-brain_mask"))
            if mask_path is None and m.is_file():
                mask_path = m
        if all(c is None for c in confound_paths):
            confound_paths = None
        elif any(c is None for c in confound_paths):
            miss = [str(b) for b, c in zip(bolds, confound_paths) if c is None]
            raise MissingFileError(f"no desc-confounds_timeseries.tsv beside {miss}.")
    else:
        bolds = raw_bolds
    if not bolds:
        where = derivatives if derivatives is not None else sub_dir
        raise MissingFileError(
            f"no BOLD runs for sub-{subject} task-{task} under {where} "
            f"(looked for sub-{subject}*_task-{task}_*bold.nii[.gz])."
        )

    runs, trs, events, event_paths, stref = [], [], [], [], []
    for b in bolds:
        img = nib.load(str(b))
        if img.ndim != 4:
            raise DataFormatError(f"{b}: a BOLD run must be 4D; got shape {img.shape}.")
        runs.append(img)
        stem = _raw_stem(b.name)
        rel = b.parent.relative_to(Path(derivatives) if derivatives is not None else root)
        meta = _sidecar_meta(b, tr_roots, task, raw_json=root / rel / f"{stem}_bold.json")
        if "RepetitionTime" in meta:
            value, side = meta["RepetitionTime"]
            tr = parse_seconds(value, str(side), "RepetitionTime")
            check_tr_header(tr, img, f"run {b}", source=f"RepetitionTime in {side}")
        else:
            tr = _header_tr(img, b)
        if tr is None:
            raise DataFormatError(
                f"{b}: no TR found: no RepetitionTime in {b.name.split('.')[0]}.json or "
                f"task-{task}_bold.json, and the header has no time zoom. Add RepetitionTime."
            )
        trs.append(tr)
        stref.append(slice_time_ref_from(meta, tr, f"run {b}"))
        # events live in the raw dataset, beside the raw run of the same entities
        ev = root / rel / f"{stem}_events.tsv"
        if not ev.is_file():
            alt = root / f"task-{task}_events.tsv"
            if alt.is_file():
                ev = alt
            else:
                raise MissingFileError(f"events file {ev} not found for run {b}.")
        event_paths.append(ev)
        events.append(check_events(ev, where=str(ev), stimulus_map=stimulus_map))
    if len(set(trs)) > 1:
        raise DataFormatError(
            f"runs of sub-{subject} task-{task} have different TRs {dict(zip(map(str, bolds), trs))}; "
            "analyse them separately."
        )
    if len({round(r, 9) for r, _ in stref}) > 1:
        raise TimingError(
            f"runs of sub-{subject} task-{task} have different slice-time references "
            f"{dict(zip(map(str, bolds), (src for _, src in stref)))}; analyse them separately "
            "or pass slice_time_ref= to single_trial_betas."
        )
    confounds = None
    if confound_paths is not None:
        confounds = [pd.read_csv(c, sep="\t", na_values=["n/a"]) for c in confound_paths]
        for c, df, img in zip(confound_paths, confounds, runs):
            if len(df) != img.shape[3]:
                raise DataFormatError(
                    f"{c}: {len(df)} rows but the run has {img.shape[3]} volumes."
                )
    mask = nib.load(str(mask_path)) if mask_path is not None else None
    return BIDSRuns(
        runs=runs,
        tr=trs[0],
        events=events,
        confounds=confounds,
        mask=mask,
        paths={
            "bold": [str(b) for b in bolds],
            "events": [str(e) for e in event_paths],
            "confounds": [str(c) for c in confound_paths] if confound_paths else [],
            "mask": str(mask_path) if mask_path else None,
        },
        subject=subject,
        task=task,
        space=space,
        slice_time_ref=stref[0][0],
        slice_time_ref_source=stref[0][1],
    )
