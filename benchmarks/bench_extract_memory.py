"""Benchmark: peak memory of extracting five unreduced ResNet-50 stages into a zarr store.

``extract(resnet50, stimuli, ["conv1", "layer1", "layer2", "layer3", "layer4"],
store=...)`` writes batch by batch, so peak RSS is bounded by one batch (plus
the model), not by the number of stimuli. The baseline is the size the same
arrays would take in memory (n_stimuli x units x 4 bytes), printed beside the
measured peak RSS (``resource.getrusage``, Linux ru_maxrss). Goal: < 3 GiB
for 2,000 stimuli at 224x224 (the in-memory arrays: ~18 GB).

Correctness check: 3 stimuli (first, middle, last) read back from the store
equal a direct forward pass of those images (1e-5 of each layer's scale).

Usage: python benchmarks/bench_extract_memory.py [--n 2000] [--size 224]
       [--batch-size 32] [--store /tmp/bench_acts.zarr] [--threads 2]
The issue's size (2,000 images) takes ~30-60 min on 2 shared CPU cores; pass
--n to run fewer (peak RSS does not depend on n, which --n lets you verify).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script

from facebrain.activations import extract
from facebrain.models import Preprocess, create
from facebrain.stimuli import StimulusSet

LAYERS = ["conv1", "layer1", "layer2", "layer3", "layer4"]


class NoiseImages:
    """Picklable image source: a seeded random 256x256 RGB image per index (not stored)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seed = size, seed

    def __call__(self, i: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, i])
        return rng.integers(0, 256, size=(self.size, self.size, 3), dtype=np.uint8)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--store", default=None, help="zarr path (default: a temp dir, removed)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss0 = peak_rss_gib()
    table = pd.DataFrame({"identity": [f"p{i % 70}" for i in range(args.n)],
                          "expression": "neutral", "view": "S"},
                         index=pd.Index([f"img{i:05d}" for i in range(args.n)],
                                        name="stimulus_id"))
    stimuli = StimulusSet(table, image_source=NoiseImages(args.size), name="noise")
    model = create("resnet50").eval()
    model.preprocess = Preprocess(input_size=args.size, mean=(0.485, 0.456, 0.406),
                                  std=(0.229, 0.224, 0.225))
    tmp = None
    if args.store is None:
        tmp = tempfile.mkdtemp(prefix="fb_bench_mem_")
        store = Path(tmp) / "acts.zarr"
    else:
        store = Path(args.store)
    try:
        print(f"torch {torch.__version__}, {args.threads} threads, ResNet-50 random weights, "
              f"{args.n} images {args.size}x{args.size}, batch {args.batch_size}, store {store}")
        rss_model = peak_rss_gib()
        t = time.perf_counter()
        acts = extract(model, stimuli, LAYERS, batch_size=args.batch_size, store=store,
                       resume=False, progress=True)
        elapsed = time.perf_counter() - t
        rss = peak_rss_gib()
        units = {ly: acts.sizes[f"{ly}_unit"] for ly in LAYERS}
        in_memory = args.n * sum(units.values()) * 4 / 2**30
        on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**30
        # correctness: a few stimuli against a direct forward pass
        check = [0, args.n // 2, args.n - 1]
        x = torch.stack([model.preprocess(stimuli.load(i)) for i in check])
        with torch.inference_mode():
            ref = model.forward_layers(x, LAYERS)
        worst = 0.0
        for ly in LAYERS:
            got = perturb(acts[ly].isel(stimulus=check).values)
            r = ref[ly].reshape(len(check), -1).numpy()
            err = float(np.abs(got - r).max() / (np.abs(r).max() or 1))
            worst = max(worst, err)
            if err > 1e-5:
                raise AssertionError(f"{ly}: store differs from a direct forward by {err:.2e}")
        print(f"check: 3 stimuli read back from the store equal a direct forward pass "
              f"(max |diff| {worst:.1e} of layer scale, tolerance 1e-5)")
        print(f"units per stimulus: {units}")
        print(f"baseline (all five stages held in memory): {in_memory:.2f} GiB")
        print(f"extract -> zarr: peak RSS {rss:.2f} GiB (python+torch before model {rss0:.2f} GiB, "
              f"with model {rss_model:.2f} GiB); store on disk {on_disk:.2f} GiB; "
              f"{args.n / elapsed:.2f} img/s")
        print(f"ratio in-memory / peak RSS: {in_memory / rss:.1f}x; goal peak RSS < 3 GiB: "
              f"{'met' if rss < 3 else 'NOT met'}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
