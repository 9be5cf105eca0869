"""Float32 partial-fraction scoring (``score_dtype="float32"``) against float64 references."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from facebrain.encoding import _pf
from facebrain.encoding import _solvers as S


def _scores(dec, Y, tr, te, alphas, dtype, monkeypatch, direct=False, scoring="neg_mse"):
    with monkeypatch.context() as m:
        if direct:
            m.setattr(_pf, "COST_FRACTION", 0.0)  # declined: the direct GEMM in ``dtype``
        before = dict(_pf.STATS)
        out = S.fold_scores(dec, Y, tr, te, alphas, True, scoring, dtype)
        used = {k: _pf.STATS[k] - before[k] for k in before}
    return out, used


def _data(rng, n, p, n_v, snr_max=10.0):
    """Decaying-spectrum design; targets from pure noise to R^2 ~ 0.99 (cancellation ~100)."""
    X = rng.normal(size=(n, 30)) @ rng.normal(size=(30, p)) * 0.3 + 0.05 * rng.normal(size=(n, p))
    sig = X @ rng.normal(size=(p, n_v))
    sig /= sig.std(0)
    return X, sig * np.logspace(-1.5, np.log10(snr_max), n_v) + rng.normal(size=(n, n_v)) + 2.0


@pytest.mark.parametrize("n,p,snr", [(150, 300, 10.0), (200, 40, 10.0), (400, 800, 30.0)])
@pytest.mark.parametrize("scoring", ["neg_mse", "r2"])
def test_pf32_matches_float64_at_float32_tolerance(n, p, snr, scoring, monkeypatch):
    """Within 1e-5 of float64, as the float32 direct GEMM (the largest case fails with
    ``H @ B`` entirely in float32: 2e-5)."""
    rng = np.random.default_rng(n + p)
    X, Y = _data(rng, n, p, 40, snr)
    alphas = np.logspace(-2, 7, 19)
    folds = list(KFold(4).split(X))
    solver = "dual" if p > n else "primal"
    for dec, (tr, te) in zip(S.fold_decompositions(X, folds, solver, True), folds):
        ours, used = _scores(dec, Y, tr, te, alphas, "float32", monkeypatch, scoring=scoring)
        assert used["pf_blocks"] >= 1 and used["declined"] == 0
        ref, _ = _scores(dec, Y, tr, te, alphas, "float64", monkeypatch, direct=True,
                         scoring=scoring)
        d32, _ = _scores(dec, Y, tr, te, alphas, "float32", monkeypatch, direct=True,
                         scoring=scoring)
        scale = np.abs(ref) if scoring == "neg_mse" else np.maximum(np.abs(ref), 1.0)
        err, err_direct = np.abs(ours - ref) / scale, np.abs(d32 - ref) / scale
        # measured: 3e-6 at most here, the float32 direct GEMM's own error 3e-6
        assert err.max() < 1e-5 and err_direct.max() < 1e-5, (err.max(), err_direct.max())
        np.testing.assert_array_equal(ours.argmax(0), ref.argmax(0))


def test_pf32_plan_splits_h_exactly():
    rng = np.random.default_rng(0)
    s = np.sort(np.r_[np.zeros(3), np.logspace(-2, 5, 597)])
    A = rng.normal(size=(25, s.size))
    p64 = _pf.pf_plan(s, A, s.size, np.logspace(-2, 5, 19), 1e12)
    p32 = _pf.pf_plan(s, A, s.size, np.logspace(-2, 5, 19), 1e12, float32=True)
    H, off = p64["H"], p32["H32"].astype(float)
    np.testing.assert_array_equal(p32["H"], H)
    assert p32["H32"].dtype == np.float32 and p32["rtol"] == _pf.ERR_RTOL32
    rebuilt = off.copy()
    bs = p32["Hd"][0][1]
    assert bs == max(_pf.SPLIT_MIN, int(np.ceil(_pf.SPLIT_BLOCK * s.size))) < s.size
    for a, b, Hd in p32["Hd"]:
        assert np.all(off[a:b, a:b] == 0)
        rebuilt[a:b, a:b] = Hd
    assert sum(b - a for a, b, _ in p32["Hd"]) == s.size
    np.testing.assert_allclose(rebuilt, H, rtol=2 * _pf._EPS32, atol=0)
    # the bound's row weights: float64 eps on the diagonal blocks, float32 eps elsewhere
    assert np.all(p32["hn_err"] >= p64["hn"] * (1 - 1e-12)) and p32["eps_b"] == _pf._EPS32


def test_pf32_guard_routes_cancelling_scores_to_float64(monkeypatch):
    """Noise-free targets of a rank-8 design (SSE << |Yt|^2): float32 partial fractions cannot
    bound those scores within ERR_RTOL32, so they are recomputed by the float64 direct GEMM
    and the result matches float64 where float32 alone would not."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 8)) @ rng.normal(size=(8, 200))
    Y = X @ rng.normal(size=(200, 20))
    Y[:, :5] += 1e-6 * rng.normal(size=(90, 5))
    Y[:, 10:] = rng.normal(size=(90, 10))  # pure noise: no cancellation, certified
    folds = list(KFold(3).split(X))
    alphas = np.logspace(-8, 6, 29)
    for dec, (tr, te) in zip(S.fold_decompositions(X, folds, "dual", True), folds):
        ours, used = _scores(dec, Y, tr, te, alphas, "float32", monkeypatch)
        ref, _ = _scores(dec, Y, tr, te, alphas, "float64", monkeypatch, direct=True)
        assert 0 < used["direct_scores"] < alphas.size * Y.shape[1]
        err = np.abs(ours - ref) / np.abs(ref)
        assert err.max() <= _pf.ERR_RTOL32, err.max()
        assert err[:, 10:].max() < 1e-5


def test_pf32_zero_tolerance_recomputes_everything_in_float64(monkeypatch):
    rng = np.random.default_rng(4)
    X, Y = _data(rng, 90, 200, 20)
    (tr, te), = list(KFold(3).split(X))[:1]
    alphas = np.logspace(-4, 6, 21)
    dec = S.fold_decompositions(X, [(tr, te)], "dual", True)[0]
    monkeypatch.setattr(_pf, "ERR_RTOL32", 0.0)
    ours, used = _scores(dec, Y, tr, te, alphas, "float32", monkeypatch)
    ref, _ = _scores(dec, Y, tr, te, alphas, "float64", monkeypatch, direct=True)
    assert used["direct_scores"] == alphas.size * Y.shape[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-13)
