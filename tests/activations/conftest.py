"""One BLAS / torch thread per test process: the machine is shared, and tiny fits
are 10-30x slower when threads contend."""

import pytest
import scipy.optimize  # noqa: F401  (load scipy's BLAS before the limit below)
import sklearn.linear_model  # noqa: F401
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)
