"""load_bids on hand-written tiny BIDS trees (raw and fMRIPrep-style derivatives)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from facebrain.brain import load_bids, single_trial_betas
from facebrain.errors import DataFormatError

SHAPE = (5, 6, 7)
N_SCANS = 40


def _img(rng, tr=None):
    img = nib.Nifti1Image(rng.standard_normal(SHAPE + (N_SCANS,)).astype(np.float32) + 50,
                          np.diag([3.0, 3.0, 3.5, 1.0]))
    if tr is not None:
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = tr
    return img


def _events(rng, with_sid=True):
    df = pd.DataFrame({"onset": [4.0, 20.0, 40.0], "duration": 1.0,
                       "trial_type": ["faceA", "faceB", "faceA"]})
    if with_sid:
        df["stimulus_id"] = ["a", "b", "a"]
    return df


def _write_raw(root, rng, *, runs=2, sidecar="run", with_sid=True, header_tr=None, task="faces"):
    (root / "sub-01" / "func").mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9.0"}))
    if sidecar == "task":
        (root / f"task-{task}_bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    for r in range(1, runs + 1):
        stem = root / "sub-01" / "func" / f"sub-01_task-{task}_run-{r}"
        nib.save(_img(rng, header_tr), f"{stem}_bold.nii.gz")
        if sidecar == "run":
            (stem.parent / f"{stem.name}_bold.json").write_text(
                json.dumps({"RepetitionTime": 2.0, "TaskName": task}))
        _events(rng, with_sid).to_csv(f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a")
    return root


def test_raw_runs_tr_from_run_sidecar(tmp_path, rng):
    root = _write_raw(tmp_path / "ds", rng, runs=11)
    data = load_bids(root, subject="sub-01", task="faces")
    assert data.tr == 2.0 and len(data.runs) == 11 and data.confounds is None
    # run-10 sorts after run-9, not after run-1
    assert [int(p.split("run-")[1].split("_")[0]) for p in data.paths["bold"]] == list(range(1, 12))
    assert list(data.events[0].columns[:4]) == ["onset", "duration", "trial_type", "stimulus_id"]
    betas, _ = single_trial_betas(data)
    assert set(betas.stimulus.values) == {"a", "b"}


def test_tr_inherited_from_task_level_sidecar(tmp_path, rng):
    data = load_bids(_write_raw(tmp_path / "ds", rng, sidecar="task"), subject="01", task="faces")
    assert data.tr == 2.5


def test_tr_from_header_warns_and_missing_tr_errors(tmp_path, rng):
    root = _write_raw(tmp_path / "a", rng, sidecar=None, header_tr=1.5)
    with pytest.warns(UserWarning, match="NIfTI header's TR = 1.5"):
        assert load_bids(root, subject="01", task="faces").tr == 1.5
    root = _write_raw(tmp_path / "b", rng, sidecar=None, header_tr=0.0)
    with pytest.raises(DataFormatError, match="no TR found.*RepetitionTime"):
        load_bids(root, subject="01", task="faces")


def test_stimulus_map_and_missing_stimulus_id(tmp_path, rng):
    root = _write_raw(tmp_path / "ds", rng, with_sid=False)
    with pytest.raises(DataFormatError, match="no 'stimulus_id' column.*stimulus_map"):
        load_bids(root, subject="01", task="faces")
    data = load_bids(root, subject="01", task="faces", stimulus_map={"faceA": "a", "faceB": "b"})
    assert list(data.events[0]["stimulus_id"]) == ["a", "b", "a"]


def test_missing_subject_and_task(tmp_path, rng):
    root = _write_raw(tmp_path / "ds", rng)
    with pytest.raises(FileNotFoundError, match=r"sub-02.*subjects in .*\['sub-01'\]"):
        load_bids(root, subject="02", task="faces")
    with pytest.raises(FileNotFoundError, match="no BOLD runs for sub-01 task-rest"):
        load_bids(root, subject="01", task="rest")


def test_fmriprep_derivatives(tmp_path, rng):
    root = _write_raw(tmp_path / "ds", rng, runs=2)
    deriv = tmp_path / "ds" / "derivatives" / "fmriprep"
    func = deriv / "sub-01" / "func"
    func.mkdir(parents=True)
    for space in ("MNI152NLin2009cAsym", "T1w"):
        for r in (1, 2):
            stem = f"sub-01_task-faces_run-{r}"
            nib.save(_img(rng), func / f"{stem}_space-{space}_desc-preproc_bold.nii.gz")
            mask = np.zeros(SHAPE, np.uint8)
            mask[1:4, 1:5, 1:6] = 1
            nib.save(nib.Nifti1Image(mask, np.diag([3.0, 3.0, 3.5, 1.0])),
                     func / f"{stem}_space-{space}_desc-brain_mask.nii.gz")
    for r in (1, 2):
        conf = pd.DataFrame({"trans_x": np.r_[np.nan, rng.standard_normal(N_SCANS - 1)],
                             "rot_z": rng.standard_normal(N_SCANS)})
        conf.to_csv(func / f"sub-01_task-faces_run-{r}_desc-confounds_timeseries.tsv", sep="\t",
                    index=False, na_rep="n/a")
    with pytest.raises(DataFormatError, match="several spaces.*MNI152NLin2009cAsym.*T1w"):
        load_bids(root, subject="01", task="faces", derivatives=deriv)
    data = load_bids(root, subject="01", task="faces", derivatives=deriv,
                     space="MNI152NLin2009cAsym")
    assert all("space-MNI152NLin2009cAsym_desc-preproc" in p for p in data.paths["bold"])
    assert data.tr == 2.0  # raw sidecar inherited
    assert len(data.confounds) == 2 and list(data.confounds[0].columns) == ["trans_x", "rot_z"]
    assert data.mask is not None
    with pytest.raises(DataFormatError, match="NaN in column.*trans_x"):
        single_trial_betas(data, confounds=data.confounds)
    betas, _mimg = single_trial_betas(data, confounds=[c[["rot_z"]] for c in data.confounds])
    assert betas.sizes["voxel"] == 3 * 4 * 5
