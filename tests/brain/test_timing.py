"""Timing sanity: TR vs the NIfTI header, TR units, onsets vs the acquisition window,
slice_time_ref from the sidecars (as nilearn's first_level_from_bids), signal_scaling.

Each case first builds the input that used to give a silently wrong answer."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from facebrain.brain import load_bids, roi_responses, simulate, single_trial_betas
from facebrain.errors import TimingError

from ._reference import nilearn_lsa, nilearn_lss_loop
from .conftest import make_stimuli

SHAPE = (7, 8, 9)
N_SCANS = 60
AFFINE = np.diag([3.0, 3.5, 4.0, 1.0])


def _img(rng, tr=None, unit="sec", n=N_SCANS):
    t = np.arange(n)
    data = rng.standard_normal(SHAPE + (n,)) + 100 + np.sin(t / 5.0)[None, None, None]
    img = nib.Nifti1Image(data.astype(np.float32), AFFINE)
    if tr is not None:
        img.header.set_xyzt_units("mm", unit)
        img.header["pixdim"][4] = tr
    return img


def _events(n_trials=28, step=4.0):
    on = 4.0 + step * np.arange(n_trials)
    return pd.DataFrame({"onset": on, "duration": 1.0, "trial_type": "face",
                         "stimulus_id": [f"s{i:02d}" for i in range(n_trials)]})


def _tree(root, rng, *, sidecar_tr=2.0, header_tr=2.0, unit="sec", events=None, extra=None):
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9.0"}))
    stem = func / "sub-01_task-faces_run-1"
    nib.save(_img(rng, header_tr, unit), f"{stem}_bold.nii.gz")
    meta = {"RepetitionTime": sidecar_tr, **(extra or {})}
    (func / "sub-01_task-faces_run-1_bold.json").write_text(json.dumps(meta))
    (_events() if events is None else events).to_csv(f"{stem}_events.tsv", sep="\t", index=False)
    return root


# ----------------------------------------------------------------------------- TR
def test_sidecar_tr_half_the_header_tr_is_named(tmp_path, rng):
    root = _tree(tmp_path / "ds", rng, sidecar_tr=0.5, header_tr=2.0)
    with pytest.raises(TimingError, match=r"sub-01_task-faces_run-1_bold.nii.gz: TR = 0.5 s "
                       r"\(RepetitionTime in .*_bold.json\) disagrees with the NIfTI header: "
                       r"pixdim\[4\] = 2 with xyzt time unit 'sec' = 2 s"):
        load_bids(root, subject="01", task="faces")


def test_wrong_tr_without_header_units_fails_on_the_window(rng):
    # the reported case: 28 stimuli, data at TR 2.0 s, told 0.5 s: most onsets fall after
    # the end of the (too short) run; they used to get exact-zero betas
    img = _img(rng)  # no time unit in the header: nothing to compare the TR with
    with pytest.raises(TimingError, match=r"events\[0\]: 21 of 28 event\(s\) start outside run "
                       r"runs\[0\]'s acquisition window \[0, 30\) s \(60 scans x TR 0.5 s\): "
                       r"row 7: onset 32 s \(stimulus s07\)"):
        single_trial_betas([img], [_events()], tr=0.5)
    with pytest.warns(UserWarning) as caught:
        betas, _ = single_trial_betas([img], [_events()], tr=0.5, out_of_range="drop")
    messages = [str(w.message) for w in caught]
    assert any("21 of 28" in m and "dropped" in m for m in messages)
    assert any("row 6: onset 28 s" in m and "barely sampled" in m for m in messages)
    # 7 start inside the 30 s window; the one at 28 s is also dropped (its response comes
    # after the last volume)
    assert betas.sizes["stimulus"] == 6
    assert not (betas.values == 0).all(axis=1).any()
    with pytest.raises(TimingError, match="TR = 0.5 s .*'sec' = 2 s"):
        single_trial_betas([_img(rng, 2.0)], [_events()], tr=0.5)


def test_tr_in_milliseconds(tmp_path, rng):
    root = _tree(tmp_path / "a", rng, sidecar_tr=2000, header_tr=None)
    with pytest.raises(TimingError, match=r"_bold.json: RepetitionTime = 2000 s is not a "
                       r"plausible repetition time in seconds.*use 2\b"):
        load_bids(root, subject="01", task="faces")
    with pytest.raises(TimingError, match="tr = 2000 s is not a plausible"):
        single_trial_betas([_img(rng)], [_events(10)], tr=2000)
    # a header in milliseconds that agrees with the sidecar in seconds is fine
    root = _tree(tmp_path / "b", rng, sidecar_tr=2.0, header_tr=2000.0, unit="msec")
    assert load_bids(root, subject="01", task="faces").tr == 2.0


def test_tr_with_a_unit_string(tmp_path, rng):
    root = _tree(tmp_path / "ds", rng, sidecar_tr="2.0s")
    with pytest.raises(TimingError, match=r"_bold.json: RepetitionTime must be a number of "
                       r"seconds \(e.g. 2.0\); got '2.0s'. Write it without a unit: 2.0"):
        load_bids(root, subject="01", task="faces")
    with pytest.raises(TimingError, match=r"tr must be a number of seconds.*'2.0s'"):
        single_trial_betas([_img(rng)], [_events(10)], tr="2.0s")
    assert issubclass(TimingError, ValueError)


# ----------------------------------------------------------------------------- onsets
def test_onset_past_the_end_of_the_run(tmp_path, rng):
    ev = _events(12)
    ev.loc[5, "onset"] = 130.0  # the run lasts 60 x 2 s = 120 s
    root = _tree(tmp_path / "ds", rng, events=ev)
    data = load_bids(root, subject="01", task="faces")
    with pytest.raises(TimingError, match=r"_events.tsv: 1 of 12 event\(s\) start outside run "
                       r".*_bold.nii.gz's acquisition window \[0, 120\) s .*row 5: onset 130 s "
                       r"\(stimulus s05\)"):
        single_trial_betas(data)
    with pytest.warns(UserWarning, match=r"row 5: onset 130 s .*dropped"):
        betas, _ = single_trial_betas(data, out_of_range="drop", average_repeats=False)
    assert "s05" not in betas.stimulus.values
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), AFFINE)
    kept = ev.drop(index=5)
    ref = nilearn_lss_loop(data.runs, [kept], tr=2.0, mask=mask)
    got = np.stack([betas.sel(stimulus=s).isel(repeat=0).values for s, _ in ref])
    want = np.stack([v for _, v in ref])
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5


def test_onset_in_the_last_seconds_is_not_estimable(rng):
    # inside the window, but the response comes after the last volume: its regressor is
    # 0 there and its beta used to be exactly 0 (or noise times a huge gain)
    ev = _events(12)
    ev.loc[11, "onset"] = 119.0
    with pytest.raises(TimingError, match=r"events\[0\]: 1 trial\(s\) of run runs\[0\] are "
                       r"barely sampled: .*last kept volume \(118 s\).*row 11: onset 119 s "
                       r"\(stimulus s11\), regressor peak 0.0%"):
        single_trial_betas([_img(rng)], [ev], tr=2.0)
    with pytest.warns(UserWarning, match="barely sampled"):
        betas, _ = single_trial_betas([_img(rng)], [ev], tr=2.0, out_of_range="drop")
    assert "s11" not in betas.stimulus.values and betas.sizes["stimulus"] == 11


def test_negative_onset_named(rng):
    ev = _events(10)
    ev.loc[3, "onset"] = -50.0
    with pytest.raises(TimingError, match=r"row 3: onset -50 s \(stimulus s03\).*"
                       r"Onsets count in seconds from the first volume"):
        single_trial_betas([_img(rng)], [ev], tr=2.0)
    with pytest.raises(ValueError, match="out_of_range must be one of"):
        single_trial_betas([_img(rng)], [ev], tr=2.0, out_of_range="clip")


# ----------------------------------------------------------------------------- slice timing
@pytest.fixture(scope="module")
def sim_deriv(tmp_path_factory):
    root = simulate(tmp_path_factory.mktemp("st") / "bids", make_stimuli(3), subjects=1,
                    runs=2, repeats=1, seed=2, confounds=True)
    for p in (root / "derivatives" / "fmriprep").rglob("*desc-preproc_bold.json"):
        meta = json.loads(p.read_text())
        p.write_text(json.dumps({**meta, "StartTime": 0.6}))
    return root


def test_slice_time_ref_from_start_time_as_nilearn_first_level_from_bids(sim_deriv):
    from nilearn.glm.first_level import first_level_from_bids

    deriv = sim_deriv / "derivatives" / "fmriprep"
    data = load_bids(sim_deriv, subject="01", task="faces", derivatives=deriv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, *_ = first_level_from_bids(str(sim_deriv), "faces",
                                           space_label="MNI152NLin2009cAsym",
                                           derivatives_folder="derivatives/fmriprep")
    assert data.slice_time_ref == pytest.approx(models[0].slice_time_ref, abs=1e-12)
    assert data.slice_time_ref == pytest.approx(0.3)
    m = np.zeros(data.runs[0].shape[:3], np.uint8)
    m[10:14, 5:8, 4:7] = 1
    mask = nib.Nifti1Image(m, data.runs[0].affine)
    betas, _ = single_trial_betas(data, confounds=False, mask=mask, method="lsa",
                                  average_repeats=False, signal_scaling=0)
    assert betas.attrs["slice_time_ref"] == pytest.approx(0.3)
    assert "StartTime 0.6 s" in betas.attrs["slice_time_ref_source"]
    assert betas.attrs["signal_scaling"] == "0"
    ref = nilearn_lsa(data.runs, data.events, tr=2.0, mask=mask, slice_time_ref=0.3,
                      signal_scaling=0)
    seen, got = {}, []
    for s, _ in ref:
        got.append(betas.sel(stimulus=s).isel(repeat=seen.get(s, 0)).values)
        seen[s] = seen.get(s, 0) + 1
    want = np.stack([v for _, v in ref])
    assert np.abs(np.stack(got) - want).max() / np.abs(want).max() <= 1e-5
    # a given value wins, with a warning naming the sidecars' one
    with pytest.warns(UserWarning, match="differs from the sidecars' 0.3"):
        b2, _ = single_trial_betas(data, confounds=False, mask=mask, slice_time_ref=0.0)
    assert b2.attrs["slice_time_ref"] == 0.0 and b2.attrs["slice_time_ref_source"] == "given"
    # and the attrs reach the ROI responses
    resp = roi_responses(betas, {"box": mask}, subject="01")
    assert resp.attrs["slice_time_ref"] == pytest.approx(0.3)
    assert resp.attrs["signal_scaling"] == "0"


def test_slice_timing_middle_and_bad_slice_timing(tmp_path, rng):
    root = _tree(tmp_path / "a", rng, extra={"SliceTiming": [0.0, 1.0, 0.25, 1.25, 0.5]})
    data = load_bids(root, subject="01", task="faces")
    assert data.slice_time_ref == pytest.approx((0.0 + 0.5 * 1.25) / 2.0)
    assert "SliceTiming" in data.slice_time_ref_source
    root = _tree(tmp_path / "b", rng, extra={"SliceTiming": [0, 500, 1000, 1500]})
    with pytest.raises(TimingError, match=r"SliceTiming spans \[0, 1500\] s, outside \[0, TR = 2 s\)"):
        load_bids(root, subject="01", task="faces")
    root = _tree(tmp_path / "c", rng, extra={"StartTime": 2.5})
    with pytest.raises(TimingError, match=r"StartTime = 2.5 s must lie in \[0, TR = 2 s\)"):
        load_bids(root, subject="01", task="faces")
    root = _tree(tmp_path / "d", rng)
    data = load_bids(root, subject="01", task="faces")
    assert data.slice_time_ref == 0.0 and "default" in data.slice_time_ref_source
    with pytest.raises(TimingError, match=r"slice_time_ref must be a number in \[0, 1\]"):
        single_trial_betas(data, slice_time_ref=1.5)
