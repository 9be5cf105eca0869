"""rdm() / label_rdm() / compare(): against rsatoolbox on the same data; layout; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rsatoolbox.data import Dataset as RsaDataset
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling
from rsatoolbox.rdm import RDMs, calc_rdm
from rsatoolbox.rdm import compare as rsa_compare

from facebrain.errors import StimulusMismatchError
from facebrain.rsa import compare, label_rdm, rdm
from facebrain.rsa._bootstrap import bootstrap_chunk, draw_sample

from .fakes import fake_activations, fake_brain

TOL = 1e-10
METHODS = ["cosine", "spearman", "corr", "kendall", "tau-a", "rho-a", "corr_cov", "cosine_cov"]


@pytest.fixture
def data(rng):
    latent = rng.normal(size=(14, 4))
    return (fake_activations(rng, latent=latent), fake_brain(rng, latent=latent, noise=2.0))


# ----------------------------------------------------------------------------- rdm
@pytest.mark.parametrize("method", ["correlation", "euclidean", "mahalanobis", "poisson"])
def test_rdm_equals_rsatoolbox_calc_rdm(data, method):
    acts, _ = data
    if method == "poisson":
        acts = acts.map(np.abs)
    r = rdm(acts, method=method)
    assert list(r.rdm_descriptors["layer"]) == ["conv", "fc"]
    assert list(r.pattern_descriptors["stimulus"]) == list(acts["stimulus"].values)
    assert list(r.pattern_descriptors["identity"]) == list(acts["identity"].values)
    for i, layer in enumerate(["conv", "fc"]):
        ref = calc_rdm(RsaDataset(acts[layer].values), method=method).get_vectors()[0]
        np.testing.assert_allclose(r.get_vectors()[i], ref, rtol=1e-12, atol=1e-12)


def test_brain_rdm_per_roi_and_subject(data):
    _, brain = data
    r = rdm(brain)
    assert r.n_rdm == 6
    assert list(r.rdm_descriptors["roi"]) == ["FFA"] * 3 + ["OFA"] * 3
    assert list(r.rdm_descriptors["subject"]) == ["01", "02", "03"] * 2
    vox = (brain["roi"] == "OFA") & (brain["subject"] == "02")
    ref = calc_rdm(RsaDataset(brain.values[:, vox.values]), method="correlation")
    np.testing.assert_allclose(r.get_vectors()[4], ref.get_vectors()[0], atol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # inside rsatoolbox
def test_crossnobis_uses_repeats_like_rsatoolbox(rng):
    brain = fake_brain(rng, n=8, repeats=3, n_vox=5)
    r = rdm(brain, method="crossnobis")
    vox = ((brain["roi"] == "FFA") & (brain["subject"] == "03")).values
    x = brain.values[:, :, vox]  # (stimulus, repeat, voxel)
    ds = RsaDataset(x.reshape(-1, x.shape[2]), obs_descriptors={
        "stim": np.repeat(np.arange(8), 3), "rep": np.tile(np.arange(3), 8)})
    ref = calc_rdm(ds, method="crossnobis", descriptor="stim", cv_descriptor="rep")
    np.testing.assert_allclose(r.get_vectors()[2], ref.get_vectors()[0], atol=1e-12)
    with pytest.raises(ValueError, match="repeat"):
        rdm(brain.mean("repeat"), method="crossnobis")
    # other measures average the repeats first
    np.testing.assert_allclose(rdm(brain).get_vectors(), rdm(brain.mean("repeat")).get_vectors(),
                               atol=1e-12)


def test_label_rdm():
    table = pd.DataFrame({"identity": ["a", "a", "b", "c"], "expression": ["x", "y", "x", "y"]},
                         index=["s1", "s2", "s3", "s4"])
    r = label_rdm(table, ["identity", "expression"])
    assert list(r.rdm_descriptors["layer"]) == ["label:identity", "label:expression"]
    m = r.get_matrices()
    assert m[0][0, 1] == 0 and m[0][0, 2] == 1 and m[0][2, 3] == 1
    assert m[1][0, 2] == 0 and m[1][0, 1] == 1
    with pytest.raises(KeyError, match="gender"):
        label_rdm(table, "gender")


# ----------------------------------------------------------------------------- compare
@pytest.mark.parametrize("method", METHODS)
def test_compare_scores_equal_rsatoolbox(data, method):
    acts, brain = data
    res = compare(acts, brain, method=method, ceiling=False)
    ref = rsa_compare(rdm(acts), rdm(brain), method=method)  # (layer, roi*subject)
    np.testing.assert_allclose(res["score"].values.reshape(2, 6), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(res["score_mean"].values, ref.reshape(2, 2, 3).mean(-1),
                               atol=TOL)


def test_result_layout_and_noise_ceiling(data, tmp_path):
    acts, brain = data
    res = compare([acts, label_rdm(acts, "identity")], brain, method="spearman")
    assert res["score"].dims == ("layer", "roi", "subject")
    assert list(res["layer"].values) == ["conv", "fc", "label:identity"]
    assert list(res["roi"].values) == ["FFA", "OFA"]
    assert res.attrs["method"] == "spearman" and res.attrs["rdm_method"] == "correlation"
    br = rdm(brain)
    for i, roi in enumerate(["FFA", "OFA"]):
        sub = RDMs(br.get_vectors()[3 * i:3 * i + 3])
        lo, hi = boot_noise_ceiling(sub, method="spearman")
        assert res["ceiling_lower"].values[i] == pytest.approx(lo, abs=TOL)
        assert res["ceiling_upper"].values[i] == pytest.approx(hi, abs=TOL)
    # t interval over subjects without a bootstrap
    s = res["score"].values[0, 0]
    half = res["ci_high"].values[0, 0] - s.mean()
    from scipy import stats
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * s.std(ddof=1) / np.sqrt(3), rel=1e-12)
    res.to_netcdf(tmp_path / "results.nc")  # attrs and coords are netCDF-friendly


@pytest.mark.parametrize("method", METHODS)
def test_stimulus_bootstrap_equals_rsatoolbox_subsample(data, method):
    """Same samples through rsatoolbox: RDMs.subsample_pattern (self-pairs dropped) + compare."""
    acts, brain = data
    # layers (no ties) and a label RDM (two values: massive ties)
    mr = RDMs(np.vstack([rdm(acts).get_vectors(), label_rdm(acts, "identity").get_vectors()]))
    br = rdm(brain)
    n = 14
    valid = np.ones(n * (n - 1) // 2, bool)
    ours, _ = bootstrap_chunk(mr.get_vectors(), br.get_vectors(), n, valid, method, 7,
                              range(4), "stimuli", 3)
    n_dup = 0
    for b in range(4):
        idx, _ = draw_sample(7, b, n, 3, "stimuli")
        n_dup += n - np.unique(idx).size
        ref = rsa_compare(mr.subsample_pattern("index", idx), br.subsample_pattern("index", idx),
                          method=method)
        np.testing.assert_allclose(ours[b], ref, rtol=0, atol=TOL)
    assert n_dup > 0  # the samples do contain repeated stimuli


def test_bootstrap_distribution_and_percentile_ci(data):
    acts, brain = data
    res = compare(acts, brain, n_bootstrap=40, over="both", seed=3, ceiling=False,
                  chunk_size=7)
    assert res["bootstrap_score"].dims == ("bootstrap", "layer", "roi")
    mr, br = rdm(acts), rdm(brain)
    b = 13
    idx, subj = draw_sample(3, b, 14, 3, "both")
    s = rsa_compare(mr.subsample_pattern("index", idx), br.subsample_pattern("index", idx),
                    method="spearman").reshape(2, 2, 3)
    np.testing.assert_allclose(res["bootstrap_score"].values[b], s[:, :, subj].mean(-1), atol=TOL)
    lo, hi = np.percentile(res["bootstrap_score"].values, [2.5, 97.5], axis=0)
    np.testing.assert_allclose(res["ci_low"].values, lo)
    np.testing.assert_allclose(res["ci_high"].values, hi)
    # chunking does not change anything; subjects-only resamples the point scores
    again = compare(acts, brain, n_bootstrap=40, over="both", seed=3, ceiling=False,
                    chunk_size=40)
    np.testing.assert_array_equal(again["bootstrap_score"].values, res["bootstrap_score"].values)
    subj_only = compare(acts, brain, n_bootstrap=5, over="subjects", seed=3, ceiling=False)
    _, sj = draw_sample(3, 2, 14, 3, "subjects")
    np.testing.assert_allclose(subj_only["bootstrap_score"].values[2],
                               subj_only["score"].values[:, :, sj].mean(-1), atol=TOL)


# ----------------------------------------------------------------------------- bad input
def test_different_stimuli_error_lists_ids_or_intersection(data):
    acts, brain = data
    a = acts.isel(stimulus=slice(0, 12))
    b = brain.isel(stimulus=slice(2, 14))
    with pytest.raises(StimulusMismatchError, match=r"s000.*s001.*s012.*s013"):
        compare(a, b)
    res = compare(a, b, align="intersection", ceiling=False)
    shared = [f"s{i:03d}" for i in range(2, 12)]
    ref = compare(acts.sel(stimulus=shared), brain.sel(stimulus=shared), ceiling=False)
    np.testing.assert_allclose(res["score"].values, ref["score"].values, atol=TOL)
    assert res.attrs["n_stimuli"] == 10


def test_order_of_stimuli_does_not_matter(data):
    acts, brain = data
    shuffled = acts.isel(stimulus=np.random.default_rng(1).permutation(14))
    np.testing.assert_allclose(compare(shuffled, brain, ceiling=False)["score"].values,
                               compare(acts, brain, ceiling=False)["score"].values,
                               atol=TOL)


def test_too_few_stimuli(data):
    acts, brain = data
    with pytest.raises(ValueError, match="at least 3"):
        compare(acts.isel(stimulus=[0, 1]), brain.isel(stimulus=[0, 1]))


def test_constant_rdm_is_nan_with_warning(data):
    acts, brain = data
    const = acts.assign(flat=(("stimulus", "flat_unit"), np.tile([1.0, 2.0, 3.0], (14, 1))))
    with pytest.warns(RuntimeWarning, match="constant"):
        res = compare(const, brain, method="spearman", rdm_method="correlation",
                      ceiling=False)
    assert np.isnan(res["score"].sel(layer="flat")).all()
    assert np.isfinite(res["score"].sel(layer="conv")).all()


def test_mismatched_subjects_across_rois(data):
    acts, brain = data
    drop = ~((brain["roi"] == "OFA") & (brain["subject"] == "02")).values
    with pytest.raises(ValueError, match=r"ROI 'OFA' has subjects \['01', '03'\]"):
        compare(acts, brain.isel(voxel=drop))


def test_unknown_names(data):
    acts, brain = data
    with pytest.raises(ValueError, match="tau-a"):
        compare(acts, brain, method="pearson")
    with pytest.raises(ValueError, match="over="):
        compare(acts, brain, over="voxels")
    with pytest.raises(ValueError, match="crossnobis"):
        rdm(acts, method="mahalanobiss")
    with pytest.raises(KeyError, match="fc"):
        rdm(acts, layer="fc7")
