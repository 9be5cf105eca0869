"""Synthetic data shared by the benchmarks (``benchmarks/`` is on sys.path when run)."""

from __future__ import annotations

import numpy as np


def realistic(rng, n, p, n_vox):
    """Activation-like features (decaying spectrum) and voxels from silent to high SNR."""
    k = min(n, p, 200)
    Z = rng.normal(size=(n, k)) * np.logspace(0, -2, k)
    X = Z @ rng.normal(size=(k, p)) + 0.05 * rng.normal(size=(n, p))
    Y = np.empty((n, n_vox))
    for a in range(0, n_vox, 2000):
        b = min(a + 2000, n_vox)
        W = rng.normal(size=(p, b - a)) * (rng.random((1, b - a)) < 0.8)
        s = X @ W
        s /= s.std(0) + 1e-12
        Y[:, a:b] = s * np.logspace(-1.5, 1, b - a) + rng.normal(size=(n, b - a)) + 2.0
    return X, Y
