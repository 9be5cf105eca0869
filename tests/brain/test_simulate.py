"""simulate(): BIDS layout, round trip through load_bids/LSS, recovery of the planted truth."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from facebrain.brain import (
    load_bids,
    load_ground_truth,
    load_roi_masks,
    roi_responses,
    rsa_noise_ceiling,
    simulate,
    single_trial_betas,
    split_half_reliability,
    voxel_noise_ceiling,
)
from facebrain.errors import DataFormatError

from .bids_check import check_bids
from .conftest import make_stimuli


@pytest.fixture(scope="module")
def estimated(sim_root, sim_stimuli):
    """LSS betas (with repeats) and ROI responses of every simulated subject."""
    out = {}
    for sub in ("01", "02", "03"):
        data = load_bids(sim_root, subject=sub, task="faces")
        betas, _mask = single_trial_betas(data, stimuli=sim_stimuli, average_repeats=False)
        rois = load_roi_masks(sim_root / "derivatives" / "facebrain-rois", sub)
        out[sub] = (betas, roi_responses(betas, rois, subject=sub, average_repeats=False))
    return out


def test_layout_is_valid_bids(sim_root):
    assert check_bids(sim_root) == []
    assert (sim_root / "sub-02" / "func" / "sub-02_task-faces_run-4_bold.nii.gz").is_file()
    assert json.loads((sim_root / "sub-01" / "func" / "sub-01_task-faces_run-1_bold.json")
                      .read_text())["RepetitionTime"] == 2.0


def test_layout_checker_catches_problems(tmp_path):
    (tmp_path / "sub-01" / "func").mkdir(parents=True)
    (tmp_path / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    pd.DataFrame({"participant_id": ["sub-01"]}).to_csv(tmp_path / "participants.tsv", sep="\t",
                                                        index=False)
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)),
             tmp_path / "sub-01" / "func" / "sub-01_task-x_bold.nii.gz")
    (tmp_path / "sub-01" / "func" / "bad_name.tsv").write_text("a\n")
    problems = "\n".join(check_bids(tmp_path))
    assert "lacks BIDSVersion" in problems and "RepetitionTime" in problems
    assert "misnamed file" in problems and "no events.tsv" in problems


def test_events_and_repeats(sim_root, sim_stimuli):
    data = load_bids(sim_root, subject="01", task="faces")
    ev = pd.concat(data.events)
    counts = ev["stimulus_id"].value_counts()
    assert set(counts.index) == set(sim_stimuli.ids) and (counts == 2).all()
    gaps = np.diff(data.events[0]["onset"])
    assert gaps.min() >= 3.0 - 1e-3 and gaps.max() <= 5.0 + 1e-3  # duration 1 + isi in [2, 4]
    assert data.events[0]["stimulus_id"].tolist() != data.events[1]["stimulus_id"].tolist()


def test_planted_voxels_recovered_above_noise(sim_root, estimated):
    gt = load_ground_truth(sim_root)
    betas, resp = estimated["01"]
    avg = resp.mean("repeat")
    planted, noise = [], []
    all_roi = set()
    for name, roi in gt["subjects"]["01"]["rois"].items():
        truth = roi["truth"]
        est = avg.sel(voxel=(avg.roi == name).values)
        # same voxels, same order (both C-order over the grid)
        np.testing.assert_array_equal(est.i.values, truth.i.values)
        est = est.sel(stimulus=truth.stimulus.values)
        planted += [np.corrcoef(est.values[:, v], truth.values[:, v])[0, 1]
                    for v in range(truth.sizes["voxel"])]
        all_roi |= set(map(tuple, np.c_[truth.i, truth.j, truth.k]))
        # noise voxels against this ROI's truth
        bavg = betas.mean("repeat").sel(stimulus=truth.stimulus.values)
        out = [v for v in range(0, betas.sizes["voxel"], 97)
               if (int(betas.i[v]), int(betas.j[v]), int(betas.k[v])) not in all_roi]
        noise += [np.corrcoef(bavg.values[:, v], truth.values[:, n % truth.sizes["voxel"]])[0, 1]
                  for n, v in enumerate(out)]
    assert np.mean(planted) > 0.4
    assert abs(np.mean(noise)) < 0.1
    assert np.mean(planted) > np.mean(noise) + 0.3


def test_reliability_and_ceilings(sim_root, estimated):
    betas, resp = estimated["01"]
    rel = split_half_reliability(betas).values
    flat = np.ravel_multi_index((betas.i.values, betas.j.values, betas.k.values),
                                tuple(betas.attrs["grid_shape"]))
    inside = np.zeros(betas.sizes["voxel"], bool)
    for m in load_roi_masks(sim_root / "derivatives" / "facebrain-rois", "01").values():
        inside |= np.asarray(m.dataobj).ravel()[flat] > 0
    assert np.nanmean(rel[inside]) > np.nanmean(rel[~inside]) + 0.2
    nc = voxel_noise_ceiling(betas).values
    assert np.all((nc >= 0) & (nc <= 1))
    assert np.nanmean(nc[inside]) > np.nanmean(nc[~inside]) + 0.1
    assert np.isfinite(resp.reliability).all() and np.isfinite(resp.noise_ceiling).all()
    # RSA ceiling per ROI across the three subjects
    import rsatoolbox

    for roi in ("rFFA", "rpSTS", "EVC"):
        rdms = []
        for sub, (_, r) in estimated.items():
            x = r.mean("repeat").sel(voxel=(r.roi == roi).values)
            ds = rsatoolbox.data.Dataset(x.values, descriptors={"subject": sub})
            rdms.append(rsatoolbox.rdm.calc_rdm(ds, method="correlation"))
        lo, hi = rsa_noise_ceiling(rdms, method="spearman")
        assert np.isfinite([lo, hi]).all() and lo <= hi and hi > 0.2


def test_ground_truth_records_drivers_and_snr(sim_root, sim_stimuli):
    gt = load_ground_truth(sim_root)
    assert gt["snr"] == 0.5 and gt["stimulus_ids"] == list(sim_stimuli.ids)
    sub = gt["subjects"]["01"]
    assert sub["noise_sigma"] == pytest.approx(sub["signal_sd"] / 0.5)
    rois = sub["rois"]
    assert rois["rpSTS"]["driver"] == {"kind": "labels", "identity": 0.0}
    assert rois["EVC"]["driver"]["kind"] == "pixels"
    # expression-driven pSTS: same expression -> same response (up to the JSON rounding)
    t = rois["rpSTS"]["truth"].to_pandas()
    by_expr = t.groupby(sim_stimuli.table.loc[t.index, "expression"].values).std().to_numpy()
    assert by_expr.max() < 1e-5
    # per-subject jitter recorded and centres differ between subjects
    c1, c2 = np.array(rois["rFFA"]["center_mm"]), np.array(gt["subjects"]["02"]["rois"]["rFFA"]["center_mm"])
    np.testing.assert_allclose(c1 - np.array(rois["rFFA"]["jitter_mm"]), [42, -50, -20])
    assert not np.allclose(c1, c2)
    # noise voxels: for AR(1) noise var(y_t - y_{t-1}) = 2 sigma^2 (1 - a); baseline cancels
    # and the slow drift (periods >= 128 s) adds < 1 % to the differences
    img = nib.load(sim_root / "sub-01" / "func" / "sub-01_task-faces_run-1_bold.nii.gz")
    y = np.asarray(img.dataobj, dtype=float)[0:6, 0:6, 12:15].reshape(-1, img.shape[3]).T
    d = np.diff(y, axis=0)
    sigma_hat = np.sqrt(d.var(axis=0, ddof=1).mean() / (2 * (1 - gt["ar_coef"])))
    assert sigma_hat == pytest.approx(sub["noise_sigma"], rel=0.1)


def test_feature_driver_map_reproducible_from_recorded_seed(tmp_path):
    stim = make_stimuli(n_id=3)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((len(stim), 7))
    da = xr.DataArray(feats[::-1], dims=("stimulus", "unit"),
                      coords={"stimulus": list(stim.ids)[::-1]})  # aligned by id, not order
    root = simulate(tmp_path / "f", stim, subjects=1, runs=2, repeats=1, rois=["rFFA"],
                    drivers={"rFFA": da}, seed=4)
    roi = load_ground_truth(root)["subjects"]["01"]["rois"]["rFFA"]
    assert roi["driver"] == {"kind": "features", "label": "features", "n_features": 7}
    n_vox = roi["truth"].sizes["voxel"]
    xz = (feats - feats.mean(0)) / feats.std(0)
    w = np.random.default_rng(roi["seed"]).standard_normal((7, n_vox)) / np.sqrt(7)
    z = xz @ w
    z = (z - z.mean(0)) / z.std(0)
    np.testing.assert_allclose(roi["truth"].values, 1.0 + z, atol=1e-5)
    again = simulate(tmp_path / "g", stim, subjects=1, runs=2, repeats=1, rois=["rFFA"],
                     drivers={"rFFA": da}, seed=4)
    a = nib.load(root / "sub-01" / "func" / "sub-01_task-faces_run-2_bold.nii.gz").get_fdata()
    b = nib.load(again / "sub-01" / "func" / "sub-01_task-faces_run-2_bold.nii.gz").get_fdata()
    np.testing.assert_array_equal(a, b)


def test_bad_inputs(tmp_path):
    stim = make_stimuli(n_id=2)
    with pytest.raises(KeyError, match="unknown ROI name.*FFAX"):
        simulate(tmp_path / "a", stim, rois=["FFAX"])
    with pytest.raises(KeyError, match="drivers given for unknown ROI"):
        simulate(tmp_path / "a", stim, rois=["rFFA"], drivers={"lFFA": "identity"})
    with pytest.raises(DataFormatError, match="one row per stimulus"):
        simulate(tmp_path / "a", stim, rois=["rFFA"], drivers={"rFFA": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="unknown name 'faces'"):
        simulate(tmp_path / "a", stim, rois=["rFFA"], drivers={"rFFA": "faces"})
    with pytest.raises(DataFormatError, match="no free voxel on the simulated grid"):
        simulate(tmp_path / "a", stim, rois={"far": (0.0, 60.0, 0.0)})
    assert not (tmp_path / "a").exists()  # nothing half-written
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        simulate(tmp_path / "b", stim)


def test_fmriprep_style_derivatives_with_planted_nuisance(tmp_path):
    root = simulate(tmp_path / "bids", make_stimuli(3), subjects=1, runs=1, repeats=1, seed=4,
                    confounds=True, non_steady=3)
    assert check_bids(root) == []
    func = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    pre = func / "sub-01_task-faces_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    raw = root / "sub-01" / "func" / "sub-01_task-faces_run-1_bold.nii.gz"
    assert pre.read_bytes() == raw.read_bytes()
    table = pd.read_csv(func / "sub-01_task-faces_run-1_desc-confounds_timeseries.tsv", sep="\t",
                        na_values=["n/a"])
    assert len(table) == nib.load(raw).shape[3]
    for col in ("trans_x_derivative1", "csf_derivative1_power2", "framewise_displacement",
                "std_dvars"):
        assert np.isnan(table[col][0]) and table[col][1:].notna().all()
    assert [c for c in table if c.startswith("non_steady")] == [
        "non_steady_state_outlier00", "non_steady_state_outlier01", "non_steady_state_outlier02"]
    meta = json.loads((func / "sub-01_task-faces_run-1_desc-confounds_timeseries.json").read_text())
    assert meta["a_comp_cor_00"]["Mask"] == "combined"
    gt = load_ground_truth(root)
    assert gt["confounds"] is True and gt["non_steady"] == 3
    # the motion enters the data: each voxel's series is explained by the 6 parameters
    # far better in the simulated run than in a shuffled control
    y = np.asarray(nib.load(raw).dataobj, dtype=float).reshape(-1, len(table)).T[3:]
    m = table[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy()[3:]
    m = np.column_stack([m - m.mean(0), np.ones(len(m))])
    yc = y - y.mean(0)

    def r2(design):
        fit = design @ np.linalg.lstsq(design, yc, rcond=None)[0]
        return 1 - ((yc - fit) ** 2).sum(0) / (yc ** 2).sum(0)

    shuffled = m[np.random.default_rng(0).permutation(len(m))]
    assert np.median(r2(m)) > np.median(r2(shuffled)) + 0.1
