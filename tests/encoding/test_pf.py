"""Partial-fraction float64 scoring (``_pf``) against the direct GEMM and np.linalg.solve."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from facebrain.encoding import _pf
from facebrain.encoding import _solvers as S


def _solve_scores(X, Y, tr, te, alphas, fit_intercept, scoring):
    """Independent reference: one np.linalg.solve per alpha (primal or dual normal equations)."""
    xm = X[tr].mean(0) if fit_intercept else np.zeros(X.shape[1])
    ym = Y[tr].mean(0) if fit_intercept else np.zeros(Y.shape[1])
    Xc, Yc = X[tr] - xm, Y[tr] - ym
    out = []
    for a in alphas:
        if Xc.shape[1] <= Xc.shape[0]:
            coef = np.linalg.solve(Xc.T @ Xc + a * np.eye(Xc.shape[1]), Xc.T @ Yc)
        else:
            coef = Xc.T @ np.linalg.solve(Xc @ Xc.T + a * np.eye(Xc.shape[0]), Yc)
        sse = ((Y[te] - ym - (X[te] - xm) @ coef) ** 2).sum(0)
        out.append(sse)
    return _to_score(np.array(out), Y[te], scoring)


def _to_score(sse, Yte, scoring):
    if scoring == "neg_mse":
        return -sse / Yte.shape[0]
    var = ((Yte - Yte.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var == 0, 0.0, 1.0 - sse / var)


def _scores(dec, Y, tr, te, alphas, fit_intercept, scoring, monkeypatch, direct=False):
    with monkeypatch.context() as m:
        if direct:
            m.setattr(_pf, "COST_FRACTION", 0.0)  # every fold declined: today's direct GEMM
        before = dict(_pf.STATS)
        out = S.fold_scores(dec, Y, tr, te, alphas, fit_intercept, scoring)
        used = {k: _pf.STATS[k] - before[k] for k in before}
    return out, used


def _close(a, b, scoring, rtol=1e-10):
    """Relative agreement of the SSE-based scores (r2 in units of 1: 1 - sse/var)."""
    scale = np.abs(b) if scoring == "neg_mse" else np.maximum(np.abs(b), 1.0)
    err = np.abs(a - b) / np.where(scale > 0, scale, 1.0)
    assert np.all(np.isfinite(a)) and err.max() <= rtol, err.max()


def _targets(rng, X, n_v):
    Y = rng.normal(size=(X.shape[0], n_v)) + 3.0
    Y[:, : n_v // 2] += X @ rng.normal(size=(X.shape[1], n_v // 2)) / np.sqrt(X.shape[1])
    Y[:, -1] = 7.0  # constant target
    Y[:, -2] = 0.0  # all-zero target
    return Y


CASES = {
    "random_dual": (80, 150, False, np.logspace(-6, 10, 25)),
    "random_primal": (120, 20, False, np.logspace(-6, 10, 25)),
    "null_space_dual": (100, 30, False, np.logspace(-1, 8, 20)),  # p < n: zero eigenvalues
    "duplicated_rows": (80, 150, True, np.logspace(-1, 8, 20)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scoring", ["neg_mse", "r2"])
def test_pf_matches_direct_and_solve(case, fit_intercept, scoring, monkeypatch):
    n, p, dup, alphas = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    X = rng.normal(size=(n, p)) * np.logspace(0, -1.5, p)
    if dup:
        X[1::4] = X[0::4][: X[1::4].shape[0]]  # duplicated stimuli
    Y = _targets(rng, X, 40)
    folds = list(KFold(4).split(X))
    solver = "dual" if case != "random_primal" else "primal"
    decs = S.fold_decompositions(X, folds, solver, fit_intercept)
    for dec, (tr, te) in zip(decs, folds):
        pf, used = _scores(dec, Y, tr, te, alphas, fit_intercept, scoring, monkeypatch)
        assert used["pf_blocks"] >= 1 and used["declined"] == 0
        direct, used_d = _scores(dec, Y, tr, te, alphas, fit_intercept, scoring, monkeypatch,
                                 direct=True)
        assert used_d["pf_blocks"] == 0 and used_d["declined"] == 1
        _close(pf, direct, scoring)
        _close(pf, _solve_scores(X, Y, tr, te, alphas, fit_intercept, scoring), scoring,
               rtol=1e-9 if case == "null_space_dual" else 1e-10)


def _synthetic_dec(rng, s, n_train=None, n_test=30):
    r = s.size
    n_train = n_train or r
    T, _ = np.linalg.qr(rng.normal(size=(n_train, r)))
    return {"s": np.asarray(s, dtype=float), "T": T, "A": rng.normal(size=(n_test, r))}


def _formula_sse(dec, Yc, Yt, alphas):
    """Independent per-alpha predictions A diag(1 / (s + alpha)) T.T Yc."""
    B = dec["T"].T @ Yc
    return np.array([((Yt - dec["A"] @ (B / (dec["s"] + a)[:, None])) ** 2).sum(0)
                     for a in alphas])


SPECTRA = {
    "exact_ties": np.sort(np.r_[np.zeros(12), np.full(6, 5.0), np.logspace(-3, 4, 30)]),
    "near_ties": np.sort(np.r_[1 + 1e-9 * np.arange(4), 1e3 * (1 + 1e-12 * np.arange(3)),
                               np.logspace(-2, 5, 35)]),
    "clustered": np.sort(np.r_[1e3 * (1 + 2e-3 * np.arange(10)), 1e-2 * (1 + 1e-4 * np.arange(5)),
                               np.logspace(-4, 6, 30)]),
}


@pytest.mark.parametrize("name", sorted(SPECTRA))
@pytest.mark.parametrize("dual", [True, False])
def test_pf_adversarial_spectra(name, dual, monkeypatch):
    rng = np.random.default_rng(len(name))
    s = SPECTRA[name]
    dec = _synthetic_dec(rng, s, n_train=s.size if dual else s.size + 25)
    n_tr = dec["T"].shape[0]
    Y = rng.normal(size=(n_tr + 30, 50)) * np.logspace(-3, 3, 50)
    Y[:, 0] = 1.0
    tr, te = np.arange(n_tr), np.arange(n_tr, n_tr + 30)
    alphas = np.logspace(-6, 10, 33)
    pf, used = _scores(dec, Y, tr, te, alphas, True, "neg_mse", monkeypatch)
    assert used["pf_blocks"] >= 1
    direct, _ = _scores(dec, Y, tr, te, alphas, True, "neg_mse", monkeypatch, direct=True)
    Yc = Y[tr] - Y[tr].mean(0)
    ref = -_formula_sse(dec, Yc, Y[te] - Y[tr].mean(0), alphas) / te.size
    _close(pf, direct, "neg_mse")
    _close(pf, ref, "neg_mse")


def test_pf_clusters_are_not_split():
    s = SPECTRA["exact_ties"]
    A = np.random.default_rng(0).normal(size=(30, s.size))
    plan = _pf.pf_plan(s, A, s.size, np.logspace(-2, 5, 19), 1e12)
    H = plan["H"]
    assert np.array_equal(H, -H.T)
    five = np.flatnonzero(s == 5.0)
    a, b = int(five[0]), int(five[-1]) + 1
    assert np.all(H[:12, :12] == 0) and np.all(H[a:b, a:b] == 0)  # the zeros, the 5.0s
    assert plan["blocks"] == [(0, 12), (a, b)] and np.all(np.isfinite(H))
    assert np.count_nonzero(H) == s.size ** 2 - 12 ** 2 - 6 ** 2 - (s.size - 18)  # and diag


def _block_inputs(dec, Y, tr, te):
    Yc = Y[tr] - Y[tr].mean(0)
    Yt = Y[te] - Y[tr].mean(0)
    return Yc, Yt, dec["T"].T @ Yc, dec["A"].T @ Yt


def test_pf_fallback_on_defeating_case(monkeypatch):
    """Noise-free targets of a rank-8 design fitted almost exactly (SSE << |Yt|^2, a large
    numerical null space): partial fractions cannot certify 1e-10 for every score, so those
    go through the direct GEMM; every certified score is within 1e-10 of a long-double
    evaluation of the same factorisation."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 8)) @ rng.normal(size=(8, 200))
    Y = X @ rng.normal(size=(200, 20))
    Y[:, :5] += 1e-6 * rng.normal(size=(90, 5))
    folds = list(KFold(3).split(X))
    alphas = np.logspace(-8, 6, 29)
    L = np.longdouble
    for dec, (tr, te) in zip(S.fold_decompositions(X, folds, "dual", True), folds):
        _, used = _scores(dec, Y, tr, te, alphas, True, "neg_mse", monkeypatch)
        assert used["direct_scores"] > 0 and used["pf_blocks"] >= 1
        Yc, Yt, B, Cy = _block_inputs(dec, Y, tr, te)
        plan = _pf.pf_plan(dec["s"], dec["A"], tr.size, alphas, np.inf)
        sse, bad = _pf.pf_sse(plan, B, Cy, (Yt * Yt).sum(0), np.sqrt((Yc * Yc).sum(0)))
        A, s, Bl = dec["A"].astype(L), dec["s"].astype(L), B.astype(L)
        truth = np.array([((Yt.astype(L) - A @ (Bl / (s + L(a))[:, None])) ** 2).sum(0)
                          for a in alphas]).astype(float)
        assert bad.any() and not bad.all()
        err = np.abs(sse - truth) / truth
        assert err[~bad].max() <= 1e-10


def test_pf_zero_tolerance_recomputes_everything(monkeypatch):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(90, 200))
    Y = rng.normal(size=(90, 20)) + X @ rng.normal(size=(200, 20)) / 20
    (tr, te), = list(KFold(3).split(X))[:1]
    alphas = np.logspace(-4, 6, 21)
    dec = S.fold_decompositions(X, [(tr, te)], "dual", True)[0]
    monkeypatch.setattr(_pf, "ERR_RTOL", 0.0)
    pf, used = _scores(dec, Y, tr, te, alphas, True, "neg_mse", monkeypatch)
    direct, _ = _scores(dec, Y, tr, te, alphas, True, "neg_mse", monkeypatch, direct=True)
    assert used["direct_scores"] == alphas.size * Y.shape[1]
    _close(pf, direct, "neg_mse", rtol=1e-13)


def test_pf_declined_for_few_alphas(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 100))
    Y = rng.normal(size=(60, 5))
    (tr, te), = list(KFold(5).split(X))[:1]
    dec = S.fold_decompositions(X, [(tr, te)], "dual", True)[0]
    _, used = _scores(dec, Y, tr, te, np.array([1.0, 10.0]), True, "neg_mse", monkeypatch)
    assert used["declined"] == 1 and used["pf_blocks"] == 0
