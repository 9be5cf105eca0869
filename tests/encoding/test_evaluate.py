"""evaluate / fit / variance_partition: held-out identities, sklearn references, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

from facebrain.encoding import evaluate, fit, variance_partition
from facebrain.encoding._partition import partition_r2
from facebrain.errors import StimulusMismatchError

ALPHAS = np.logspace(-2, 5, 8)


def make(rng, n_id=8, n_expr=4, n_vox=10, noise=0.5):
    """Two feature spaces A (drives FFA) and B (drives OFA); 12 stimuli-per-identity design."""
    n = n_id * n_expr
    ids = [f"p{i}_e{e}" for i in range(n_id) for e in range(n_expr)]
    ident = [f"p{i}" for i in range(n_id) for _ in range(n_expr)]
    A = rng.normal(size=(n, 6))
    B = rng.normal(size=(n, 5))
    acts = xr.Dataset(
        {"A": (("stimulus", "A_unit"), A), "B": (("stimulus", "B_unit"), B)},
        coords={"stimulus": ids, "identity": ("stimulus", ident)},
    )
    Y = np.concatenate([A @ rng.normal(size=(6, n_vox)), B @ rng.normal(size=(5, n_vox))], 1)
    Y = Y + noise * rng.normal(size=Y.shape)
    vox = [f"01|FFA|{i}" for i in range(n_vox)] + [f"01|OFA|{i}" for i in range(n_vox)]
    brain = xr.DataArray(
        Y, dims=("stimulus", "voxel"), name="responses",
        coords={"stimulus": ids, "voxel": vox,
                "roi": ("voxel", ["FFA"] * n_vox + ["OFA"] * n_vox),
                "subject": ("voxel", ["01"] * 2 * n_vox),
                "x": ("voxel", rng.normal(size=2 * n_vox)),
                "noise_ceiling": ("voxel", np.full(2 * n_vox, 0.8))},
    )
    return acts, brain


def test_evaluate_holds_out_identities_and_equals_sklearn(rng, tmp_path):
    acts, brain = make(rng)
    res = evaluate(acts, brain, n_folds=4, alphas=ALPHAS, inner_cv=3)
    res.to_netcdf(tmp_path / "results.nc")  # EncodingResult goes into results.nc
    assert res["r2"].dims == ("layer", "voxel")
    assert list(res["roi"].values) == list(brain["roi"].values)  # voxel coords copied
    np.testing.assert_array_equal(res["x"].values, brain["x"].values)
    # reference: sklearn Ridge at the fold's chosen alpha, identities held out
    groups = acts["identity"].values
    X, Y = acts["A"].values, brain.values
    pred = np.empty_like(Y)
    for k, (tr, te) in enumerate(GroupKFold(4).split(X, groups=groups)):
        assert not set(groups[tr]) & set(groups[te])  # whole identities held out
        for v in range(Y.shape[1]):
            a = res["fold_alpha"].sel(layer="A").values[k, v]
            pred[te, v] = Ridge(alpha=a).fit(X[tr], Y[tr, v]).predict(X[te])
    r2 = 1 - ((Y - pred) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(res["r2"].sel(layer="A").values, r2, atol=1e-6)
    r = [np.corrcoef(pred[:, v], Y[:, v])[0, 1] for v in range(Y.shape[1])]
    np.testing.assert_allclose(res["r"].sel(layer="A").values, r, atol=1e-6)
    np.testing.assert_allclose(res["r2_normalised"].values, res["r2"].values / 0.8)
    # the driving space wins in each ROI
    by_roi = res["r2"].groupby("roi").mean()
    assert by_roi.sel(roi="FFA").idxmax("layer").item() == "A"
    assert by_roi.sel(roi="OFA").idxmax("layer").item() == "B"
    assert set(np.unique(res["best_alpha"].values)) <= set(ALPHAS)


def test_fit_predicts_brain_shaped_responses_for_new_stimuli(rng):
    acts, brain = make(rng)
    train = acts.isel(stimulus=slice(0, 24))
    enc = fit(train, brain.isel(stimulus=slice(0, 24)), layer="A", alphas=ALPHAS, cv=3)
    new = acts.isel(stimulus=slice(24, 32))
    pred = enc.predict(new)
    assert pred.dims == ("stimulus", "voxel") and pred.name == "responses"
    assert list(pred["stimulus"].values) == list(new["stimulus"].values)
    assert list(pred["roi"].values) == list(brain["roi"].values)
    X, Y = train["A"].values, brain.values[:24]
    for v in (0, 13):
        ref = Ridge(alpha=enc.encoder.best_alphas_[v]).fit(X, Y[:, v]).predict(new["A"].values)
        np.testing.assert_allclose(pred.values[:, v], ref, atol=1e-6)
    with pytest.raises(ValueError, match="units"):
        enc.predict(acts.rename({"A": "B_", "B": "A", "B_unit": "A_unit", "A_unit": "B_unit"}))


def test_constant_voxel_is_nan_with_warning(rng):
    acts, brain = make(rng)
    brain = brain.copy()
    brain[:, 3] = 2.0
    with pytest.warns(RuntimeWarning, match="constant"):
        res = evaluate(acts, brain, layers="A", n_folds=4, alphas=ALPHAS, inner_cv=3)
    assert np.isnan(res["r2"].values[0, 3]) and np.isnan(res["r"].values[0, 3])
    assert np.isfinite(np.delete(res["r2"].values[0], 3)).all()


def test_bad_input(rng):
    acts, brain = make(rng)
    with pytest.raises(StimulusMismatchError, match="p0_e0"):
        evaluate(acts.isel(stimulus=slice(1, None)), brain)
    res = evaluate(acts.isel(stimulus=slice(4, None)), brain, align="intersection",
                   n_folds=3, alphas=ALPHAS, inner_cv=2, layers=["A"])
    assert res.attrs["n_stimuli"] == 28
    with pytest.raises(ValueError, match="alphas must be positive"):
        evaluate(acts, brain, alphas=[0.0, 1.0])
    with pytest.raises(ValueError, match="identity"):
        evaluate(acts.drop_vars("identity"), brain.drop_vars("identity", errors="ignore"))
    with pytest.raises(KeyError, match="available layers"):
        evaluate(acts, brain, layers=["C"])
    with pytest.raises(ValueError, match="at least 3"):
        evaluate(acts.isel(stimulus=[0, 1]), brain.isel(stimulus=[0, 1]))


def test_partition_arithmetic_three_sets():
    r2 = {frozenset("a"): 0.3, frozenset("b"): 0.2, frozenset("c"): 0.1,
          frozenset("ab"): 0.4, frozenset("ac"): 0.35, frozenset("bc"): 0.25,
          frozenset("abc"): 0.45}
    p = partition_r2(r2)
    assert p["unique:a"] == pytest.approx(0.45 - 0.25)
    assert p["shared:a&b&c"] == pytest.approx(0.3 + 0.2 + 0.1 - 0.4 - 0.35 - 0.25 + 0.45)
    # the seven Venn cells add up to the full union, and each single set's R2
    assert sum(p.values()) == pytest.approx(0.45)
    assert (p["unique:a"] + p["shared:a&b"] + p["shared:a&c"] + p["shared:a&b&c"]
            == pytest.approx(0.3))


def test_variance_partition_finds_unique_space(rng):
    acts, brain = make(rng, n_id=10, noise=0.3)
    pix = rng.normal(size=(40, 7))  # irrelevant third space
    res = variance_partition({"A": (acts, "A"), "B": (acts, "B"), "pix": pix}, brain,
                             n_folds=5, alphas=ALPHAS, inner_cv=3)
    assert res["partition"].dims == ("part", "voxel")
    assert len(res["union"]) == 7
    ffa = res["partition"].where(res["roi"] == "FFA", drop=True).mean("voxel")
    assert ffa.sel(part="unique:A") > 0.5
    assert abs(ffa.sel(part="unique:B")) < 0.05 and abs(ffa.sel(part="unique:pix")) < 0.05
    total = res["partition"].sum("part")
    np.testing.assert_allclose(total.values, res["r2_union"].sel(union="A+B+pix").values)
    with pytest.raises(ValueError, match="2 or 3"):
        variance_partition({"A": (acts, "A")}, brain)


def test_evaluate_warns_once_about_grid_edges_over_all_layers():
    """Pure-noise voxels pick the largest alpha: one warning naming both layers, not one per fit."""
    import warnings as _w

    import xarray as xr

    from facebrain.encoding import evaluate
    from facebrain.errors import AlphaGridWarning

    rng = np.random.default_rng(5)
    n = 40
    ids = [f"s{i:02d}" for i in range(n)]
    acts = xr.Dataset({k: (("stimulus", f"{k}_unit"), rng.standard_normal((n, 6)))
                       for k in ("a", "b")},
                      coords={"stimulus": ids, "identity": ("stimulus",
                                                            [f"p{i % 8}" for i in range(n)])})
    brain = xr.DataArray(rng.standard_normal((n, 7)), dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "voxel": [f"01|r|{i}" for i in range(7)],
                                 "roi": ("voxel", ["r"] * 7), "subject": ("voxel", ["01"] * 7)})
    with _w.catch_warnings(record=True) as rec:
        _w.simplefilter("always")
        evaluate(acts, brain, n_folds=4, inner_cv=3, alphas=[1e-2, 1.0, 1e2])
    edge = [w for w in rec if issubclass(w.category, AlphaGridWarning)]
    assert len(edge) == 1
    assert "a (" in str(edge[0].message) and "b (" in str(edge[0].message)
