"""Comparison kernels against rsatoolbox.rdm.compare, scipy and naive loops (tolerance 1e-10)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsa_compare

from facebrain.rsa import COMPARISONS
from facebrain.rsa._kernels import dense_ranks, inversions, kendall_counts

METHODS = ["cosine", "spearman", "corr", "kendall", "tau-a", "rho-a", "corr_cov", "cosine_cov"]
TOL = 1e-10


def _vectors(rng, n_cond=11, ties=True):
    p = n_cond * (n_cond - 1) // 2
    v1 = rng.normal(size=(3, p))
    v2 = rng.normal(size=(4, p)) + 0.5 * v1[[0, 1, 2, 0]]
    if ties:
        v1[1] = np.round(v1[1])  # many ties
        v2[0] = (rng.random(p) > 0.6).astype(float)  # a binary (label-like) RDM
        v2[2] = np.round(2 * v2[2]) / 2
    return v1, v2


@pytest.mark.parametrize("method", METHODS)
def test_kernels_equal_rsatoolbox_with_ties(rng, method):
    v1, v2 = _vectors(rng)
    ours = COMPARISONS[method](v1, v2)
    ref = rsa_compare(RDMs(v1), RDMs(v2), method=method)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("method", METHODS)
def test_compare_equals_rsatoolbox_with_nan_entries(rng, method):
    from facebrain.rsa import compare

    n_cond = 9
    v1, v2 = _vectors(rng, n_cond)
    nan_pos = [3, 17, 20]
    v1[:, nan_pos] = np.nan
    v2[:, nan_pos] = np.nan
    ids = np.array([f"c{i}" for i in range(n_cond)], dtype=object)
    m = RDMs(v1, pattern_descriptors={"stimulus": ids}, rdm_descriptors={"layer": ["a", "b", "c"]})
    b = RDMs(v2, pattern_descriptors={"stimulus": ids},
             rdm_descriptors={"roi": ["R1", "R1", "R2", "R2"], "subject": ["1", "2", "1", "2"]})
    res = compare(m, b, method=method, ceiling=False)
    ref = rsa_compare(m, b, method=method)
    np.testing.assert_allclose(res["score"].values.reshape(3, 4), ref, rtol=0, atol=TOL)


def test_weighted_kernels_equal_expanded_vectors(rng):
    """Integer weights mean repeated entries: equal to rsatoolbox on the repeated vector."""
    v1, v2 = _vectors(rng)
    w = rng.integers(0, 4, v1.shape[1]).astype(float)
    expand = np.repeat(np.arange(v1.shape[1]), w.astype(int))
    for method in ["cosine", "corr", "spearman", "rho-a", "tau-a", "kendall"]:
        ours = COMPARISONS[method](v1, v2, w)
        ref = rsa_compare(RDMs(v1[:, expand]), RDMs(v2[:, expand]), method=method)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL, err_msg=method)


def test_inversions_equal_naive_loop(rng):
    y = rng.integers(1, 9, size=(6, 45))  # many ties
    w = rng.integers(0, 3, size=(6, 45)).astype(float)
    naive = [sum(w[r, p] * w[r, q] for p in range(45) for q in range(p + 1, 45)
                 if y[r, p] > y[r, q]) for r in range(6)]
    np.testing.assert_array_equal(inversions(y, w), naive)
    np.testing.assert_array_equal(inversions(y[:, :33]), [
        sum(y[r, p] > y[r, q] for p in range(33) for q in range(p + 1, 33)) for r in range(6)])


@pytest.mark.parametrize("engine", ["numpy", "scipy"])
def test_knight_counts_match_scipy_kendalltau_and_naive_tau_a(rng, engine):
    x = np.round(rng.normal(size=300), 1)
    y = np.round(x + rng.normal(size=300), 1)
    cmd, tot, xt, yt = kendall_counts(dense_ranks(x)[0], dense_ranks(y)[0], engine=engine)
    tau_b = cmd / np.sqrt((tot - xt) * (tot - yt))
    assert tau_b == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=TOL)
    s = np.sign(x[:, None] - x[None]) * np.sign(y[:, None] - y[None])
    assert cmd / tot == pytest.approx(s[np.triu_indices(300, 1)].sum() / tot, abs=TOL)


def test_tau_a_is_n_log_n_not_quadratic(rng, monkeypatch):
    """Timing-free check of the algorithm: merge levels grow like log2(n)."""
    from facebrain.rsa import _kernels

    calls = []
    orig = _kernels._argsort

    def counting(a, *args, **kw):
        calls.append(np.shape(a))
        return orig(a, *args, **kw)

    monkeypatch.setattr(_kernels, "_argsort", counting)  # the module's alias, not numpy's
    inversions(rng.integers(0, 100, size=(1, 4096)))
    assert len(calls) == 12  # log2(4096) merge levels, each one stable sort of all elements
    assert all(np.prod(c) == 4096 for c in calls)


def test_constant_rdm_gives_nan_with_warning(rng):
    v1, v2 = _vectors(rng, ties=False)
    v1[0] = 1.0
    for method in ["cosine", "corr", "spearman", "tau-a", "kendall", "rho-a", "corr_cov",
                   "cosine_cov"]:
        v = v1.copy()
        if method in ("cosine", "cosine_cov"):
            v[0] = 0.0
        with pytest.warns(RuntimeWarning, match="constant"):
            out = COMPARISONS[method](v, v2)
        assert np.isnan(out[0]).all(), method
        assert np.isfinite(out[1:]).all(), method


def test_bootstrap_rank_kernel_equals_weighted_spearman_in_both_orders(rng):
    from facebrain.rsa._bootstrap import prepare, rank_corr_boot

    v1, v2 = _vectors(rng)  # v1[1] and v2[0] have ties
    W = rng.integers(0, 4, size=(5, v1.shape[1])).astype(float)
    for kind in ("spearman", "rho-a"):
        a = rank_corr_boot(prepare(v1, v2, kind), W, kind)
        b = rank_corr_boot(prepare(v2, v1, kind), W, kind)
        np.testing.assert_allclose(a, b.transpose(0, 2, 1), rtol=0, atol=TOL)
        for t in range(5):
            np.testing.assert_allclose(a[t], COMPARISONS[kind](v1, v2, W[t]), rtol=0, atol=TOL)
