"""A small BIDS layout checker for the simulator's output (pybids is not a dependency)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import pandas as pd

FUNC = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_task-(?P<task>[A-Za-z0-9]+)(_run-(?P<run>[0-9]+))?"
    r"_(?P<suffix>bold\.nii\.gz|bold\.nii|bold\.json|events\.tsv)$"
)
DERIV_MASK = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)(_space-[A-Za-z0-9]+)?_label-[A-Za-z0-9]+_mask\.nii(\.gz)?$"
)
DERIV_PREPROC = re.compile(  # fMRIPrep's preprocessed runs
    r"^sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?_task-[A-Za-z0-9]+(_run-[0-9]+)?"
    r"(_space-[A-Za-z0-9]+)?_desc-preproc_bold\.nii(\.gz)?$"
)
ROOT_FILES = {"dataset_description.json", "participants.tsv", "README", "CHANGES", ".bidsignore"}


def check_bids(root: str | Path) -> list[str]:
    """Return a list of problems (empty when the layout is valid)."""
    root = Path(root)
    problems: list[str] = []
    desc = root / "dataset_description.json"
    if not desc.is_file():
        return ["missing dataset_description.json"]
    meta = json.loads(desc.read_text())
    for key in ("Name", "BIDSVersion"):
        if key not in meta:
            problems.append(f"dataset_description.json lacks {key}")
    ignored = set()
    if (root / ".bidsignore").is_file():
        ignored = {line.strip() for line in (root / ".bidsignore").read_text().splitlines() if line.strip()}
    subs = sorted(p.name for p in root.glob("sub-*") if p.is_dir())
    part = pd.read_csv(root / "participants.tsv", sep="\t")
    if list(part.columns[:1]) != ["participant_id"] or sorted(part.participant_id) != subs:
        problems.append(f"participants.tsv {list(part.get('participant_id', []))} != {subs}")
    for f in root.iterdir():
        if f.is_file() and f.name not in ROOT_FILES and f.name not in ignored \
                and not re.match(r"^task-[A-Za-z0-9]+_bold\.json$", f.name):
            problems.append(f"unexpected file at root: {f.name}")
    for sub in subs:
        for f in (root / sub).rglob("*"):
            if f.is_dir():
                if f.name not in ("func", "anat") or f.parent != root / sub:
                    problems.append(f"unexpected folder {f.relative_to(root)}")
                continue
            m = FUNC.match(f.name)
            if f.parent.name != "func" or not m or f"sub-{m['sub']}" != sub:
                problems.append(f"misplaced or misnamed file {f.relative_to(root)}")
                continue
            if m["suffix"].startswith("bold.nii"):
                stem = f.name.split("_bold")[0]
                img = nib.load(str(f))
                if img.ndim != 4:
                    problems.append(f"{f.name}: not 4D")
                side = f.with_name(stem + "_bold.json")
                task_side = root / f"task-{m['task']}_bold.json"
                sc = json.loads(side.read_text()) if side.is_file() else (
                    json.loads(task_side.read_text()) if task_side.is_file() else {})
                if "RepetitionTime" not in sc:
                    problems.append(f"{f.name}: no RepetitionTime in sidecar")
                elif abs(float(img.header["pixdim"][4]) - sc["RepetitionTime"]) > 1e-6:
                    problems.append(f"{f.name}: header TR != RepetitionTime")
                if "TaskName" not in sc:
                    problems.append(f"{f.name}: no TaskName in sidecar")
                ev = f.with_name(stem + "_events.tsv")
                if not ev.is_file():
                    problems.append(f"{f.name}: no events.tsv")
                else:
                    df = pd.read_csv(ev, sep="\t")
                    if list(df.columns[:2]) != ["onset", "duration"]:
                        problems.append(f"{ev.name}: first columns must be onset, duration")
                    n_sec = img.shape[3] * sc.get("RepetitionTime", 0)
                    if (df.onset < 0).any() or (df.onset > n_sec).any():
                        problems.append(f"{ev.name}: onsets outside the run")
    deriv = root / "derivatives"
    for d in deriv.iterdir() if deriv.is_dir() else []:
        dd = d / "dataset_description.json"
        if not dd.is_file():
            problems.append(f"derivatives/{d.name} lacks dataset_description.json")
            continue
        meta = json.loads(dd.read_text())
        if meta.get("DatasetType") != "derivative" or "GeneratedBy" not in meta:
            problems.append(f"derivatives/{d.name}: DatasetType/GeneratedBy missing")
        for f in d.rglob("*.nii*"):
            named = DERIV_MASK.match(f.name) or DERIV_PREPROC.match(f.name)
            if not named or not f.parent.parent.name.startswith("sub-"):
                problems.append(f"derivative file misnamed {f.relative_to(root)}")
    return problems
