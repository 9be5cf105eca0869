"""Compiled and torch bootstrap kernels against brute-force counts and rsatoolbox (1e-10)."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsa_compare

from facebrain.rsa._bootstrap import RANK_BOOT, bootstrap_chunk, draw_sample, prepare
from facebrain.rsa._compiled import kendall_boot_counts
from facebrain.rsa._kernels import dense_ranks

TOL = 1e-10


def _rdms(rng, n):
    p = n * (n - 1) // 2
    m = rng.normal(size=(3, p))
    b = rng.normal(size=(5, p)) + 0.5 * m[[0, 1, 2, 0, 1]]
    m[1] = np.round(m[1])  # many ties
    b[0] = (rng.random(p) > 0.6).astype(float)  # a binary (label-like) RDM
    b[2] = np.round(2 * b[2]) / 2
    return m, b


def test_kendall_counts_equal_brute_force_on_expanded_vectors(rng):
    m, b = _rdms(rng, 9)
    xr, yr = dense_ranks(m).astype(np.int64), dense_ranks(b).astype(np.int64)
    W = rng.integers(0, 4, size=(m.shape[1], 6))
    orders = np.array([[np.lexsort((y, x)) for y in yr] for x in xr])
    dis, joint = kendall_boot_counts(xr, yr, orders, W)
    for i in range(3):
        for j in range(5):
            for t in range(6):
                e = np.repeat(np.arange(m.shape[1]), W[:, t])
                x, y = xr[i, e], yr[j, e]
                dx = np.sign(x[:, None] - x[None])
                dy = np.sign(y[:, None] - y[None])
                iu = np.triu_indices(e.size, 1)
                assert dis[i, j, t] == np.sum((dx * dy)[iu] < 0)
                assert joint[i, j, t] == np.sum(((dx == 0) & (dy == 0))[iu])


@pytest.mark.parametrize("method", list(RANK_BOOT))
@pytest.mark.parametrize("device", [None, "cpu"])
def test_rank_bootstrap_equals_rsatoolbox_subsample(rng, method, device):
    """numba (device=None) and torch (device="cpu") paths against rsatoolbox, with ties."""
    n = 13
    m, b = _rdms(rng, n)
    valid = np.ones(m.shape[1], bool)
    ours, _ = bootstrap_chunk(m, b, n, valid, method, 5, range(7), "stimuli", 1,
                              prepare(m, b, method), device)
    for t in range(7):
        idx, _ = draw_sample(5, t, n, 1, "stimuli")
        ref = rsa_compare(RDMs(m).subsample_pattern("index", idx),
                          RDMs(b).subsample_pattern("index", idx), method=method)
        np.testing.assert_allclose(ours[t], ref, rtol=0, atol=TOL, err_msg=f"{method} {t}")


def test_constant_rdm_in_a_sample_is_nan_on_both_paths(rng):
    n = 10
    m, b = _rdms(rng, n)
    b[1] = 1.0  # constant RDM: undefined rank correlation
    valid = np.ones(m.shape[1], bool)
    for method in ("spearman", "tau-a", "tau-b"):
        a, _ = bootstrap_chunk(m, b, n, valid, method, 0, range(3), "stimuli", 1)
        c, _ = bootstrap_chunk(m, b, n, valid, method, 0, range(3), "stimuli", 1, device="cpu")
        assert np.isnan(a[:, :, 1]).all() and np.isnan(c[:, :, 1]).all(), method
        assert np.isfinite(a[:, :, 0]).all(), method
        np.testing.assert_allclose(a, c, rtol=0, atol=TOL)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["spearman", "tau-a"])
def test_compare_on_cuda_equals_cpu(method):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda is not available")
    import xarray as xr

    from facebrain.rsa import compare

    rng = np.random.default_rng(3)
    ids = [f"s{i}" for i in range(30)]
    x = rng.normal(size=(30, 8))
    acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x)}, coords={"stimulus": ids})
    brain = xr.DataArray(x @ rng.normal(size=(8, 6)) + rng.normal(size=(30, 6)),
                         dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "roi": ("voxel", ["FFA"] * 6),
                                 "subject": ("voxel", ["01", "01", "01", "02", "02", "02"])})
    cpu = compare(acts, brain, method=method, n_bootstrap=50, ceiling=False)
    gpu = compare(acts, brain, method=method, n_bootstrap=50, ceiling=False, device="cuda")
    np.testing.assert_allclose(gpu["bootstrap_score"].values, cpu["bootstrap_score"].values,
                               rtol=0, atol=1e-6)
