"""fit_head, cross_decode, factor_variance, subspace_angles against hand-written references."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synth import make_acts

from facebrain.transfer import (
    cross_decode,
    factor_variance,
    fit_head,
    subspace_angles,
)


def test_fit_head_adds_a_layer():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    acts = make_acts(n_id=6, n_expr=3, expr_signal=(0.0, 1.5), seed=2)
    head = fit_head(acts, "expression", layer="l1")
    assert head.name == "expression_head@l1"
    other = make_acts(n_id=3, n_expr=3, expr_signal=(0.0, 1.5), seed=2).isel(stimulus=slice(0, 5))
    out = head.transform(other)
    var = out["expression_head@l1"]
    assert var.dims == ("stimulus", "expression_head@l1_unit")
    assert list(var["expression_head@l1_unit"].values) == ["neutral", "happy", "sad"]
    np.testing.assert_allclose(var.values.sum(axis=1), 1, atol=1e-5)
    assert "expression_head@l1" in out.fb.layers and "l1" in out.fb.layers
    y = acts.fb.labels("expression")[0]
    ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    ref.fit(acts["l1"].values.astype(float), y)
    np.testing.assert_allclose(var.values, ref.predict_proba(other["l1"].values.astype(float)),
                               atol=1e-6)
    dec = fit_head(acts, "expression", layer="l1", output="decision", head="fc").apply(other)
    assert dec["expression_head@l1"].shape == (5, 3)
    wrong = make_acts(n_id=3, n_expr=3, n_units=(12, 31))
    with pytest.raises(ValueError, match="has 31 units here but the head was fitted on 30"):
        head.transform(wrong)


def test_cross_decode_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    acts = make_acts(n_id=8, n_expr=3, views=("S", "HL"), expr_signal=(0.3, 1.5), seed=4)
    res = cross_decode(acts, "expression", train="view == 'S'", test="view == 'HL'")
    tr = acts["view"].values == "S"
    y = acts["expression"].values
    for layer in ("l0", "l1"):
        X = acts[layer].values.astype(float)
        p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
        acc = np.mean(p.fit(X[tr], y[tr]).predict(X[~tr]) == y[~tr])
        assert float(res.accuracy.sel(layer=layer)) == pytest.approx(acc)
    assert float(res.chance) == pytest.approx(1 / 3)
    assert res.confusion.sel(layer="l1").sum() == (~tr).sum()
    with pytest.raises(ValueError, match="share 24 stimuli"):
        cross_decode(acts, "expression", train="view == 'S'", test="expression != 'x'")
    with pytest.raises(ValueError, match=r"class\(es\) \['sad'\] that never occur in train"):
        cross_decode(acts, "expression", train="expression != 'sad' and view == 'S'",
                     test="view == 'HL'")


def _naive_balanced(Y, a, b):
    """Classical balanced two-way ANOVA, unit by unit, written out."""
    out = []
    for y in Y.T:
        g = y.mean()
        la, lb = a.max() + 1, b.max() + 1
        n_cell = len(y) / (la * lb)
        ma = np.array([y[a == i].mean() for i in range(la)])
        mb = np.array([y[b == j].mean() for j in range(lb)])
        mc = np.array([[y[(a == i) & (b == j)].mean() for j in range(lb)] for i in range(la)])
        ssa = n_cell * lb * ((ma - g) ** 2).sum()
        ssb = n_cell * la * ((mb - g) ** 2).sum()
        ssab = n_cell * ((mc - ma[:, None] - mb[None, :] + g) ** 2).sum()
        sse = ((y - mc[a, b]) ** 2).sum()
        out.append([ssa, ssb, ssab, sse])
    return np.array(out)


def _naive_type1(Y, a, b):
    """Sequential sums of squares from nested least-squares fits, unit by unit."""
    n = len(a)
    A = np.eye(a.max() + 1)[a]
    B = np.eye(b.max() + 1)[b]
    C = np.eye((a.max() + 1) * (b.max() + 1))[a * (b.max() + 1) + b]
    one = np.ones((n, 1))

    def rss(D, y):
        beta = np.linalg.lstsq(D, y, rcond=None)[0]
        return ((y - D @ beta) ** 2).sum()

    out = []
    for y in Y.T:
        r0, ra = rss(one, y), rss(np.hstack([one, A]), y)
        rab, rc = rss(np.hstack([one, A, B]), y), rss(C, y)
        out.append([r0 - ra, ra - rab, rab - rc, rc])
    return np.array(out)


def test_factor_variance_balanced_and_unbalanced():
    acts = make_acts(n_id=5, n_expr=3, views=("S", "HL"), expr_signal=(0.5, 2.0),
                     id_signal=(2.0, 0.5), n_units=(6, 7), seed=8)
    # add a real interaction to l1
    rng = np.random.default_rng(0)
    inter = rng.normal(size=(5, 3, 7))
    a, _ = acts.fb.labels("identity")
    b, _ = acts.fb.labels("expression")
    acts["l1"] = acts["l1"] + inter[a, b].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fv = factor_variance(acts)
    assert fv.attrs["balanced"] == 1
    assert list(fv.component.values) == ["identity", "expression", "identity:expression",
                                         "residual"]
    for layer in ("l0", "l1"):
        ss = _naive_balanced(acts[layer].values.astype(float), a, b)
        np.testing.assert_allclose(fv.fraction.sel(layer=layer).values,
                                   ss.sum(0) / ss.sum(), rtol=1e-8)
    # identity dominates l0, expression l1
    assert fv.fraction.sel(layer="l0", component="identity") > 0.5
    assert fv.fraction.sel(layer="l1", component="expression") > 0.3
    # unbalanced: drop a whole cell and a few more stimuli
    drop = ((a == 0) & (b == 1)) | (np.arange(len(a)) % 7 == 0)
    sub = acts.isel(stimulus=np.flatnonzero(~drop))
    with pytest.warns(UserWarning, match="unbalanced"):
        fu = factor_variance(sub)
    assert fu.attrs["balanced"] == 0 and np.isfinite(fu.fraction.values).all()
    sa, _ = sub.fb.labels("identity")
    sb, _ = sub.fb.labels("expression")
    ss = _naive_type1(sub["l1"].values.astype(float), sa, sb)
    np.testing.assert_allclose(fu.fraction.sel(layer="l1").values, ss.sum(0) / ss.sum(),
                               rtol=1e-6, atol=1e-10)


def test_subspace_angles_known_geometry():
    from scipy.linalg import subspace_angles as scipy_angles

    rng = np.random.default_rng(1)
    acts = make_acts(n_id=4, n_expr=3, n_units=(20, 20), seed=0)
    a, _ = acts.fb.labels("identity")
    b, _ = acts.fb.labels("expression")
    n = len(a)
    # l0: identity lives in units 0-9, expression in 10-19 (orthogonal subspaces)
    X0 = np.zeros((n, 20))
    X0[:, :10] = rng.normal(size=(4, 10))[a]
    X0[:, 10:] = rng.normal(size=(3, 10))[b]
    # l1: both factors move the same 2-D subspace
    basis = np.linalg.qr(rng.normal(size=(20, 2)))[0].T
    X1 = rng.normal(size=(4, 2))[a] @ basis + rng.normal(size=(3, 2))[b] @ basis
    acts["l0"] = (("stimulus", "l0_unit"), X0)
    acts["l1"] = (("stimulus", "l1_unit"), X1)
    sa = subspace_angles(acts, "identity", "expression")
    np.testing.assert_allclose(sa.angle.sel(layer="l0").values, 90, atol=1e-6)
    assert float(sa.congruence.sel(layer="l0")) == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(sa.angle.sel(layer="l1").values, 0, atol=1e-5)
    assert int(sa.n_dims_a.sel(layer="l1")) == 2 and int(sa.n_dims_a.sel(layer="l0")) == 3
    # against scipy on class-mean directions computed by hand (pandas-free loop)
    X = acts["l1"].values
    Ma = np.array([X[a == i].mean(0) - X.mean(0) for i in range(4)])
    Mb = np.array([X[b == j].mean(0) - X.mean(0) for j in range(3)])
    ref = np.sort(np.degrees(scipy_angles(np.linalg.svd(Ma)[2][:2].T,
                                          np.linalg.svd(Mb)[2][:2].T)))
    np.testing.assert_allclose(sa.angle.sel(layer="l1").values[:2], ref, atol=1e-5)
    with pytest.raises(ValueError, match="single value"):
        subspace_angles(acts, "identity", "view")
