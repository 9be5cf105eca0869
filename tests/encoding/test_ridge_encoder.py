"""RidgeEncoder against scikit-learn Ridge refits (1e-6) and himalaya's KernelRidgeCV alphas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from facebrain.encoding import RIDGE_SOLVERS, RidgeEncoder

ALPHAS = np.logspace(-2, 7, 19)


def realistic(rng, n, p, n_vox=400, offset=3.0):
    """Correlated features with a decaying spectrum; voxels from silent to high SNR."""
    X = rng.normal(size=(n, p)) @ np.diag(np.logspace(0, -1.5, p)) @ rng.normal(size=(p, p)) / p
    X += rng.normal(size=(1, p))
    W = rng.normal(size=(p, n_vox)) * (rng.random((1, n_vox)) < 0.8)  # 20% pure-noise voxels
    signal = X @ W
    signal /= signal.std(0) + 1e-12
    Y = signal * np.logspace(-1.5, 1, n_vox) + rng.normal(size=(n, n_vox)) + offset
    return X, Y


@parametrize_with_checks([RidgeEncoder(), RidgeEncoder(solver="dual", cv=3)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("n,p,solver", [(90, 30, "primal"), (60, 150, "dual")])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_equals_sklearn_ridge_refit_per_voxel(rng, n, p, solver, fit_intercept):
    X, Y = realistic(rng, n, p, n_vox=60)
    enc = RidgeEncoder(ALPHAS, cv=5, fit_intercept=fit_intercept, batch_size=17).fit(X, Y)
    assert enc.solver_ == solver
    assert enc.coef_.shape == (60, p) and enc.best_alphas_.shape == (60,)
    for j in range(60):
        ref = Ridge(alpha=enc.best_alphas_[j], fit_intercept=fit_intercept).fit(X, Y[:, j])
        scale = max(1.0, np.abs(ref.coef_).max())
        np.testing.assert_allclose(enc.coef_[j], ref.coef_, rtol=0, atol=1e-6 * scale)
        assert enc.intercept_[j] == pytest.approx(ref.intercept_, abs=1e-6 * max(1, abs(
            ref.intercept_)))
    np.testing.assert_allclose(enc.predict(X[:5]), X[:5] @ enc.coef_.T + enc.intercept_)


def test_float32_scoring_keeps_float64_refit(rng):
    X, Y = realistic(rng, 70, 120, n_vox=40)
    a = RidgeEncoder(ALPHAS, score_dtype="float32").fit(X, Y)
    b = RidgeEncoder(ALPHAS).fit(X, Y)
    assert np.mean(a.best_alphas_ == b.best_alphas_) >= 0.95
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, rtol=1e-4)
    for j in np.flatnonzero(a.best_alphas_ == b.best_alphas_)[:5]:
        ref = Ridge(alpha=a.best_alphas_[j]).fit(X, Y[:, j])
        np.testing.assert_allclose(a.coef_[j], ref.coef_, atol=1e-6 * max(1, np.abs(
            ref.coef_).max()))
    with pytest.raises(ValueError, match="score_dtype"):
        RidgeEncoder(score_dtype="float16").fit(X, Y)


def test_primal_and_dual_agree(rng):
    X, Y = realistic(rng, 50, 40, n_vox=30)
    a = RidgeEncoder(ALPHAS, solver="primal").fit(X, Y)
    b = RidgeEncoder(ALPHAS, solver="dual").fit(X, Y)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, rtol=1e-8)
    assert set(RIDGE_SOLVERS) == {"primal", "dual"}


@pytest.mark.parametrize("n,p", [(150, 40), (80, 160)])
@pytest.mark.parametrize("scoring,score_dtype", [("neg_mse", "float64"), ("r2", "float64"),
                                                 ("neg_mse", "float32")])
def test_alphas_agree_with_himalaya_kernel_ridge_cv(rng, n, p, scoring, score_dtype):
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.scoring import l2_neg_loss, r2_score

    set_backend("numpy")
    X, Y = realistic(rng, n, p)
    cv = KFold(5)
    ours = RidgeEncoder(ALPHAS, cv=cv, scoring=scoring, score_dtype=score_dtype).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = KernelRidgeCV(alphas=ALPHAS, cv=cv, fit_intercept=True, solver_params={
            "score_func": r2_score if scoring == "r2" else l2_neg_loss}).fit(X, Y)
    agree = np.mean(np.isclose(ours.best_alphas_, ref.best_alphas_))
    assert agree >= 0.99, agree
    assert np.unique(ours.best_alphas_).size >= 5  # a realistic spread of choices
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6)


def test_shared_alpha_like_himalaya_local_alpha_false(rng):
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("numpy")
    X, Y = realistic(rng, 70, 20, n_vox=50)
    ours = RidgeEncoder(ALPHAS, cv=KFold(5), alpha_per_target=False).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = KernelRidgeCV(alphas=ALPHAS, cv=KFold(5), fit_intercept=True,
                            solver_params={"local_alpha": False}).fit(X, Y)
    assert np.unique(ours.best_alphas_).size == 1
    np.testing.assert_allclose(ours.best_alphas_, ref.best_alphas_)


def test_groups_reach_the_splitter(rng):
    X, Y = realistic(rng, 40, 10, n_vox=5)
    groups = np.repeat(np.arange(8), 5)
    a = RidgeEncoder(ALPHAS, cv=GroupKFold(4)).fit(X, Y, groups=groups)
    folds = list(GroupKFold(4).split(X, Y, groups))
    b = RidgeEncoder(ALPHAS, cv=folds).fit(X, Y)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)


@pytest.mark.parametrize("bad", [[1.0, 0.0], [-1.0], [np.nan, 1.0], []])
def test_alphas_must_be_positive(rng, bad):
    X, Y = realistic(rng, 20, 5, n_vox=3)
    with pytest.raises(ValueError, match="alphas must be"):
        RidgeEncoder(alphas=bad).fit(X, Y)


def test_bad_options(rng):
    X, Y = realistic(rng, 20, 5, n_vox=3)
    with pytest.raises(ValueError, match="solver="):
        RidgeEncoder(solver="cholesky").fit(X, Y)
    with pytest.raises(ValueError, match="scoring="):
        RidgeEncoder(scoring="mse").fit(X, Y)
    with pytest.raises(ValueError, match="n_samples = 3"):
        RidgeEncoder(cv=5).fit(X[:3], Y[:3])
