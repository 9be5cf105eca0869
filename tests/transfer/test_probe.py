"""probe(): sklearn reference, chance, permutations, confusion, fc head, dask."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synth import make_acts

from facebrain.transfer import TorchLinearClassifier, make_folds, probe


@pytest.fixture(scope="module")
def acts():
    # l0: identity only (no expression signal); l1: expression signal
    return make_acts(n_id=10, n_expr=4, views=("S", "HL"), expr_signal=(0.0, 1.2), seed=3)


def test_logistic_equals_sklearn_cross_val_score(acts):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    res = probe(acts, "expression", cv="leave-identity-out", n_folds=5, seed=7)
    folds = make_folds(acts, "leave-identity-out", n_folds=5, seed=7)
    y = acts["expression"].values
    for layer in ("l0", "l1"):
        X = acts[layer].values.astype(np.float64)
        ref = cross_val_score(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=7)),
            X, y, cv=PredefinedSplit(folds.assignment))
        np.testing.assert_array_equal(res.accuracy.sel(layer=layer).values, ref)
    # the expression layer decodes, the identity-only layer is at chance level
    assert float(res.accuracy_mean.sel(layer="l1")) > 0.8
    assert abs(float(res.accuracy_mean.sel(layer="l0")) - 0.25) < 0.15
    # folds, chance, confusion, bookkeeping
    np.testing.assert_array_equal(res.test_fold.values, folds.assignment)
    ids = acts["identity"].values
    for k in range(5):
        test = res.test_fold.values == k
        assert not set(ids[test]) & set(ids[~test])
    assert float(res.chance) == pytest.approx(0.25)  # balanced: majority rate = 1/4
    conf = res.confusion.sel(layer="l1").values
    assert conf.sum() == len(y)
    pooled = np.mean(res.prediction.sel(layer="l1").values == y)
    assert np.trace(conf) / conf.sum() == pytest.approx(pooled)
    sem = res.accuracy.sel(layer="l1").std(ddof=1) / np.sqrt(5)
    assert float(res.accuracy_sem.sel(layer="l1")) == pytest.approx(float(sem))
    assert res.attrs["target"] == "expression" and res.attrs["model"] == "synthetic"
    assert np.isnan(res.p_value.values).all() and res.sizes["permutation"] == 0


def test_chance_from_test_fold_distribution():
    acts = make_acts(n_id=6, n_expr=3, seed=1)
    # unbalanced: drop most 'sad' stimuli from two identities
    keep = ~((acts["expression"].values == "sad") & np.isin(acts["identity"].values,
                                                            ["p00", "p01"]))
    sub = acts.isel(stimulus=np.flatnonzero(keep))
    res = probe(sub, "expression", cv="leave-identity-out", n_folds=3, seed=0)
    folds = make_folds(sub, "leave-identity-out", n_folds=3, seed=0)
    y = sub["expression"].values
    by_hand = [max(np.unique(y[t], return_counts=True)[1]) / len(t) for _, t in folds.splits()]
    np.testing.assert_allclose(res.chance_fold.values, by_hand)
    assert float(res.chance) == pytest.approx(np.mean(by_hand))


def test_pca_inside_folds_equals_sklearn(acts):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    res = probe(acts, "expression", layers="l1", n_folds=4, reduce="pca:5", seed=0)
    folds = make_folds(acts, "leave-identity-out", n_folds=4, seed=0)
    pipe = make_pipeline(StandardScaler(), PCA(5, random_state=0),
                         LogisticRegression(max_iter=1000, random_state=0))
    ref = cross_val_score(pipe, acts["l1"].values.astype(np.float64), acts["expression"].values,
                          cv=PredefinedSplit(folds.assignment))
    np.testing.assert_allclose(res.accuracy.sel(layer="l1").values, ref)


def test_permutation_test(acts):
    n = 19
    res = probe(acts, "expression", n_folds=5, n_permutations=n, seed=2)
    null = res.null_accuracy.values
    obs = res.accuracy_mean.values
    p_hand = (1 + (null >= obs[:, None]).sum(1)) / (1 + n)
    np.testing.assert_allclose(res.p_value.values, p_hand)
    assert float(res.p_value.sel(layer="l1")) == pytest.approx(1 / 20)  # strong signal
    assert float(res.p_value.sel(layer="l0")) > 0.05  # no expression signal
    # null accuracies sit around chance
    assert abs(np.mean(null) - 0.25) < 0.1
    again = probe(acts, "expression", n_folds=5, n_permutations=n, seed=2)
    np.testing.assert_array_equal(again.null_accuracy.values, null)


def test_fc_head_matches_logistic_objective(acts):
    from sklearn.linear_model import LogisticRegression

    X = acts["l1"].values.astype(np.float64)
    y = acts["expression"].values
    C = 0.5
    ref = LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(X, y)
    # sklearn minimises C * sum CE + |W|^2 / 2  ==  mean CE + |W|^2 / (2 C n)
    fc = TorchLinearClassifier(alpha=1 / (C * len(y)), max_iter=500).fit(X, y)
    np.testing.assert_allclose(fc.predict_proba(X), ref.predict_proba(X), atol=2e-3)
    assert list(fc.classes_) == list(ref.classes_)
    a1 = TorchLinearClassifier(optimizer="adam", epochs=20, seed=1).fit(X, y)
    a2 = TorchLinearClassifier(optimizer="adam", epochs=20, seed=1).fit(X, y)
    np.testing.assert_array_equal(a1.coef_, a2.coef_)
    res = probe(acts, "expression", head="fc", n_folds=5)
    assert float(res.accuracy_mean.sel(layer="l1")) > 0.8
    assert res.attrs["head"] == "fc"


def test_torch_head_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(TorchLinearClassifier(max_iter=50))


@pytest.mark.distributed
def test_permutations_on_dask_equal_local(acts):
    from dask.distributed import Client, LocalCluster

    local = probe(acts, "expression", n_folds=4, n_permutations=6, seed=5)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dist = probe(acts, "expression", n_folds=4, n_permutations=6, seed=5, client=client)
    np.testing.assert_array_equal(dist.null_accuracy.values, local.null_accuracy.values)
    np.testing.assert_array_equal(dist.p_value.values, local.p_value.values)
