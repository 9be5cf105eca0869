"""single_trial_betas against nilearn's FirstLevelModel on data facebrain did not generate."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import compute_regressor

from facebrain.brain import single_trial_betas
from facebrain.brain._regressors import event_regressors
from facebrain.errors import DataFormatError, StimulusMismatchError

from ._reference import ar_sinusoid_runs, nilearn_lsa, nilearn_lss_loop

TR = 1.7
RTOL = 1e-5


def _max_rel(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def _arrange(betas, ref):
    """Reference trials (run, onset order) -> matching betas rows by stimulus and repeat."""
    seen, got = {}, []
    for s, _ in ref:
        k = seen.get(s, 0)
        seen[s] = k + 1
        got.append(betas.sel(stimulus=s).isel(repeat=k).values)
    return np.stack(got), np.stack([v for _, v in ref])


@pytest.fixture(scope="module")
def data():
    runs, events = ar_sinusoid_runs((7, 8, 9), 90, 2, 12, tr=TR, seed=5, n_stim=10)
    m = np.zeros((7, 8, 9), np.uint8)
    m[1:6, 2:7, 2:8] = 1
    m[0, 0, 0] = 1
    mask = nib.Nifti1Image(m, runs[0].affine)
    return runs, events, mask


def test_event_regressors_equal_nilearn_compute_regressor():
    rng = np.random.default_rng(0)
    ft = np.linspace(0.5 * TR, (79 + 0.5) * TR, 80)
    on = np.r_[rng.uniform(-30, 130, 15), 0.0, ft[-1]]
    du = np.r_[rng.choice([0.0, 0.3, 1.0, 4.0], 15), 0.0, 3.0]
    for hrf in ("glover", "spm"):
        got = event_regressors(ft, on, du, hrf_model=hrf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.column_stack([compute_regressor(np.array([[o], [d], [1.0]]), hrf, ft)[0][:, 0]
                                   for o, d in zip(on, du)])
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_lss_equals_nilearn_loop_with_confounds_and_nuisance_events(data):
    runs, events, mask = data
    rng = np.random.default_rng(1)
    events = [e.copy() for e in events]
    # a non-stimulus event type (e.g. button presses) modelled as its own condition
    events[0] = pd.concat([events[0], pd.DataFrame({
        "onset": [20.0, 70.0], "duration": [0.5, 0.5], "trial_type": ["response"] * 2,
        "stimulus_id": [None, None]})], ignore_index=True)
    conf = [pd.DataFrame(rng.standard_normal((r.shape[3], 2)), columns=["tx", "ty"]) for r in runs]
    betas, mask_img = single_trial_betas(runs, events, tr=TR, mask=mask, confounds=conf,
                                         average_repeats=False)
    ref = nilearn_lss_loop(runs, events, tr=TR, mask=mask, confounds=conf)
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL
    assert betas.dims == ("stimulus", "repeat", "voxel")
    assert int(np.asarray(mask_img.dataobj).sum()) == betas.sizes["voxel"]


def test_lss_other_settings_match_nilearn(data):
    runs, events, mask = data
    betas, _ = single_trial_betas(runs[:1], events[:1], tr=TR, mask=mask, average_repeats=False,
                                  drift_model="polynomial", hrf_model="spm", drift_order=2)
    from nilearn.glm.first_level import FirstLevelModel

    # polynomial drift order 2 in the reference too
    ev = events[0].sort_values("onset").reset_index(drop=True)
    m = np.asarray(mask.dataobj) != 0
    ref = []
    for t in range(len(ev)):
        tt = np.array(["other"] * len(ev), dtype=object)
        tt[t] = "trial"
        e = pd.DataFrame({"onset": ev.onset, "duration": ev.duration, "trial_type": tt})
        glm = FirstLevelModel(t_r=TR, hrf_model="spm", drift_model="polynomial", drift_order=2,
                              signal_scaling=False, noise_model="ols", mask_img=mask)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eff = glm.fit(runs[0], e).compute_contrast("trial", output_type="effect_size")
        ref.append((ev.stimulus_id[t], np.asarray(eff.dataobj)[m]))
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL


def test_lss_derivative_hrf_uses_nilearn_designs(data):
    runs, events, mask = data
    betas, _ = single_trial_betas(runs[:1], events[:1], tr=TR, mask=mask, average_repeats=False,
                                  hrf_model="glover + derivative")
    ref = nilearn_lss_loop(runs[:1], events[:1], tr=TR, mask=mask, hrf_model="glover + derivative")
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL


def test_lsa_equals_nilearn_glm(data):
    runs, events, mask = data
    betas, _ = single_trial_betas(runs, events, tr=TR, mask=mask, method="lsa",
                                  average_repeats=False)
    ref = nilearn_lsa(runs, events, tr=TR, mask=mask)
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL


def test_modulation_and_trial_type_as_stimulus(data):
    runs, events, mask = data
    rng = np.random.default_rng(2)
    ev = [e.drop(columns="stimulus_id").assign(modulation=rng.uniform(0.5, 2.0, len(e)))
          for e in events]
    betas, _ = single_trial_betas(runs, ev, tr=TR, mask=mask, average_repeats=False)
    ref = nilearn_lss_loop(runs, [e.assign(stimulus_id=e.trial_type) for e in ev], tr=TR, mask=mask)
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL
    assert set(betas.stimulus.values) == set(pd.concat(events).stimulus_id)


def test_average_repeats_and_coords(data, tiny_stimuli):
    runs, events, mask = data
    rep, _ = single_trial_betas(runs, events, tr=TR, mask=mask, average_repeats=False)
    avg, _ = single_trial_betas(runs, events, tr=TR, mask=mask)
    np.testing.assert_allclose(avg.values, np.nanmean(rep.values, axis=1), rtol=1e-12)
    # repeats numbered in (run, onset) order
    ev0 = events[0].sort_values("onset")
    first = ev0.stimulus_id.iloc[0]
    assert rep.run.sel(stimulus=first).values[0] == 0
    assert rep.onset.sel(stimulus=first).values[0] == pytest.approx(ev0.onset.iloc[0])
    counts = pd.concat(events)["stimulus_id"].value_counts()
    assert dict(zip(avg.stimulus.values, avg.n_repeats.values)) == counts.to_dict()
    # world coordinates follow the affine (3, 3.5, 4 mm voxels with an offset)
    v = 7
    ijk = np.array([int(avg.i[v]), int(avg.j[v]), int(avg.k[v])])
    np.testing.assert_allclose([avg.x[v], avg.y[v], avg.z[v]],
                               nib.affines.apply_affine(runs[0].affine, ijk))


def test_signal_scaling_matches_nilearn(data):
    runs, events, mask = data
    from nilearn.glm.first_level import FirstLevelModel

    betas, _ = single_trial_betas(runs[:1], events[:1], tr=TR, mask=mask, signal_scaling=0,
                                  average_repeats=False, method="lsa")
    ev = events[0].sort_values("onset").reset_index(drop=True)
    names = [f"t{i:03d}" for i in range(len(ev))]
    glm = FirstLevelModel(t_r=TR, signal_scaling=0, noise_model="ols", mask_img=mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glm.fit(runs[0], pd.DataFrame({"onset": ev.onset, "duration": ev.duration,
                                       "trial_type": names}))
        m = np.asarray(mask.dataobj) != 0
        ref = [(ev.stimulus_id[i], np.asarray(glm.compute_contrast(
            n, output_type="effect_size").dataobj)[m]) for i, n in enumerate(names)]
    got, want = _arrange(betas, ref)
    assert _max_rel(got, want) < RTOL


# ----------------------------------------------------------------------------- bad input
def test_unknown_stimuli_listed(data, tiny_stimuli):
    runs, events, mask = data
    with pytest.raises(StimulusMismatchError, match=r"absent from the StimulusSet.*s0"):
        single_trial_betas(runs, events, tr=TR, mask=mask, stimuli=tiny_stimuli)


def test_stimulus_order_follows_stimulus_set(data, tiny_stimuli):
    runs, events, mask = data
    ids = list(tiny_stimuli.ids)
    mapping = {f"s{i:02d}": ids[-1 - i] for i in range(10)}
    ev = [e.assign(stimulus_id=e.stimulus_id.map(mapping)) for e in events]
    betas, _ = single_trial_betas(runs, ev, tr=TR, mask=mask, stimuli=tiny_stimuli)
    shown = set(pd.concat(ev)["stimulus_id"])
    assert list(betas.stimulus.values) == [s for s in ids if s in shown]


def test_runs_on_different_grids(data):
    runs, events, _mask = data
    other = nib.Nifti1Image(np.asarray(runs[1].dataobj)[:-1], runs[1].affine)
    with pytest.raises(DataFormatError, match=r"runs\[1\].*different grid"):
        single_trial_betas([runs[0], other], events, tr=TR)
    moved = nib.Nifti1Image(np.asarray(runs[1].dataobj), runs[1].affine + np.eye(4) * 0.5)
    with pytest.raises(DataFormatError, match=r"runs\[1\].*affine"):
        single_trial_betas([runs[0], moved], events, tr=TR)


def test_missing_tr(data):
    runs, events, mask = data
    with pytest.raises(ValueError, match="tr is missing"):
        single_trial_betas(runs, events, mask=mask)


def test_nan_and_constant_voxels_dropped_with_count(data):
    runs, events, mask = data
    arrs = [np.asarray(r.dataobj).copy() for r in runs]
    arrs[0][2, 3, 4, 5] = np.nan  # NaN in one run
    arrs[1][3, 3, 3, :] = 7.0  # constant in one run
    bad = [nib.Nifti1Image(a, runs[0].affine) for a in arrs]
    with pytest.warns(UserWarning, match=r"dropped 2 of \d+ mask voxels"):
        betas, mimg = single_trial_betas(bad, events, tr=TR, mask=mask)
    assert betas.attrs["n_dropped_voxels"] == 2
    assert np.isfinite(betas.values).all()
    assert np.asarray(mimg.dataobj)[2, 3, 4] == 0


def test_all_zero_mask(data):
    runs, events, _mask = data
    zero = nib.Nifti1Image(np.zeros((7, 8, 9), np.uint8), runs[0].affine)
    with pytest.raises(DataFormatError, match="mask is all zeros"):
        single_trial_betas(runs, events, tr=TR, mask=zero)


def test_other_bad_arguments(data):
    runs, events, _mask = data
    with pytest.raises(ValueError, match="noise_model='ar1'"):
        single_trial_betas(runs, events, tr=TR, noise_model="ar1")
    with pytest.raises(ValueError, match="method must be one of"):
        single_trial_betas(runs, events, tr=TR, method="lsx")
    with pytest.raises(ValueError, match="one per run"):
        single_trial_betas(runs, events[:1], tr=TR)
    with pytest.raises(DataFormatError, match=r"events\[0\].*lack column"):
        single_trial_betas(runs, [e.drop(columns="duration") for e in events], tr=TR)
    conf = [pd.DataFrame({"a": np.r_[np.nan, np.ones(r.shape[3] - 1)]}) for r in runs]
    with pytest.raises(DataFormatError, match=r"confounds\[0\] has NaN in column\(s\) \['a'\]"):
        single_trial_betas(runs, events, tr=TR, confounds=conf)
