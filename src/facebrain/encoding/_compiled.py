"""numba kernel of the ridge scoring (imported on first use so that ``import
facebrain.encoding`` does not pay for numba)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["sse_kernel"]


@numba.njit(cache=True, nogil=True)
def sse_kernel(P, Yt, n_alphas, out):  # pragma: no cover - compiled
    """``out[a, v] += sum_j (Yt[j, v] - P[a * n_test + j, v])^2``, accumulated in float64."""
    n_test = Yt.shape[0]
    nv = Yt.shape[1]
    for a in range(n_alphas):
        for j in range(n_test):
            row = a * n_test + j
            for v in range(nv):
                d = Yt[j, v] - np.float64(P[row, v])
                out[a, v] += d * d
