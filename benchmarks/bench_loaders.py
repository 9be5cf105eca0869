"""Dataset-loader speed claims, each against a plain baseline run in this process.

1. ``load_fer2013`` vs the obvious pandas code (``read_csv`` + ``str.split`` per
   row): images must be identical (exact uint8 equality).
2. ``load_kdef(verify="fast")`` (header + end-marker check, full decode only for
   suspicious files) vs ``verify="full"`` (decode every JPEG) on a KDEF-sized
   tree of 562x762 photos-like JPEGs with a few truncated files: both must keep
   the same ids and reject the same files.

Timings on a shared machine are noisy; the ratio is what to read.

    .venv/bin/python benchmarks/bench_loaders.py [--fer-rows 3000] [--kdef-persons 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stimuli"))
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from fakes import make_fer2013, truncate

from facebrain.stimuli import load_fer2013, load_kdef


def bench_fer(tmp: Path, n_rows: int) -> None:
    path = tmp / "fer2013.csv"
    images, _ = make_fer2013(path, n=n_rows, seed=1)
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    base = np.stack([np.array(p.split(), dtype=np.uint8).reshape(48, 48) for p in df["pixels"]])
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = load_fer2013(path)
    t_ours = time.perf_counter() - t0
    ours = perturb(s.image_source.images)
    if not (np.array_equal(ours, base) and np.array_equal(ours, images)):
        raise SystemExit("FER2013: images differ from the pandas baseline")
    print(f"fer2013 {n_rows} rows: pandas split baseline {t_base:.2f} s, load_fer2013 "
          f"{t_ours:.2f} s, ratio {t_base / t_ours:.2f}x (images identical)")


def _photo_like(rng, h=762, w=562) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([120 + 80 * np.sin(6 * xx + k) * np.cos(4 * yy - k) for k in range(3)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def bench_kdef(tmp: Path, n_persons: int) -> None:
    rng = np.random.default_rng(0)
    root = tmp / "KDEF"
    codes, views = ("AF", "AN", "DI", "HA", "NE", "SA", "SU"), ("FL", "HL", "S", "HR", "FR")
    pool = [_photo_like(rng) for _ in range(4)]
    n = 0
    for s in "AB":
        for p in range(1, n_persons + 1):
            g = "FM"[p % 2]
            folder = root / f"{s}{g}{p:02d}"
            folder.mkdir(parents=True)
            for c in codes:
                for v in views:
                    Image.fromarray(pool[n % 4]).save(folder / f"{s}{g}{p:02d}{c}{v}.JPG",
                                                      quality=94)
                    n += 1
    bad = sorted(root.rglob("*.JPG"))[:: max(1, n // 3)][:3]
    for b in bad:
        truncate(b, 0.8)
    times, sets = {}, {}
    for mode in ("full", "fast"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sets[mode] = load_kdef(root, verify=mode)
        times[mode] = time.perf_counter() - t0
    same_ids = list(sets["fast"].ids) == list(sets["full"].ids)
    same_rej = sorted(sets["fast"].rejected["path"]) == sorted(sets["full"].rejected["path"])
    if not (same_ids and same_rej and len(sets["fast"].rejected) == len(bad)):
        raise SystemExit("KDEF: verify='fast' and verify='full' disagree")
    print(f"kdef {n} JPEGs 562x762 ({len(bad)} truncated): verify='full' {times['full']:.2f} s, "
          f"verify='fast' {times['fast']:.2f} s, ratio {times['full'] / times['fast']:.1f}x "
          "(same ids, same rejected files)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer-rows", type=int, default=3000)
    ap.add_argument("--kdef-persons", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        bench_fer(Path(d), args.fer_rows)
        bench_kdef(Path(d), args.kdef_persons)


if __name__ == "__main__":
    main()
