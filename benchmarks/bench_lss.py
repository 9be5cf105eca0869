"""Vectorised LSS (facebrain) vs nilearn's per-trial FirstLevelModel loop.

60 trials x 9,600 voxels x 300 scans, one run, OLS, glover HRF, cosine drift.
Both run in this process on the same data; results must agree to 1e-5 relative
(max |difference| / max |reference beta|). Prints both times and the ratio.

    .venv/bin/python benchmarks/bench_lss.py [--trials 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "brain"))
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from _reference import nilearn_lss_loop

from facebrain.brain import single_trial_betas


def make_data(n_trials: int, shape=(20, 24, 20), n_scans=300, tr=2.0, seed=0):
    """AR(1) noise + slow sinusoids + trial-evoked bumps; not facebrain.simulate."""
    rng = np.random.default_rng(seed)
    n_vox = int(np.prod(shape))
    e = rng.standard_normal((n_scans, n_vox))
    y = np.empty_like(e)
    y[0] = e[0]
    for k in range(1, n_scans):
        y[k] = 0.4 * y[k - 1] + e[k]
    t = np.arange(n_scans) * tr
    y += np.sin(2 * np.pi * rng.uniform(0.002, 0.02, n_vox) * t[:, None] + rng.uniform(0, 6, n_vox))
    onsets = np.sort(rng.uniform(4, (n_scans - 10) * tr, n_trials))
    for o in onsets:
        k = int(o // tr)
        y[k + 2:k + 5] += 0.5 * rng.standard_normal(n_vox)
    img = nib.Nifti1Image((y + 500).T.reshape(shape + (n_scans,)).astype(np.float32),
                          np.diag([3.0, 3.0, 3.0, 1.0]))
    ids = [f"s{i:03d}" for i in range(n_trials)]
    events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": ids,
                           "stimulus_id": ids})
    mask = nib.Nifti1Image(np.ones(shape, np.uint8), img.affine)
    return img, events, mask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads)
    except ImportError:  # pragma: no cover
        limiter = None
    img, events, mask = make_data(args.trials)
    tr = 2.0
    print(f"data: {args.trials} trials x {int(np.asarray(mask.dataobj).sum())} voxels x "
          f"{img.shape[3]} scans, {args.threads} BLAS threads")

    # warm both paths once on a tiny problem (imports, nilearn caches), untimed
    wimg, wev, wmask = make_data(4, shape=(4, 5, 6), n_scans=40, seed=1)
    single_trial_betas([wimg], [wev], tr=tr, mask=wmask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nilearn_lss_loop([wimg], [wev], tr=tr, mask=wmask)

    times = []
    for _ in range(3):  # median of 3 for the fast path (noisy shared machine)
        t0 = time.perf_counter()
        betas, _ = single_trial_betas([img], [events], tr=tr, mask=mask, method="lss",
                                      average_repeats=False)
        times.append(time.perf_counter() - t0)
    t_fast = float(np.median(times))

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nilearn_lss_loop([img], [events], tr=tr, mask=mask)
    t_ref = time.perf_counter() - t0

    ref_mat = np.stack([v for _, v in ref])
    got = perturb(np.stack([betas.sel(stimulus=s).isel(repeat=0).values for s, _ in ref]))
    rel = float(np.abs(got - ref_mat).max() / np.abs(ref_mat).max())
    ok = rel <= 1e-5
    print(f"facebrain vectorised LSS : {t_fast:8.3f} s (median of 3)")
    print(f"nilearn per-trial loop   : {t_ref:8.3f} s (one pass, {args.trials} fits)")
    print(f"ratio (nilearn / facebrain): {t_ref / t_fast:.1f}x  (goal >= 50x)")
    print(f"max relative difference: {rel:.2e}  (tolerance 1e-05) -> {'OK' if ok else 'FAIL'}")
    if limiter is not None:
        limiter.unregister() if hasattr(limiter, "unregister") else None
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
