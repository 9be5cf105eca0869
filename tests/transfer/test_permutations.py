"""Permutation null and layer-selection correction of probe(), against independent references.

References: scikit-learn's RidgeClassifier / LogisticRegression refitted once per
permutation (cross_val_score with the permuted labels), and the max-statistic
p-value recomputed by a plain loop from the stored null.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from _synth import make_acts

from facebrain.transfer import make_folds, probe


@pytest.fixture(scope="module")
def acts():
    return make_acts(n_id=10, n_expr=4, views=("S", "HL"), n_units=(12, 30),
                     expr_signal=(0.0, 0.6), seed=3)


def _sk_pipeline(head, reduce=None, seed=0):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler()]
    if reduce is not None:
        from sklearn.random_projection import SparseRandomProjection

        steps.append(SparseRandomProjection(int(reduce.split(":")[1]), random_state=seed))
    return make_pipeline(*steps, head)


def _refit_null(X, y, folds, head, n_perm, seed, reduce=None):
    """Per-permutation refits with sklearn: the slow reference the fast path must equal."""
    from sklearn.base import clone

    out = []
    for p in range(n_perm):
        rng = np.random.default_rng([seed, 1 + p])
        accs = []
        for train, test in folds.splits():
            yp = rng.permutation(y[train])
            pipe = clone(_sk_pipeline(head, reduce, seed)).fit(X[train], yp)
            accs.append(np.mean(pipe.predict(X[test]) == y[test]))
        out.append(np.mean(accs))
    return np.array(out)


@pytest.mark.parametrize("n_units", [(12, 30), (150, 400)])  # primal (n > d) and kernel (n < d)
def test_ridge_head_equals_sklearn(n_units):
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import PredefinedSplit, cross_val_score

    a = make_acts(n_id=10, n_expr=4, views=("S", "HL"), n_units=n_units,
                  expr_signal=(0.0, 0.6), seed=4)
    n_perm, seed, alpha = 7, 5, 3.0
    res = probe(a, "expression", head="ridge", head_kw={"alpha": alpha}, n_folds=5,
                seed=seed, n_permutations=n_perm)
    folds = make_folds(a, "leave-identity-out", n_folds=5, seed=seed)
    y_str = a["expression"].values
    y = np.unique(y_str, return_inverse=True)[1]
    for layer in ("l0", "l1"):
        X = a[layer].values.astype(np.float64)
        ref = cross_val_score(_sk_pipeline(RidgeClassifier(alpha=alpha)), X, y_str,
                              cv=PredefinedSplit(folds.assignment))
        np.testing.assert_array_equal(res.accuracy.sel(layer=layer).values, ref)
        null = _refit_null(X, y, folds, RidgeClassifier(alpha=alpha), n_perm, seed)
        np.testing.assert_array_equal(res.null_accuracy.sel(layer=layer).values, null)


def test_ridge_head_with_in_fold_projection(acts):
    from sklearn.linear_model import RidgeClassifier

    res = probe(acts, "expression", head="ridge", reduce="srp:9", n_folds=5, seed=2,
                n_permutations=4)
    folds = make_folds(acts, "leave-identity-out", n_folds=5, seed=2)
    y = np.unique(acts["expression"].values, return_inverse=True)[1]
    X = acts["l1"].values.astype(np.float64)
    null = _refit_null(X, y, folds, RidgeClassifier(), 4, 2, reduce="srp:9")
    np.testing.assert_array_equal(res.null_accuracy.sel(layer="l1").values, null)


def test_logistic_null_equals_refits(acts):
    from sklearn.linear_model import LogisticRegression

    res = probe(acts, "expression", n_folds=4, seed=1, n_permutations=3)
    folds = make_folds(acts, "leave-identity-out", n_folds=4, seed=1)
    y = np.unique(acts["expression"].values, return_inverse=True)[1]
    X = acts["l1"].values.astype(np.float64)
    null = _refit_null(X, y, folds, LogisticRegression(max_iter=1000, random_state=1), 3, 1)
    np.testing.assert_array_equal(res.null_accuracy.sel(layer="l1").values, null)


def _fwe_by_loop(observed, null):
    n_layers, n_perm = null.shape
    out = []
    for i in range(n_layers):
        hits = 0
        for p in range(n_perm):
            if max(null[j, p] for j in range(n_layers)) >= observed[i]:
                hits += 1
        out.append((1 + hits) / (1 + n_perm))
    return np.array(out)


def _planted(n_layers=5, signal_layer=2, seed=2):
    """Layers of pure noise except ``signal_layer``, which carries the expression."""
    base = make_acts(n_id=10, n_expr=4, views=("S", "HL"), n_units=(6, 6), seed=seed)
    rng = np.random.default_rng(seed)
    codes = np.unique(base["expression"].values, return_inverse=True)[1]
    pattern = rng.normal(size=(4, 20))
    data = {}
    for k in range(n_layers):
        X = rng.normal(size=(base.sizes["stimulus"], 20))
        if k == signal_layer:
            X = X + 1.5 * pattern[codes]
        data[f"L{k}"] = (("stimulus", f"L{k}_unit"), X)
    return xr.Dataset(data, coords=base.coords, attrs={"model": "planted"})


@pytest.mark.parametrize("head", ["ridge", "logistic"])
def test_fwe_planted_single_layer(head):
    n_perm = 39
    a = _planted()
    res = probe(a, "expression", head=head, n_folds=5, seed=3, n_permutations=n_perm)
    obs = res.accuracy_mean.values
    null = res.null_accuracy.transpose("layer", "permutation").values
    np.testing.assert_allclose(res.p_value_fwe.values, _fwe_by_loop(obs, null))
    assert (res.p_value_fwe.values >= res.p_value.values).all()
    assert res.attrs["best_layer"] == "L2"
    assert float(res.p_value_fwe.sel(layer="L2")) == pytest.approx(1 / (1 + n_perm))
    others = res.p_value_fwe.drop_sel(layer="L2").values
    assert (others > 0.05).all()
    assert "max" in res.attrs["p_value_fwe_method"]


def test_fwe_corrects_noise_layers():
    """Eight noise layers: the best one's corrected p is larger than its uncorrected p."""
    a = _planted(n_layers=8, signal_layer=-1, seed=1)
    res = probe(a, "expression", head="ridge", n_folds=5, seed=0, n_permutations=99)
    best = res.attrs["best_layer"]
    assert float(res.p_value_fwe.sel(layer=best)) > float(res.p_value.sel(layer=best))
    assert float(res.p_value_fwe.sel(layer=best)) > 0.05
    obs = res.accuracy_mean.values
    null = res.null_accuracy.transpose("layer", "permutation").values
    np.testing.assert_allclose(res.p_value_fwe.values, _fwe_by_loop(obs, null))


def test_ridge_head_bad_alpha(acts):
    with pytest.raises(ValueError, match="alpha"):
        probe(acts, "expression", head="ridge", head_kw={"alpha": 0}, n_folds=4)
    with pytest.raises(ValueError, match="only head_kw"):
        probe(acts, "expression", head="ridge", head_kw={"C": 1}, n_folds=4)


def test_ridge_head_constant_and_offset_units():
    """Constant units (scale 1 in StandardScaler) and large offsets take the Gram path exactly."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import PredefinedSplit, cross_val_score

    a = make_acts(n_id=10, n_expr=4, views=("S", "HL"), n_units=(12, 30),
                  expr_signal=(0.3, 0.6), seed=6)
    X = a["l1"].values.astype(np.float64)
    X[:, 0] = 3.0
    X[:, 1] += 1e4
    X[:, 2] = np.where(a["identity"].values == "p03", 5.0, 0.0)  # constant in most training folds
    a["l1"] = (("stimulus", "l1_unit"), X)
    res = probe(a, "expression", head="ridge", n_folds=5, seed=1, n_permutations=5)
    folds = make_folds(a, "leave-identity-out", n_folds=5, seed=1)
    y_str = a["expression"].values
    y = np.unique(y_str, return_inverse=True)[1]
    ref = cross_val_score(_sk_pipeline(RidgeClassifier()), X, y_str,
                          cv=PredefinedSplit(folds.assignment))
    np.testing.assert_array_equal(res.accuracy.sel(layer="l1").values, ref)
    null = _refit_null(X, y, folds, RidgeClassifier(), 5, 1)
    np.testing.assert_array_equal(res.null_accuracy.sel(layer="l1").values, null)
