"""fMRIPrep confounds: nilearn's load_confounds selection, and betas equal to nilearn's
FirstLevelModel fitted with the same confounds and sample masks (<= 1e-5 relative)."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces.fmriprep import load_confounds

from facebrain.brain import (
    fmriprep_confounds,
    load_bids,
    load_ground_truth,
    simulate,
    single_trial_betas,
)
from facebrain.errors import DataFormatError

from ._reference import nilearn_lsa, nilearn_lss_loop
from .conftest import make_stimuli

RTOL = 1e-5
SPECS = [
    {"strategy": ["motion"], "motion": "basic"},
    {"strategy": ["motion", "wm_csf", "high_pass"], "motion": "full", "wm_csf": "derivatives"},
    {"strategy": ["global_signal", "motion"], "global_signal": "power2", "motion": "power2"},
    {"strategy": ["high_pass", "compcor"], "compcor": "anat_combined", "n_compcor": 3},
    {"strategy": ["high_pass", "compcor"], "compcor": "temporal_anat_combined"},
    {"strategy": ["motion", "scrub"], "motion": "derivatives", "scrub": 3, "fd_threshold": 0.4},
    {"strategy": ["motion", "wm_csf"], "demean": False},
]


def _max_rel(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    """Simulated data with motion/physiology in the voxels and fMRIPrep-style derivatives."""
    root = simulate(tmp_path_factory.mktemp("prep") / "bids", make_stimuli(4), subjects=1,
                    runs=2, repeats=2, seed=3, confounds=True, motion_scale=3.0, non_steady=2,
                    snr=1.0)
    deriv = root / "derivatives" / "fmriprep"
    data = load_bids(root, subject="01", task="faces", derivatives=deriv)
    gt = load_ground_truth(root)["subjects"]["01"]["rois"]
    m = np.zeros(data.runs[0].shape[:3], np.uint8)
    for name in ("rFFA", "rOFA"):
        m[tuple(np.asarray(gt[name]["voxels_ijk"]).T)] = 1
    return root, data, nib.Nifti1Image(m, data.runs[0].affine), gt


@pytest.mark.parametrize("spec", SPECS)
def test_selection_equals_nilearn_load_confounds_on_fmriprep_files(prep, spec):
    _root, data, _mask, _gt = prep
    kw = {k: v for k, v in spec.items() if k != "strategy"}
    for bold, tsv in zip(data.paths["bold"], data.paths["confounds"]):
        want, want_mask = load_confounds(bold, strategy=spec["strategy"], **kw)
        for src in (tsv, pd.read_csv(tsv, sep="\t", na_values=["n/a"])):
            meta = None if isinstance(src, str) else tsv.replace(".tsv", ".json")
            got, got_mask = fmriprep_confounds(src, spec, metadata=meta)
            # same columns, rows and values; a value may differ in its last bit (1e-16) where
            # the table came through another CSV parser (pandas 2.2 vs nilearn's own read)
            pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=False,
                                          rtol=1e-13, atol=0)
            if want_mask is None:
                assert got_mask is None
            else:
                np.testing.assert_array_equal(got_mask, want_mask)


def test_nan_first_row_of_derivatives_filled_from_second(prep):
    _root, data, _mask, _gt = prep
    raw = pd.read_csv(data.paths["confounds"][0], sep="\t", na_values=["n/a"])
    assert np.isnan(raw["trans_x_derivative1"][0]) and np.isnan(raw["csf_derivative1"][0])
    got, keep = fmriprep_confounds(data.paths["confounds"][0],
                                   {"strategy": ["motion", "wm_csf"], "motion": "derivatives",
                                    "wm_csf": "derivatives", "demean": False})
    assert got["trans_x_derivative1"][0] == raw["trans_x_derivative1"][1]
    assert got["csf_derivative1"][0] == raw["csf_derivative1"][1]
    np.testing.assert_array_equal(got["rot_y"], raw["rot_y"])
    assert keep is not None and list(keep[:2]) == [2, 3]  # 2 non-steady-state volumes left out


@pytest.mark.parametrize("method", ["lss", "lsa"])
@pytest.mark.parametrize("spec", [SPECS[1], {"strategy": ["motion", "wm_csf", "scrub"],
                                             "motion": "derivatives"}])
def test_betas_with_confounds_equal_nilearn_first_level_model(prep, method, spec):
    _root, data, mask, _gt = prep
    kw = {k: v for k, v in spec.items() if k != "strategy"}
    conf, masks = load_confounds(data.paths["bold"], strategy=spec["strategy"], **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # scrubbing can remove the volumes after a late trial: its regressor is then 0 on
        # the kept volumes (nilearn returns a beta of exactly 0); drop such trials
        betas, _ = single_trial_betas(data, confounds=spec, mask=mask, method=method,
                                      average_repeats=False, signal_scaling=0,
                                      slice_time_ref=0.5, out_of_range="drop")
    dropped = [str(w.message) for w in caught if "barely sampled" in str(w.message)]
    kept = []
    for r, ev in enumerate(data.events):
        on = set(betas.onset.values[betas.run.values == r].ravel())
        kept.append(ev[ev.onset.isin(on)])
    assert sum(len(e) for e in kept) + sum(m.count("row ") for m in dropped) == \
        sum(len(e) for e in data.events)
    ref_fn = nilearn_lss_loop if method == "lss" else nilearn_lsa
    ref = ref_fn(data.runs, kept, tr=data.tr, mask=mask, confounds=conf,
                 sample_masks=masks, signal_scaling=0, slice_time_ref=0.5)
    seen, got = {}, []
    for s, _ in ref:
        k = seen.get(s, 0)
        seen[s] = k + 1
        got.append(betas.sel(stimulus=s).isel(repeat=k).values)
    got, want = np.stack(got), np.stack([v for _, v in ref])
    err = _max_rel(got, want)
    print(f"{method} {spec['strategy']}: max relative difference to nilearn {err:.2e}")
    assert err <= RTOL
    assert betas.attrs["n_scans_used"] == [len(m) for m in masks]
    assert betas.attrs["n_confounds"] == [c.shape[1] for c in conf]
    assert '"strategy": ["motion", "wm_csf"' in betas.attrs["confounds"]


def test_regressing_planted_motion_recovers_the_truth(prep):
    """The simulator adds motion and physiology to the voxels: without their regressors
    the betas are far worse correlated with the planted responses."""
    _root, data, mask, gt = prep

    def score(betas):
        out = []
        for name in ("rFFA", "rOFA"):
            truth = gt[name]["truth"]
            pos = {tuple(v): i for i, v in enumerate(zip(betas.i.values, betas.j.values,
                                                         betas.k.values))}
            cols = [pos[(int(a), int(b), int(c))] for a, b, c in
                    zip(truth.i.values, truth.j.values, truth.k.values)]
            got = betas.sel(stimulus=list(truth.stimulus.values)).values[:, cols]
            out.append(np.corrcoef(got.ravel(), truth.values.ravel())[0, 1])
        return float(np.mean(out))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        none, _ = single_trial_betas(data, confounds=False, mask=mask)
        basic, _ = single_trial_betas(data, confounds={"strategy": ["motion", "wm_csf"],
                                                       "motion": "basic"}, mask=mask)
    print(f"planted truth r: with motion+wm_csf {score(basic):.3f}, without {score(none):.3f}")
    assert score(basic) > score(none) + 0.15, (score(basic), score(none))
    assert none.attrs["confounds"] == "none"


def test_default_strategy_for_bids_runs_with_confounds(prep):
    _root, data, mask, _gt = prep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        betas, _ = single_trial_betas(data, mask=mask, drift_model=None)
    assert '"strategy": ["motion", "high_pass", "wm_csf"]' in betas.attrs["confounds"]
    assert '"motion": "full"' in betas.attrs["confounds"]
    # 24 motion + 2 wm/csf + the cosine columns fMRIPrep wrote
    n_cos = sum(c.startswith("cosine") for c in data.confounds[0].columns)
    assert betas.attrs["n_confounds"][0] == 26 + n_cos


def test_bad_strategies_named(prep, tmp_path):
    _root, data, mask, _gt = prep
    with pytest.raises(DataFormatError, match=r"confounds.strategy: unknown .*\['motoin'\]"):
        single_trial_betas(data, confounds={"strategy": ["motoin"]}, mask=mask)
    with pytest.raises(DataFormatError, match=r"confounds.motion: expected one of"):
        single_trial_betas(data, confounds={"strategy": ["motion"], "motion": "fulll"}, mask=mask)
    with pytest.raises(DataFormatError, match="'compcor' needs 'high_pass'"):
        fmriprep_confounds(data.paths["confounds"][0], {"strategy": ["compcor"]})
    table = pd.read_csv(data.paths["confounds"][0], sep="\t").drop(columns=["rot_z"])
    with pytest.raises(DataFormatError, match=r"confounds table: nilearn's load_confounds .*rot_z"):
        fmriprep_confounds(table, {"strategy": ["motion"], "motion": "basic"})
    plain = [nib.Nifti1Image(np.asarray(r.dataobj), r.affine) for r in data.runs]
    with pytest.raises(DataFormatError, match="these runs have none"):
        single_trial_betas(plain, data.events, tr=data.tr, confounds={"strategy": ["motion"]},
                           mask=mask)
