"""Voxelwise ridge speed: facebrain RidgeEncoder vs himalaya KernelRidgeCV, same process.

Profile (issue 13, goal 1): 1,000 stimuli x 2,048 features x 10,000 voxels, 19 alphas
(np.logspace(-2, 7, 19)), 5 folds (KFold(--folds), no shuffling, the same splitter object for
facebrain and himalaya), alpha per voxel, intercept fitted on both sides.

* facebrain ``RidgeEncoder(alphas, cv=KFold(5), score_dtype=...)``: dual (kernel) form since
  p > n, one eigendecomposition per fold reused by every voxel block and alpha; CV scores
  by partial fractions (``encoding/_pf.py``), on per-voxel power-of-two rescaled targets;
  ``score_dtype="float32"`` runs ``U.T Yc`` and the off-diagonal blocks of ``H B`` in
  float32 (every other step, and the refit, float64); float64 is timed too.
* himalaya ``KernelRidgeCV(alphas, cv=KFold(5), fit_intercept=True)``, numpy backend, on the
  same float64 data (its default score: negative mean squared error per fold, as ours).

Timing: best of ``--repeats`` (default 3) fits per method, wall and CPU (``process_time``),
with the spread (slowest / fastest - 1) and the load average before and after; the ratio
is himalaya's best over ours. Both sides receive the same float64 arrays (himalaya then
computes in float64, as it would for a user passing float64; we state which dtype each
ran with); ``--himalaya-float32`` also times himalaya given float32 copies (it then
computes in float32) and prints that ratio beside. A flop count is printed: himalaya's
CV prediction GEMM (per fold, every alpha's (n_test x n_train) smoother times the
training targets) against our alpha-independent GEMMs by partial fractions (about half;
the count of scores recomputed by the direct GEMM is printed); the refit is one n x n
GEMM here (dual weights kept as ``U``, ``B``) against one per distinct
chosen alpha in himalaya.

A floor line counts every GEMM of our float32-scoring path (the rounding bound's and the
per-alpha sums' included; ``floor_seconds``) at this machine's sgemm/dgemm rates, adds the
eigendecompositions, and says how long that arithmetic alone takes and what ratio to
himalaya it would reach with no other cost (a goal beyond it needs less arithmetic, not
faster code).

Agreement: alphas equal (np.isclose) to himalaya's on >= 99% of voxels for both facebrain
runs; the chosen alpha's CV score within 1e-5 relative of himalaya's (float32 scoring) or
1e-7 (float64); predictions within 1e-6 of max |prediction|; the float32 run on
``Y * 1e-5`` picks the same alphas as on ``Y`` (>= 99.9%). Any failure prints DISAGREE and
exits 1; ``FACEBRAIN_BENCH_PERTURB=0.1`` (benchmarks/_perturb.py) shifts our alphas and
predictions and must make it fail. ``--seed`` draws other data.
Cold vs warm: the residual-sum kernel is numba-compiled with ``cache=True``; in a fresh
subprocess with an empty ``NUMBA_CACHE_DIR`` the script times the import and a first tiny
fit (compile included: cold), then again with the cache filled (warm). Timed fits are warm.

    python benchmarks/bench_encoding.py [--n 1000 --p 2048 --v 10000] [--folds 5] [--quick]
        [--threads 1] [--seed 0] [--repeats 3] [--no-scale-check]

Held-out check: ``--n 800 --p 1536 --v 6000 --folds 4 --seed 7``.
Allocator: the script sets glibc's malloc as the ``facebrain`` command does (freed memory
kept, not unmapped and faulted in again) for both sides; ``--default-malloc`` leaves it.
On a VM with costly page faults himalaya took 33.6 s with the default and 17.1 s without.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from _timing import allocator  # benchmarks/ is on sys.path when run as a script
from _timing import best_of as _best_time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--p", type=int, default=2048)
ap.add_argument("--v", type=int, default=10000)
ap.add_argument("--quick", action="store_true", help="400 x 1024 x 2000 instead")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--folds", type=int, default=5)
ap.add_argument("--repeats", type=int, default=3, help="best of N timed fits per method")
ap.add_argument("--no-scale-check", action="store_true")
ap.add_argument("--himalaya-float32", action="store_true",
                help="also time himalaya on float32 copies of X and Y")
ap.add_argument("--default-malloc", action="store_true",
                help="leave glibc's malloc as it is (freed big blocks unmapped, faulted in again)")
args = ap.parse_args()
MALLOC = allocator(args.default_malloc)  # before the data are allocated
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
from facebrain.encoding._pf import STATS as PF_STATS
from facebrain.encoding._solvers import clear_cache
from facebrain.errors import AlphaGridWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import realistic  # benchmarks/ is on sys.path when run as a script
from _perturb import perturb

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
        return RidgeEncoder(alphas, cv=cv, score_dtype=dtype).fit(X, Y)


def fit_himalaya(alphas, cv, X, Y):
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KernelRidgeCV(alphas=alphas, cv=cv, fit_intercept=True).fit(X, Y)


def best_of(fn, repeats):
    """(best wall s, best CPU s, wall spread, last result) over ``repeats`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), max(walls) / min(walls) - 1.0, out


def gflop(n, n_train, n_test, n_folds, n_alphas, n_vox, n_refit_alphas):
    """GEMM work in GFLOP: (CV predictions, our refit, himalaya's refit, our float64 CV
    scoring by partial fractions: U.T Yc, A.T Yt, H B and the per-alpha combination)."""
    cv = n_folds * 2.0 * n_alphas * n_test * n_train * n_vox
    pf = n_folds * 2.0 * n_train * (2 * n_train + n_test + 6 * n_alphas) * n_vox
    return (cv / 1e9, 2.0 * n * n * n_vox / 1e9, n_refit_alphas * 2.0 * n * n * n_vox / 1e9,
            pf / 1e9)


def floor_seconds(n, n_train, n_test, n_folds, n_vox, p, n_alphas):
    """Seconds our float32-scoring fit needs for its arithmetic alone, at this machine's rates.

    Every GEMM of the path, per fold (``r`` = the fold's rank, ``n_train`` in the dual form):
    in float32 ``U.T Yc`` and ``H B`` (the whole ``r x r`` matrix: its diagonal blocks are
    zeros there) and the two GEMMs of the rounding bound (``4 n_alphas r`` rows); in float64
    ``A.T Yt``, ``H``'s diagonal blocks (``_pf.SPLIT_BLOCK``/``SPLIT_MIN``) and the per-alpha
    combination (``3 r`` terms); once, the kernel ``X X.T`` and the refit's ``U.T Y`` in
    float64. Each at the sgemm/dgemm rate measured here on a large square shape with the
    same threads (the skinny per-alpha GEMMs run slower than that, so this is a lower
    bound), plus the eigendecompositions (``eigh`` of each fold's and of the full kernel,
    timed). Element-wise work (centring, the residual terms, copies) is not counted.
    Returns (floor, sgemm GFLOP/s, dgemm GFLOP/s, eigh seconds, GFLOP float32, GFLOP float64).
    """
    from facebrain.encoding._pf import SPLIT_BLOCK, SPLIT_MIN

    rng = np.random.default_rng(0)
    rate = {}
    for dt in (np.float32, np.float64):
        a = rng.standard_normal((n_train, n_train)).astype(dt)
        b = rng.standard_normal((n_train, 4096)).astype(dt)
        a @ b
        t = _best_time(lambda a=a, b=b: a @ b, 3)[0]
        rate[dt] = 2.0 * n_train * n_train * 4096 / t / 1e9
    t_eigh = 0.0
    for m, k in ((n_train, n_folds), (n, 1)):
        z = rng.standard_normal((m, m))
        t_eigh += k * _best_time(lambda z=z: np.linalg.eigh(z @ z.T), 2)[0]
    r = min(n_train, p)
    bs = min(r, max(SPLIT_MIN, int(np.ceil(SPLIT_BLOCK * r))))
    g32 = n_folds * 2.0 * n_vox * (r * n_train + r * r + 4 * n_alphas * r)
    g64 = (n_folds * 2.0 * n_vox * (r * n_test + r * bs + 3 * n_alphas * r)
           + 2.0 * n * n * n_vox + 2.0 * n * n * p)
    floor = g32 / rate[np.float32] / 1e9 + g64 / rate[np.float64] / 1e9 + t_eigh
    return floor, rate[np.float32], rate[np.float64], t_eigh, g32 / 1e9, g64 / 1e9


def main():
    rng = np.random.default_rng(args.seed)
    alphas = np.logspace(-2, 7, 19)
    cv = KFold(args.folds)
    with tempfile.TemporaryDirectory() as d:
        cold, warm = first_fit(d), first_fit(d)
    fit(alphas, cv, *realistic(np.random.default_rng(99), 30, 40, 3), "float32")  # load kernel
    X, Y = realistic(rng, args.n, args.p, args.v)
    load0 = os.getloadavg()[0]
    print(f"profile: {args.n} stimuli x {args.p} features x {args.v} voxels, 19 alphas, "
          f"{args.folds} folds, seed {args.seed}; {args.threads} BLAS thread(s); best of "
          f"{args.repeats}; load average {load0:.1f} on {os.cpu_count()} cores | fresh process: "
          f"import facebrain.encoding {cold[0]:.2f} s; first tiny fit {cold[1]:.2f} s cold "
          f"(numba compiles), {warm[1]:.2f} s warm (on-disk cache); {MALLOC}")
    pf0 = dict(PF_STATS)
    w32, c32, sp32, ours32 = best_of(lambda: fit(alphas, cv, X, Y, "float32"), args.repeats)
    pf1 = dict(PF_STATS)
    w64, c64, sp64, ours64 = best_of(lambda: fit(alphas, cv, X, Y, "float64"), args.repeats)
    pf32 = {k: pf1[k] - pf0[k] for k in pf0}
    pf = {k: PF_STATS[k] - pf1[k] for k in pf0}
    same = np.mean(ours32.best_alphas_ == ours64.best_alphas_)
    dscore = np.max(np.abs(ours32.cv_scores_ - ours64.cv_scores_) / np.abs(ours64.cv_scores_))
    print(f"facebrain RidgeEncoder ({ours32.solver_}, float64 data and refit): "
          f'score_dtype="float32" {w32:.2f} s wall ({c32:.2f} s CPU, spread {100 * sp32:.0f}%),'
          f' "float64" {w64:.2f} s ({c64:.2f} s CPU, spread {100 * sp64:.0f}%) | float32 vs '
          f"float64 scoring: alphas equal on {100 * same:.2f}% of voxels, max relative CV-score "
          f"error {dscore:.1e}")
    ok = True
    if not args.no_scale_check:
        small = fit(alphas, cv, X, Y * 1e-5, "float32")
        sc = np.mean(small.best_alphas_ == ours32.best_alphas_)
        ok &= sc >= 0.999
        print(f"scale check: Y * 1e-5 picks the same alphas on {100 * sc:.2f}% of voxels "
              "(float32 scoring; need >= 99.9%)")
    wh, ch, sph, him = best_of(lambda: fit_himalaya(alphas, cv, X, Y), args.repeats)
    if args.himalaya_float32:
        X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
        wh32, ch32, sph32, him32 = best_of(lambda: fit_himalaya(alphas, cv, X32, Y32),
                                           args.repeats)
    load1 = os.getloadavg()[0]
    ha = np.asarray(him.best_alphas_)
    agree = [np.mean(np.isclose(perturb(o.best_alphas_), ha)) for o in (ours32, ours64)]
    ph = him.predict(X[:50])
    dpred = max(np.abs(perturb(o.predict(X[:50])) - ph).max() for o in (ours32, ours64))
    dpred /= np.abs(ph).max()
    # CV score of the chosen alpha, against himalaya's (same folds, same neg-MSE)
    hs = np.asarray(him.cv_scores_).reshape(-1)
    dcv = [np.max(np.abs(o.cv_scores_.max(0) - hs) / np.abs(hs)) for o in (ours32, ours64)]
    ok &= min(agree) >= 0.99 and dpred < 1e-6 and dcv[0] < 1e-5 and dcv[1] < 1e-7
    n_test = args.n // args.folds
    g_cv, g_ref, g_href, g_pf = gflop(args.n, args.n - n_test, n_test, args.folds, alphas.size, args.v,
                                np.unique(ha).size)
    print(f"himalaya KernelRidgeCV (numpy backend, float64 data: every GEMM float64): {wh:.2f} s "
          f"wall ({ch:.2f} s CPU, spread {100 * sph:.0f}%); load average {load1:.1f} at the end")
    print(f"RATIO himalaya / facebrain: {wh / w32:.2f}x wall, {ch / c32:.2f}x CPU with "
          f'score_dtype="float32"; {wh / w64:.2f}x wall, {ch / c64:.2f}x CPU with "float64" '
          f"(goal >= 5x)")
    if args.himalaya_float32:
        a32 = np.mean(np.isclose(np.asarray(him32.best_alphas_), ha))
        print(f"himalaya given float32 X, Y (computes in float32): {wh32:.2f} s wall ({ch32:.2f}"
              f" s CPU, spread {100 * sph32:.0f}%), alphas equal to its float64 run on "
              f'{100 * a32:.2f}% of voxels | RATIO himalaya-float32 / facebrain "float32": '
              f"{wh32 / w32:.2f}x wall, {ch32 / c32:.2f}x CPU")
    print(f"flop count: CV predictions {g_cv:.0f} GFLOP float64 in himalaya (one GEMM per fold "
          f"over all alphas); ours {g_pf:.0f} GFLOP by partial fractions (float32 scoring: "
          f"U.T Yc and H B off its diagonal blocks in float32), {pf32['direct_scores']} of "
          f"{pf32['pf_scores']} (float32) and {pf['direct_scores']} of {pf['pf_scores']} "
          f"(float64) scores recomputed by the float64 direct GEMM, {pf32['declined']} / "
          f"{pf['declined']} fold fits declined; refit {g_ref:.0f} GFLOP float64"
          f" (ours: U.T Y, dual weights formed on demand) vs {g_href:.0f} GFLOP (himalaya: one "
          f"n x n GEMM per distinct chosen alpha, {np.unique(ha).size} here)")
    floor, r32, r64, t_eigh, f32, f64 = floor_seconds(args.n, args.n - n_test, n_test, args.folds,
                                                      args.v, args.p, alphas.size)
    print(f"floor: our float32-scoring path's GEMMs ({f32:.0f} GFLOP float32, {f64:.0f} float64)"
          f" at this machine's rates (sgemm {r32:.0f}, "
          f"dgemm {r64:.0f} GFLOP/s, {args.threads} thread(s)) plus its eigendecompositions "
          f"({t_eigh:.2f} s) take {floor:.2f} s; ours ran {w32:.2f} s ({floor / w32:.0%} of it "
          f"arithmetic); 5x himalaya needs <= {wh / 5:.2f} s, and the floor is "
          f"{'below' if floor <= wh / 5 else 'ABOVE'} that (ratio at the floor: "
          f"{wh / floor:.2f}x)")
    print(f"agreement: alphas equal to himalaya on {100 * agree[0]:.2f}% (float32 scoring) and "
          f"{100 * agree[1]:.2f}% (float64) of voxels (need >= 99%) | chosen-alpha CV score max "
          f"relative difference {dcv[0]:.1e} (float32, need < 1e-5) / {dcv[1]:.1e} (float64, "
          f"need < 1e-7) | max relative prediction difference {dpred:.1e} (need < 1e-6) -> "
          f"{'AGREE' if ok else 'DISAGREE'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
