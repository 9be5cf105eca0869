"""RSA bootstrap speed: facebrain.rsa.compare vs the same computation written with rsatoolbox.

Profile (issue 6, section 4): 100 stimuli, 6 layers x 4 ROIs x 10 subjects, 1,000
stimulus bootstraps, methods spearman and tau-a. The rsatoolbox baseline draws the
same bootstrap samples (facebrain's ``draw_sample``) and runs
``RDMs.subsample_pattern`` + ``rsatoolbox.rdm.compare`` per sample, in this process.
It is slow, so ``--baseline-boot`` (default 50) sets how many samples it runs; its
time is extrapolated linearly to the full count and the script says so. Scores of
the samples both ran must agree to 1e-10; point estimates likewise.

    python benchmarks/bench_rsa.py [--n-boot 1000] [--baseline-boot 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--n-stimuli", type=int, default=100)
ap.add_argument("--n-boot", type=int, default=1000)
ap.add_argument("--baseline-boot", type=int, default=50)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--methods", default="spearman,tau-a")
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))


def main():
    import xarray as xr
    from rsatoolbox.rdm import compare as rsa_compare

    from facebrain.rsa import compare, rdm
    from facebrain.rsa._bootstrap import draw_sample

    rng = np.random.default_rng(0)
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
          f"subjects, {args.n_boot} stimulus bootstraps; {args.threads} BLAS thread(s); "
          "machine shared with other jobs, timings are contended/noisy")
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        res = compare(mr, br, method=method, bootstrap=args.n_boot, over="stimuli",
                      noise_ceiling=False, seed=0)
        t_fb = time.perf_counter() - t0
        nb = min(args.baseline_boot, args.n_boot)
        t0 = time.perf_counter()
        base = np.empty((nb, mr.n_rdm, br.n_rdm))
        for b in range(nb):
            idx, _ = draw_sample(0, b, n, len(subjects), "stimuli")
            base[b] = rsa_compare(mr.subsample_pattern("index", idx),
                                  br.subsample_pattern("index", idx), method=method)
        t_base = time.perf_counter() - t0
        t_base_full = t_base * args.n_boot / nb
        boot_fb = res["bootstrap_score"].values[:nb]
        boot_base = base.reshape(nb, mr.n_rdm, len(rois), len(subjects)).mean(-1)
        err_boot = np.nanmax(np.abs(boot_fb - boot_base))
        point_err = np.nanmax(np.abs(res["score"].values.reshape(mr.n_rdm, -1)
                                     - rsa_compare(mr, br, method=method)))
        ok = err_boot < 1e-10 and point_err < 1e-10
        extra = "" if nb == args.n_boot else (
            f" (rsatoolbox ran {nb} of {args.n_boot} samples in {t_base:.1f} s; "
            "time extrapolated linearly)")
        print(f"[{method}] facebrain {t_fb:.2f} s | rsatoolbox {t_base_full:.1f} s{extra} | "
              f"ratio {t_base_full / t_fb:.1f}x (goal >= 20x) | max |diff| bootstrap "
              f"{err_boot:.1e}, point {point_err:.1e} -> {'AGREE' if ok else 'DISAGREE'}")


if __name__ == "__main__":
    main()
