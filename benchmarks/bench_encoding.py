"""Voxelwise ridge speed: facebrain RidgeEncoder vs himalaya KernelRidgeCV and sklearn RidgeCV.

Profile (issue 6, section 4): 1,000 stimuli x 2,048 features x 10,000 voxels, 19 alphas
(np.logspace(-2, 7, 19)), 5 folds (KFold(5), no shuffling, the same splitter object for
facebrain and himalaya), alpha per voxel, intercept fitted. All three run in this process
on the same data:

* facebrain ``RidgeEncoder(alphas, cv=KFold(5))`` (dual form here, since p > n).
* himalaya ``KernelRidgeCV(alphas, cv=KFold(5), fit_intercept=True)`` with the numpy
  backend (its default score: negative mean squared error per fold, as ours).
* scikit-learn ``RidgeCV(alphas, alpha_per_target=True)``: note it scores alphas by
  efficient leave-one-out (generalised CV), not by 5 folds, so its alpha choices are
  not expected to match and its time is for a different (cheaper) CV scheme.

facebrain runs twice: float64 scoring (exact) and ``score_dtype="float32"`` (the inner-CV
prediction product in float32, squared errors assembled in float64, refit in float64).
Prints times, ratios, alpha agreement and the max difference of predictions.

    python benchmarks/bench_encoding.py [--n 1000 --p 2048 --v 10000] [--threads 1]
        [--skip-sklearn]
"""

from __future__ import annotations

import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--p", type=int, default=2048)
ap.add_argument("--v", type=int, default=10000)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--skip-sklearn", action="store_true")
ap.add_argument("--skip-himalaya", action="store_true")
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import time
import warnings

import numpy as np
from sklearn.model_selection import KFold

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from facebrain.encoding import RidgeEncoder


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


def main():
    rng = np.random.default_rng(0)
    X, Y = realistic(rng, args.n, args.p, args.v)
    alphas = np.logspace(-2, 7, 19)
    cv = KFold(5)
    print(f"profile: {args.n} stimuli x {args.p} features x {args.v} voxels, 19 alphas, 5 folds;"
          f" {args.threads} BLAS thread(s); machine shared with other jobs, timings contended")
    t0 = time.perf_counter()
    ours = RidgeEncoder(alphas, cv=cv).fit(X, Y)
    t_fb = time.perf_counter() - t0
    print(f"facebrain RidgeEncoder ({ours.solver_}, float64 scoring): {t_fb:.1f} s")
    t0 = time.perf_counter()
    ours32 = RidgeEncoder(alphas, cv=cv, score_dtype="float32").fit(X, Y)
    t_32 = time.perf_counter() - t0
    same = np.mean(ours32.best_alphas_ == ours.best_alphas_)
    print(f"facebrain RidgeEncoder (score_dtype='float32'; float64 refit): {t_32:.1f} s | "
          f"alphas equal to float64 scoring on {100 * same:.2f}% of voxels")
    pred = ours.predict(X[:50])
    if not args.skip_himalaya:
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import KernelRidgeCV

        set_backend("numpy")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            him = KernelRidgeCV(alphas=alphas, cv=cv, fit_intercept=True).fit(X, Y)
        t_h = time.perf_counter() - t0
        agree = np.mean(np.isclose(ours.best_alphas_, him.best_alphas_))
        agree32 = np.mean(np.isclose(ours32.best_alphas_, him.best_alphas_))
        dpred = np.abs(pred - him.predict(X[:50])).max() / np.abs(pred).max()
        print(f"himalaya KernelRidgeCV (numpy): {t_h:.1f} s | ratio {t_h / t_fb:.1f}x float64, "
              f"{t_h / t_32:.1f}x float32 scoring (goal >= 5x) | alpha agreement "
              f"{100 * agree:.2f}% (float64), {100 * agree32:.2f}% (float32) of voxels | max "
              f"relative prediction difference {dpred:.1e}")
    if not args.skip_sklearn:
        from sklearn.linear_model import RidgeCV

        t0 = time.perf_counter()
        sk = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
        t_s = time.perf_counter() - t0
        agree = np.mean(np.isclose(ours.best_alphas_, sk.alpha_))
        print(f"sklearn RidgeCV(alpha_per_target=True, efficient LOO, not 5-fold): {t_s:.1f} s |"
              f" ratio {t_s / t_fb:.1f}x | alpha agreement {100 * agree:.2f}% (different CV "
              "scheme, not expected to match)")


if __name__ == "__main__":
    main()
