"""RSA bootstrap speed: facebrain.rsa.compare vs the same computation written with rsatoolbox.

Profile (issue 13, goal 2): 100 stimuli, 6 layers x 4 ROIs x 10 subjects (40 ROI-subject
RDMs), 1,000 stimulus bootstraps, methods spearman and tau-a. The rsatoolbox baseline
draws the same bootstrap samples (facebrain's ``draw_sample``) and runs
``RDMs.subsample_pattern`` + ``rsatoolbox.rdm.compare`` per sample, in this process.
It is slow, so ``--baseline-boot`` (default 50) sets how many samples it runs; its time
is extrapolated linearly to the full count and the script says so. Both wall-clock and
CPU (``time.process_time``) ratios are printed: on a shared machine the CPU ratio is the
steadier one. Scores of the samples both ran must agree to 1e-10 (and be NaN at the
same places), point estimates likewise; otherwise DISAGREE and exit status 1.

Cold vs warm: facebrain's kernels are numba-compiled with ``cache=True``. In a fresh
subprocess with an empty ``NUMBA_CACHE_DIR`` the script times the import and a first
tiny bootstrap (compilation included: cold), then the same again with the cache filled
(warm). The timed runs below are warm; a first-ever run adds the cold compile once.

    python benchmarks/bench_rsa.py [--n-boot 1000] [--baseline-boot 50] [--threads 1]
        [--quick] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--n-stimuli", type=int, default=100)
ap.add_argument("--n-boot", type=int, default=1000)
ap.add_argument("--baseline-boot", type=int, default=50)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--methods", default="spearman,tau-a")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--quick", action="store_true", help="200 bootstraps, 10 baseline samples")
args = ap.parse_args()
if args.quick:
    args.n_boot, args.baseline_boot = 200, 10
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import time

import numpy as np

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
sys.path.insert(0, SRC)

_FIRST_CALL = """
import time; t0 = time.perf_counter()
import numpy as np
from facebrain.rsa._bootstrap import bootstrap_chunk
t1 = time.perf_counter()
rng = np.random.default_rng(0); v = rng.normal(size=(3, 45))
for m in ("spearman", "tau-a"):
    bootstrap_chunk(v[:1], v[1:], 10, np.ones(45, bool), m, 0, range(2), "stimuli", 1)
print(t1 - t0, time.perf_counter() - t1)
"""


def first_call(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=SRC)
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True,
                         text=True, check=True)
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def main():
    import xarray as xr
    from rsatoolbox.rdm import compare as rsa_compare

    from facebrain.rsa import compare, rdm
    from facebrain.rsa._bootstrap import draw_sample

    with tempfile.TemporaryDirectory() as d:
        cold = first_call(d)
        warm = first_call(d)
    rng = np.random.default_rng(args.seed)
    n = args.n_stimuli
    ids = [f"s{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 20))
    acts = xr.Dataset(
        {f"layer{j}": (("stimulus", f"layer{j}_unit"),
                       latent @ rng.normal(size=(20, 64)) + (j + 1) * rng.normal(size=(n, 64)))
         for j in range(6)},
        coords={"stimulus": ids},
    )
    rois, subjects, n_vox = ["EVC", "OFA", "FFA", "pSTS"], [f"{s:02d}" for s in range(10)], 30
    roi, sub, vox = [], [], []
    for r in rois:
        for s in subjects:
            roi += [r] * n_vox
            sub += [s] * n_vox
            vox += [f"{s}|{r}|{i}" for i in range(n_vox)]
    brain = xr.DataArray(
        latent @ rng.normal(size=(20, len(vox))) + 3 * rng.normal(size=(n, len(vox))),
        dims=("stimulus", "voxel"),
        coords={"stimulus": ids, "voxel": vox, "roi": ("voxel", roi), "subject": ("voxel", sub)},
    )
    mr, br = rdm(acts), rdm(brain)
    print(f"profile: {n} stimuli, {mr.n_rdm} layers x {len(rois)} ROIs x {len(subjects)} "
          f"subjects, {args.n_boot} stimulus bootstraps, seed {args.seed}; {args.threads} BLAS "
          f"thread(s); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores | fresh process:"
          f" import facebrain.rsa {cold[0]:.2f} s; first tiny bootstrap (spearman + tau-a) "
          f"{cold[1]:.2f} s cold (numba compiles), {warm[1]:.2f} s warm (on-disk cache)")
    for method in args.methods.split(","):  # load (or compile) the kernels before timing
        compare(mr, br, method=method, n_bootstrap=2, ceiling=False)
    all_ok = True
    for method in args.methods.split(","):
        t0, c0 = time.perf_counter(), time.process_time()
        res = compare(mr, br, method=method, n_bootstrap=args.n_boot, over="stimuli",
                      ceiling=False, seed=args.seed)
        t_fb, c_fb = time.perf_counter() - t0, time.process_time() - c0
        nb = min(args.baseline_boot, args.n_boot)
        t0, c0 = time.perf_counter(), time.process_time()
        base = np.empty((nb, mr.n_rdm, br.n_rdm))
        for b in range(nb):
            idx, _ = draw_sample(args.seed, b, n, len(subjects), "stimuli")
            base[b] = rsa_compare(mr.subsample_pattern("index", idx),
                                  br.subsample_pattern("index", idx), method=method)
        t_base, c_base = time.perf_counter() - t0, time.process_time() - c0
        scale = args.n_boot / nb
        boot_fb = res["bootstrap_score"].values[:nb]
        boot_base = base.reshape(nb, mr.n_rdm, len(rois), len(subjects)).mean(-1)
        point_fb = res["score"].values.reshape(mr.n_rdm, -1)
        point_base = rsa_compare(mr, br, method=method)
        same_nan = (np.array_equal(np.isnan(boot_fb), np.isnan(boot_base))
                    and np.array_equal(np.isnan(point_fb), np.isnan(point_base)))
        err_boot = np.nanmax(np.abs(boot_fb - boot_base))
        point_err = np.nanmax(np.abs(point_fb - point_base))
        ok = same_nan and err_boot < 1e-10 and point_err < 1e-10
        all_ok &= ok
        extra = "" if nb == args.n_boot else (
            f" (rsatoolbox ran {nb} of {args.n_boot} samples in {t_base:.1f} s; "
            "extrapolated linearly)")
        print(f"[{method}] facebrain {t_fb:.2f} s wall, {c_fb:.2f} s CPU | rsatoolbox "
              f"{t_base * scale:.1f} s wall, {c_base * scale:.1f} s CPU{extra} | ratio "
              f"{t_base * scale / t_fb:.1f}x wall, {c_base * scale / c_fb:.1f}x CPU (goal >= "
              f"20x) | max |diff| bootstrap {err_boot:.1e}, point {point_err:.1e}, NaN at the "
              f"same places: {same_nan} -> {'AGREE' if ok else 'DISAGREE'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
