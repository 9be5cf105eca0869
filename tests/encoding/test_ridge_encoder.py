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


def test_dual_coef_formed_on_demand_equals_himalaya(rng):
    """The fit keeps dual weights as (U, B); dual_coef_ = U @ B equals himalaya's weights,
    and predictions are the same before and after forming it (and after pickling)."""
    import pickle

    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("numpy")
    X, Y = realistic(rng, 60, 150, n_vox=40)
    cv = KFold(5)
    ours = RidgeEncoder(ALPHAS, cv=cv).fit(X, Y)
    assert ours.solver_ == "dual"
    before = ours.predict(X[:7])
    restored = pickle.loads(pickle.dumps(ours))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = KernelRidgeCV(alphas=ALPHAS, cv=cv, fit_intercept=True).fit(X, Y)
    same = np.isclose(ours.best_alphas_, ref.best_alphas_)
    assert same.mean() >= 0.99
    d_ref = np.asarray(ref.dual_coef_)
    assert ours.dual_coef_.shape == d_ref.shape
    np.testing.assert_allclose(ours.dual_coef_[:, same], d_ref[:, same], rtol=1e-6,
                               atol=1e-9 * np.abs(d_ref).max())
    np.testing.assert_allclose(ours.predict(X[:7]), before, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(restored.predict(X[:7]), before, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(restored.coef_, ours.coef_, rtol=1e-10, atol=1e-12)


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


# ------------------------------------------------------------------ issue 11.5 / 13.1 / 13.7
def _him_alphas(X, Y, cv, fit_intercept):
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KernelRidgeCV(alphas=ALPHAS, cv=cv, fit_intercept=fit_intercept).fit(
            X, Y).best_alphas_


def _fit(X, Y, **kw):
    from facebrain.errors import AlphaGridWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlphaGridWarning)
        return RidgeEncoder(ALPHAS, **kw).fit(X, Y)


@pytest.mark.parametrize("n,p", [(120, 35), (70, 150)])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("score_dtype", ["float64", "float32"])
def test_alphas_scale_free_and_equal_to_himalaya(n, p, fit_intercept, score_dtype):
    """Fresh data (seeds not used elsewhere): himalaya's alphas on >= 99% of voxels, and
    Y * 1e-5 or Y * 1e5 picks the same alphas (a fixed 1e-10 tie slope kept 41.9%)."""
    rng = np.random.default_rng(7_000 + n + p)
    X, Y = realistic(rng, n, p, n_vox=300, offset=3.0 if fit_intercept else 0.0)
    cv = KFold(5)
    ours = _fit(X, Y, cv=cv, fit_intercept=fit_intercept, score_dtype=score_dtype)
    ref = _him_alphas(X, Y, cv, fit_intercept)
    assert np.mean(np.isclose(ours.best_alphas_, ref)) >= 0.99
    assert np.unique(ours.best_alphas_).size >= 5
    for factor in (1e-5, 1e5):
        scaled = _fit(X, Y * factor, cv=cv, fit_intercept=fit_intercept, score_dtype=score_dtype)
        np.testing.assert_array_equal(scaled.best_alphas_, ours.best_alphas_)
        np.testing.assert_allclose(scaled.predict(X[:7]), ours.predict(X[:7]) * factor,
                                   rtol=1e-6, atol=1e-9 * factor * np.abs(Y).max())


def test_tie_break_prefers_larger_alpha_on_exact_ties():
    from facebrain.encoding._ridge_encoder import select_alphas

    scores = np.array([[-1.0, -3e-12, 0.0], [-1.0, -3e-12, 0.0], [-2.0, -5e-12, 0.0]])
    alphas = np.array([0.1, 1.0, 10.0])
    # targets 0, 1: alphas 0.1 and 1 tie exactly; target 2: an all-zero (constant) target
    np.testing.assert_array_equal(select_alphas(scores, alphas), [1, 1, 2])
    np.testing.assert_array_equal(select_alphas(scores * 1e-12, alphas), [1, 1, 2])


def test_grid_edge_warning(rng):
    from facebrain.errors import AlphaGridWarning

    X = rng.normal(size=(60, 8))
    noise = rng.normal(size=(60, 20))  # nothing to predict: the largest alpha often wins
    with pytest.warns(AlphaGridWarning, match=r"largest alpha \(1e\+07\)") as rec:
        enc = RidgeEncoder(ALPHAS).fit(X, noise)
    frac = np.mean(enc.best_alphas_ == ALPHAS.max())
    assert frac > 0.05 and f"for {100 * frac:.1f}% of targets" in str(rec[0].message)
    signal = X @ rng.normal(size=(8, 20)) + 3.0 * rng.normal(size=(60, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlphaGridWarning)  # a grid that brackets the optimum
        enc = RidgeEncoder(np.logspace(-3, 4, 15)).fit(X, signal)
    assert 0 < enc.best_alphas_.min() and enc.best_alphas_.max() < 1e4
    with pytest.warns(AlphaGridWarning, match="smallest alpha"):
        RidgeEncoder([10.0, 100.0, 1000.0]).fit(X, signal)


def test_decompositions_cached_across_voxel_blocks(rng):
    from facebrain.encoding import _solvers

    X, Y = realistic(rng, 60, 90, n_vox=40)
    _solvers.clear_cache()
    whole = _fit(X, Y, cv=KFold(4))
    assert len(_solvers._CACHE) == 2  # the folds' factors and the refit's
    blocks = [_fit(X, Y[:, a:a + 13], cv=KFold(4)) for a in range(0, 40, 13)]
    assert len(_solvers._CACHE) == 2  # every block reused the first fit's factors
    np.testing.assert_array_equal(np.concatenate([b.best_alphas_ for b in blocks]),
                                  whole.best_alphas_)
    np.testing.assert_allclose(np.concatenate([b.cv_scores_ for b in blocks], axis=1),
                               whole.cv_scores_, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([b.predict(X[:4]) for b in blocks], axis=1),
                               whole.predict(X[:4]), rtol=1e-10, atol=1e-10)
    X2 = X.copy()
    X2[0, 0] += 1.0  # other data: new entries, never a stale hit
    _fit(X2, Y, cv=KFold(4))
    assert len(_solvers._CACHE) == 4


def test_dual_coef_matches_lazy_primal_coef(rng):
    X, Y = realistic(rng, 40, 120, n_vox=6)
    enc = _fit(X, Y)
    assert enc.dual_coef_.shape == (40, 6)
    pred = enc.predict(X[:9])  # dual path, before coef_ exists
    np.testing.assert_allclose(pred, X[:9] @ enc.coef_.T + enc.intercept_, rtol=1e-9,
                               atol=1e-9)
    one = _fit(X, Y[:, 2])
    assert one.coef_.shape == (120,) and one.predict(X[:3]).shape == (3,)
    np.testing.assert_allclose(one.coef_, enc.coef_[2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("p", [30, 140])
def test_torch_path_equals_numpy_at_float32_tolerance(rng, p):
    pytest.importorskip("torch")
    X, Y = realistic(rng, 90, p, n_vox=50)
    ref = _fit(X, Y, score_dtype="float32")
    ours = _fit(X, Y, score_dtype="float32", device="cpu")
    assert np.mean(ours.best_alphas_ == ref.best_alphas_) >= 0.98
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-5)
    same = ours.best_alphas_ == ref.best_alphas_
    np.testing.assert_allclose(ours.predict(X[:5])[:, same], ref.predict(X[:5])[:, same],
                               rtol=1e-6, atol=1e-6)
    exact = _fit(X, Y, device="cpu")  # float64 through torch: numpy's answer to rounding
    np.testing.assert_array_equal(exact.best_alphas_, _fit(X, Y).best_alphas_)
    with pytest.raises(ValueError, match="device="):
        _fit(X, Y, device="tpu:7")


@pytest.mark.gpu
def test_cuda_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda is not available")
    X, Y = realistic(np.random.default_rng(11), 200, 300, n_vox=500)
    cpu = _fit(X, Y, score_dtype="float32")
    gpu = _fit(X, Y, score_dtype="float32", device="cuda")
    assert np.mean(gpu.best_alphas_ == cpu.best_alphas_) >= 0.99
    np.testing.assert_allclose(gpu.cv_scores_, cpu.cv_scores_, rtol=1e-5)
    same = gpu.best_alphas_ == cpu.best_alphas_
    np.testing.assert_allclose(gpu.predict(X[:5])[:, same], cpu.predict(X[:5])[:, same],
                               rtol=1e-6, atol=1e-6)
