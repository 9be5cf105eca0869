"""Voxelwise ridge speed: facebrain RidgeEncoder vs himalaya KernelRidgeCV, same process.

Profile (issue 13, goal 1): 1,000 stimuli x 2,048 features x 10,000 voxels, 19 alphas
(np.logspace(-2, 7, 19)), 5 folds (KFold(5), no shuffling, the same splitter object for
facebrain and himalaya), alpha per voxel, intercept fitted on both sides.

* facebrain ``RidgeEncoder(alphas, cv=KFold(5), score_dtype=...)``: dual (kernel) form since
  p > n, one eigendecomposition per fold reused by every voxel block and alpha; the claim
  is ``score_dtype="float32"`` (the CV prediction GEMM in float32 on per-voxel power-of-two
  rescaled targets, residuals summed in float64, refit in float64); float64 is timed too.
* himalaya ``KernelRidgeCV(alphas, cv=KFold(5), fit_intercept=True)``, numpy backend, on the
  same float64 data (its default score: negative mean squared error per fold, as ours).

Agreement: alphas equal (np.isclose) on >= 99% of voxels for both facebrain runs, and the
float32 run on ``Y * 1e-5`` picks the same alphas as on ``Y`` (>= 99.9%); predictions agree
to 1e-6 relative. Any failure prints DISAGREE and exits 1. ``--seed`` draws other data.
Cold vs warm: the residual-sum kernel is numba-compiled with ``cache=True``; in a fresh
subprocess with an empty ``NUMBA_CACHE_DIR`` the script times the import and a first tiny
fit (compile included: cold), then again with the cache filled (warm). Timed fits are warm.

    python benchmarks/bench_encoding.py [--n 1000 --p 2048 --v 10000] [--quick] [--threads 1]
        [--seed 0] [--no-scale-check]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--p", type=int, default=2048)
ap.add_argument("--v", type=int, default=10000)
ap.add_argument("--quick", action="store_true", help="400 x 1024 x 2000 instead")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--no-scale-check", action="store_true")
args = ap.parse_args()
if args.quick:
    args.n, args.p, args.v = 400, 1024, 2000
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import time
import warnings

import numpy as np
from sklearn.model_selection import KFold

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from facebrain.encoding import RidgeEncoder
from facebrain.encoding._solvers import clear_cache
from facebrain.errors import AlphaGridWarning


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


_FIRST_FIT = """
import time, warnings; t0 = time.perf_counter()
import numpy as np
from facebrain.encoding import RidgeEncoder
t1 = time.perf_counter()
rng = np.random.default_rng(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    RidgeEncoder(cv=3, score_dtype="float32").fit(rng.normal(size=(12, 30)), rng.normal(size=(12, 2)))
print(t1 - t0, time.perf_counter() - t1)
"""


def first_fit(cache_dir):
    """(import s, first tiny fit s) in a fresh process with ``NUMBA_CACHE_DIR=cache_dir``."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=src)
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT], env=env, capture_output=True,
                         text=True, check=True)
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def fit(alphas, cv, X, Y, dtype):
    clear_cache()  # every timed fit factorises its folds itself
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlphaGridWarning)
        t0, c0 = time.perf_counter(), time.process_time()
        est = RidgeEncoder(alphas, cv=cv, score_dtype=dtype).fit(X, Y)
        return est, (time.perf_counter() - t0, time.process_time() - c0)


def main():
    rng = np.random.default_rng(args.seed)
    alphas = np.logspace(-2, 7, 19)
    cv = KFold(5)
    with tempfile.TemporaryDirectory() as d:
        cold, warm = first_fit(d), first_fit(d)
    fit(alphas, cv, *realistic(np.random.default_rng(99), 30, 40, 3), "float32")  # load kernel
    X, Y = realistic(rng, args.n, args.p, args.v)
    print(f"profile: {args.n} stimuli x {args.p} features x {args.v} voxels, 19 alphas, 5 folds,"
          f" seed {args.seed}; {args.threads} BLAS thread(s); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores | fresh process: import facebrain.encoding {cold[0]:.2f} s; "
          f"first tiny fit {cold[1]:.2f} s cold (numba compiles), {warm[1]:.2f} s warm (on-disk "
          "cache)")
    ours32, t_32 = fit(alphas, cv, X, Y, "float32")
    ours64, t_64 = fit(alphas, cv, X, Y, "float64")
    same = np.mean(ours32.best_alphas_ == ours64.best_alphas_)
    dscore = np.max(np.abs(ours32.cv_scores_ - ours64.cv_scores_) / np.abs(ours64.cv_scores_))
    print(f"facebrain RidgeEncoder ({ours32.solver_}): float32 scoring {t_32[0]:.1f} s wall "
          f"({t_32[1]:.1f} s CPU), float64 {t_64[0]:.1f} s ({t_64[1]:.1f} s CPU) | float32 vs "
          f"float64: alphas equal on {100 * same:.2f}% of voxels, max relative CV-score error "
          f"{dscore:.1e}")
    ok = True
    if not args.no_scale_check:
        small, _ = fit(alphas, cv, X, Y * 1e-5, "float32")
        sc = np.mean(small.best_alphas_ == ours32.best_alphas_)
        ok &= sc >= 0.999
        print(f"scale check: Y * 1e-5 picks the same alphas on {100 * sc:.2f}% of voxels "
              "(float32 scoring)")
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("numpy")
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        him = KernelRidgeCV(alphas=alphas, cv=cv, fit_intercept=True).fit(X, Y)
    t_h, c_h = time.perf_counter() - t0, time.process_time() - c0
    agree32 = np.mean(np.isclose(ours32.best_alphas_, him.best_alphas_))
    agree64 = np.mean(np.isclose(ours64.best_alphas_, him.best_alphas_))
    ph = him.predict(X[:50])
    dpred = max(np.abs(o.predict(X[:50]) - ph).max() for o in (ours32, ours64)) / np.abs(ph).max()
    ok &= agree32 >= 0.99 and agree64 >= 0.99 and dpred < 1e-6
    print(f"himalaya KernelRidgeCV (numpy, float64): {t_h:.1f} s wall ({c_h:.1f} s CPU) | ratio "
          f"{t_h / t_32[0]:.1f}x wall / {c_h / t_32[1]:.1f}x CPU float32 scoring, "
          f"{t_h / t_64[0]:.1f}x / {c_h / t_64[1]:.1f}x float64 (goal >= 5x) | alphas equal to himalaya "
          f"on {100 * agree32:.2f}% (float32) and {100 * agree64:.2f}% (float64) of voxels "
          f"(need >= 99%) | max relative prediction difference {dpred:.1e} -> "
          f"{'AGREE' if ok else 'DISAGREE'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
