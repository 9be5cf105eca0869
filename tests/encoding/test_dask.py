"""Dask runs equal local runs (one LocalCluster, 2 workers, for RSA and encoding)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from facebrain.encoding import evaluate, variance_partition
from facebrain.rsa import compare

from .test_evaluate import ALPHAS, make

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as c:
            yield c


def test_rsa_bootstrap_on_dask_equals_local(client, rng):
    acts, brain = make(rng)
    for method in ("tau-a", "spearman", "corr_cov"):
        kw = {"method": method, "n_bootstrap": 12, "over": "both", "seed": 5, "chunk_size": 4}
        local, remote = compare(acts, brain, **kw), compare(acts, brain, client=client, **kw)
        if method == "corr_cov":  # BLAS sums in another order with 1 thread per worker
            # (1 ulp with numpy 1.25's OpenBLAS; bitwise with numpy 2.x)
            xr.testing.assert_allclose(local, remote, rtol=1e-13, atol=1e-15)
            assert local.attrs == remote.attrs
        else:
            xr.testing.assert_identical(local, remote)


def test_encoding_on_dask_equals_local(client, rng):
    acts, brain = make(rng)
    kw = {"n_folds": 4, "alphas": ALPHAS, "inner_cv": 3, "batch_size": 7}
    xr.testing.assert_identical(evaluate(acts, brain, **kw),
                                evaluate(acts, brain, client=client, **kw))
    sets = {"A": (acts, "A"), "B": (acts, "B")}
    kw = {"n_folds": 4, "alphas": ALPHAS, "inner_cv": 3}
    xr.testing.assert_identical(variance_partition(sets, brain, **kw),
                                variance_partition(sets, brain, client=client, **kw))
    assert np.isfinite(evaluate(acts, brain, client=client, **kw)["r2"]).all()
