"""Best layer per ROI with paired bootstrap statistics, on planted drivers; NaN refusal."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from facebrain._selection import network_contrasts, select_candidates
from facebrain.errors import BootstrapError, StimulusMismatchError
from facebrain.rsa import compare

from .fakes import stimulus_ids

N = 40


def _planted(rng, n=N):
    """FFA is driven by latent A, OFA by latent B; layers see A or B with known noise."""
    a, b = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    ids = stimulus_ids(n)

    def layer(lat, units, noise):
        return lat @ rng.normal(size=(4, units)) + noise * rng.normal(size=(n, units))

    base = layer(a, 11, 0.0)
    acts = xr.Dataset(
        {"a_clean": (("stimulus", "u1"), base + 0.2 * rng.normal(size=base.shape)),
         "a_twin": (("stimulus", "u2"), base + 0.2 * rng.normal(size=base.shape)),
         "a_noisy": (("stimulus", "u3"), layer(a, 11, 4.0)),
         "b_layer": (("stimulus", "u4"), layer(b, 7, 0.3)),
         "random": (("stimulus", "u5"), rng.normal(size=(n, 9)))},
        coords={"stimulus": ids, "identity": ("stimulus", [f"p{i % 8}" for i in range(n)])})
    vox, roi, sub, cols = [], [], [], []
    for r, lat in (("FFA", a), ("OFA", b)):
        for s in ("01", "02"):
            sig = lat @ rng.normal(size=(4, 6))
            cols.append(sig + 0.5 * rng.normal(size=sig.shape))
            vox += [f"{s}|{r}|{i}" for i in range(6)]
            roi += [r] * 6
            sub += [s] * 6
    brain = xr.DataArray(np.concatenate(cols, axis=1), dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "voxel": vox, "roi": ("voxel", roi),
                                 "subject": ("voxel", sub)})
    return acts, brain


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(11)
    acts, brain = _planted(rng)
    res = compare(acts, brain, method="corr", n_bootstrap=300, ceiling=False, seed=3)
    return acts, brain, res


def test_best_layer_is_the_planted_driver_and_beats_the_runner_up(planted):
    _, _, res = planted
    # FFA: the two clean copies of A tie; OFA: only b_layer sees B
    assert res["best_layer"].sel(roi="FFA").item() in ("a_clean", "a_twin")
    assert {res["best_layer"].sel(roi="FFA").item(),
            res["runnerup_layer"].sel(roi="FFA").item()} == {"a_clean", "a_twin"}
    assert res["best_layer"].sel(roi="OFA").item() == "b_layer"
    ofa = res.sel(roi="OFA")
    assert float(ofa["diff_ci_low"]) > 0 and float(ofa["p_diff_fwe"]) < 0.01
    # the tie is not declared a winner: its CI covers 0, its corrected p is large
    ffa = res.sel(roi="FFA")
    assert float(ffa["diff_ci_low"]) <= 0 <= float(ffa["diff_ci_high"]) + 1e-12
    assert float(ffa["p_diff_fwe"]) > 0.05
    assert int(ffa["n_valid_diff"]) == 300
    assert (res["n_valid_bootstrap"] == 300).all()
    # the random layer is not above zero once corrected for picking among 5 layers
    assert float(res["p_value_fwe"].sel(layer="random", roi="OFA")) > 0.05
    assert float(res["p_value_fwe"].sel(layer="b_layer", roi="OFA")) < 0.01


def test_bootstrap_is_paired_so_a_near_copy_has_a_narrow_difference_interval(planted):
    acts, brain, _ = planted
    x = acts["a_clean"].values
    near = acts.assign(copy=(("stimulus", "u6"), x + 1e-3 * np.random.default_rng(0).normal(
        size=x.shape)))[["a_clean", "copy"]]
    res = compare(near, brain, method="corr", n_bootstrap=200, ceiling=False, seed=1)
    width = float(res["diff_ci_high"].sel(roi="FFA") - res["diff_ci_low"].sel(roi="FFA"))
    single = float((res["ci_high"] - res["ci_low"]).sel(layer="a_clean", roi="FFA"))
    assert single > 0.05 and width < 0.01 * single


def test_p_value_fwe_is_the_max_statistic_p_recomputed_from_the_stored_bootstrap(planted):
    _, _, res = planted
    boot = res["bootstrap_score"].transpose("bootstrap", "layer", "roi").values
    point = res["score_mean"].values
    for j in range(point.shape[1]):
        sd = boot[:, :, j].std(axis=0, ddof=1)
        null_max = [max((boot[b, k, j] - point[k, j]) / sd[k] for k in range(point.shape[0]))
                    for b in range(boot.shape[0])]
        for k in range(point.shape[0]):
            t = point[k, j] / sd[k]
            expect = (1 + sum(m >= t - 1e-12 for m in null_max)) / (1 + boot.shape[0])
            assert res["p_value_fwe"].values[k, j] == pytest.approx(expect, abs=1e-12)
    assert (res["p_value_fwe"] >= res["p_value"] - 1e-12).all()


def test_networks_pooled_and_contrasted_at_a_layer(planted):
    acts, brain, _ = planted
    net1 = acts[["a_clean", "b_layer"]]
    net2 = acts[["a_noisy", "random"]].rename({"a_noisy": "a_clean", "random": "b_layer"})
    kw = {"method": "corr", "n_bootstrap": 150, "ceiling": False, "seed": 5}
    results = {"net1": compare(net1, brain, **kw), "net2": compare(net2, brain, **kw)}
    pooled = select_candidates(results, "score_mean", "bootstrap_score")
    assert pooled["best_candidate"].sel(roi="FFA").item() == "net1:a_clean"
    assert pooled["best_candidate"].sel(roi="OFA").item() == "net1:b_layer"
    con = network_contrasts(pooled, [("net1", "net2")])
    assert list(con["contrast"].values) == ["net1-net2@a_clean", "net1-net2@b_layer"]
    ffa = con.sel(contrast="net1-net2@a_clean", roi="FFA")
    assert float(ffa["diff_ci_low"]) > 0 and float(ffa["p_value_fwe"]) < 0.05
    # not paired (different seed) -> refused
    results["net2"] = compare(net2, brain, **{**kw, "seed": 6})
    with pytest.raises(StimulusMismatchError, match="bootstrap_pairing"):
        select_candidates(results, "score_mean", "bootstrap_score")


def test_too_many_nan_bootstrap_samples_are_refused(rng):
    n = 30
    ids = stimulus_ids(n)
    odd = np.zeros((n, 3))
    odd[0] = 1.0  # one stimulus differs: samples that miss it give a constant RDM
    acts = xr.Dataset({"odd": (("stimulus", "u"), odd + 0.0)}, coords={"stimulus": ids})
    brain = xr.DataArray(rng.normal(size=(n, 4)), dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "roi": ("voxel", ["FFA"] * 4),
                                 "subject": ("voxel", ["01"] * 4)})
    with pytest.raises(BootstrapError, match=r"layer 'odd' x ROI 'FFA' are NaN"):
        compare(acts, brain, method="spearman", rdm_method="euclidean", n_bootstrap=60,
                ceiling=False)
    res = compare(acts, brain, method="spearman", rdm_method="euclidean", n_bootstrap=60,
                  ceiling=False, max_nan=0.9)
    n_valid = int(res["n_valid_bootstrap"].item())
    assert 0 < n_valid < 60 and int(np.isfinite(res["bootstrap_score"]).sum()) == n_valid
