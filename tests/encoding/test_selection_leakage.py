"""evaluate(): per-ROI best layer with a paired bootstrap; grouped inner CV for every splitter;
kfold warning; extraction-time PCA refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold, ShuffleSplit

from facebrain._selection import select_candidates
from facebrain.encoding import _evaluate, evaluate
from facebrain.encoding._select import bootstrap_weights, roi_r2_bootstrap
from facebrain.errors import LeakageError, StimulusMismatchError

from .test_evaluate import make

ALPHAS = np.logspace(-2, 5, 8)


def test_bootstrap_r2_equals_sklearn_weighted_r2(rng):
    Y = rng.normal(size=(15, 4))
    P = Y + 0.7 * rng.normal(size=Y.shape)
    groups = np.repeat([f"p{i}" for i in range(5)], 3)
    W = bootstrap_weights(20, 3, groups)
    assert (W.sum(1) == 15).all() and all(len(set(w.reshape(5, 3)[i])) == 1
                                          for w in W for i in range(5))  # whole identities
    got = roi_r2_bootstrap(Y, P, W, [np.array([0, 2]), np.array([1, 3])])
    for b in range(20):
        for j, vox in enumerate(([0, 2], [1, 3])):
            ref = np.mean([r2_score(Y[:, v], P[:, v], sample_weight=W[b]) for v in vox])
            assert got[b, j] == pytest.approx(ref, abs=1e-12)


def test_planted_layer_is_selected_per_roi_with_paired_bootstrap(rng):
    acts, brain = make(rng, n_id=10)
    acts = acts.assign(noise=(("stimulus", "n_unit"), rng.normal(size=(40, 6))))
    res = evaluate(acts, brain, n_folds=5, inner_cv=3, alphas=ALPHAS, n_bootstrap=200, seed=2)
    assert res["best_layer"].sel(region="FFA").item() == "A"
    assert res["best_layer"].sel(region="OFA").item() == "B"
    for roi in ("FFA", "OFA"):
        r = res.sel(region=roi)
        assert float(r["diff_ci_low"]) > 0 and float(r["p_diff_fwe"]) < 0.05
    assert float(res["p_value_fwe"].sel(layer="noise", region="FFA")) > 0.05
    assert res.attrs["bootstrap_unit"] == "identity"
    # r2_roi is the mean held-out r2 of the ROI's voxels
    ffa = (res["roi"] == "FFA").values
    assert float(res["r2_roi"].sel(layer="A", region="FFA")) == pytest.approx(
        float(res["r2"].sel(layer="A").values[ffa].mean()))
    # a second "network" evaluated with the same seed pairs up; another seed does not
    other = evaluate(acts[["noise"]], brain, n_folds=5, inner_cv=3, alphas=ALPHAS,
                     n_bootstrap=200, seed=2)
    pooled = select_candidates({"net": res, "other": other}, "r2_roi", "bootstrap_r2",
                               roi_dim="region", what="encoding")
    assert pooled["best_candidate"].sel(roi="FFA").item() == "net:A"
    other3 = evaluate(acts[["noise"]], brain, n_folds=5, inner_cv=3, alphas=ALPHAS,
                      n_bootstrap=200, seed=3)
    with pytest.raises(StimulusMismatchError):
        select_candidates({"net": res, "other": other3}, "r2_roi", "bootstrap_r2",
                          roi_dim="region")


@pytest.mark.parametrize("cv", ["leave-identity-out", "kfold", KFold(4, shuffle=True,
                                                                      random_state=0),
                                GroupKFold(4), ShuffleSplit(3, test_size=0.25, random_state=1)])
def test_no_inner_fold_mixes_an_identity_whatever_the_outer_splitter(rng, cv, monkeypatch):
    acts, brain = make(rng)
    seen = []
    real = _evaluate.inner_folds

    def spy(inner_cv, X, Y, groups):
        folds = real(inner_cv, X, Y, groups)
        seen.append((groups, folds))
        return folds

    monkeypatch.setattr(_evaluate, "inner_folds", spy)
    with pytest.warns() if cv == "kfold" else _no_warning():
        evaluate(acts, brain, cv=cv, n_folds=4, inner_cv=3, alphas=ALPHAS)
    assert seen and all(g is not None for g, _ in seen)
    for g, folds in seen:
        assert len(folds) == 3
        for tr, te in folds:
            assert not set(g[tr]) & set(g[te])


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.filterwarnings("error", message=".*identities are mixed.*")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_explicit_groups_and_a_mixing_inner_splitter_is_refused(rng):
    acts, brain = make(rng)
    acts = acts.drop_vars("identity")
    people = np.repeat([f"q{i}" for i in range(8)], 4)
    with pytest.raises(LeakageError, match="inner fold 0"):
        evaluate(acts, brain, n_folds=4, inner_cv=KFold(5, shuffle=True, random_state=0),
                 alphas=ALPHAS, groups=people)
    with pytest.warns(UserWarning, match="identities are mixed across folds"):
        evaluate(acts, brain, cv="kfold", n_folds=4, inner_cv=3, alphas=ALPHAS, groups=people)
    with pytest.raises(ValueError, match=r"groups has shape \(3,\)"):
        evaluate(acts, brain, alphas=ALPHAS, groups=["a", "b", "c"])


def test_extraction_pca_cannot_reach_a_cross_validated_encoding(rng):
    acts, brain = make(rng)
    acts["A"].attrs["reduce"] = "pca:6"
    with pytest.raises(LeakageError, match="encoding.evaluate: layer 'A'.*pca:6"):
        evaluate(acts, brain, n_folds=4, inner_cv=3, alphas=ALPHAS, layers=["A"])
    # fitted on a named subset: the stimuli inside it are refused, the others accepted
    inside = np.isin(acts["identity"].values, ["p0", "p1"])
    acts = acts.assign_coords(pca_fit=("stimulus", inside))
    acts.attrs["pca_fit_on"] = "query: identity in ['p0', 'p1']"
    with pytest.raises(LeakageError, match="8 of the 32 analysed stimuli"):
        evaluate(acts, brain, n_folds=4, inner_cv=3, alphas=ALPHAS, layers=["A"])
    out = acts.sel(stimulus=~acts["pca_fit"])
    res = evaluate(out, brain, n_folds=3, inner_cv=2, alphas=ALPHAS, layers=["A"],
                   align="intersection")
    assert res.attrs["n_stimuli"] == 24
    # an unreduced layer of the same Activations is never refused
    evaluate(acts, brain, n_folds=4, inner_cv=3, alphas=ALPHAS, layers=["B"])


def test_xarray_roundtrip_keeps_the_selection(rng, tmp_path):
    acts, brain = make(rng)
    res = evaluate(acts, brain, n_folds=4, inner_cv=3, alphas=ALPHAS, n_bootstrap=20)
    res.to_netcdf(tmp_path / "e.nc", engine="h5netcdf")
    back = xr.load_dataset(tmp_path / "e.nc", engine="h5netcdf")
    assert list(back["best_layer"].values) == list(res["best_layer"].values)


def test_variance_partition_refuses_extraction_pca_and_warns_on_kfold(rng):
    from facebrain.encoding import variance_partition

    acts, brain = make(rng)
    acts["A"].attrs["reduce"] = "pca:6"
    with pytest.raises(LeakageError, match="encoding.variance_partition"):
        variance_partition({"a": (acts, "A"), "b": (acts, "B")}, brain, n_folds=4, inner_cv=3,
                           alphas=ALPHAS)
    with pytest.warns(UserWarning, match="identities are mixed"):
        variance_partition({"b": (acts, "B"), "c": acts["B"].values ** 2}, brain, cv="kfold",
                           n_folds=3, inner_cv=2, alphas=ALPHAS)
