"""GPU check (issue 13, goal 7): extraction, ridge and the RSA bootstrap on a torch device
against the CPU answer, in one process.

Each part runs the CPU path a user gets by default and the same call with ``device=``,
times both (best of ``--repeats``; every result comes back to host memory, so the device
is synchronised inside the timing), prints the ratio, and compares the answers at float32
tolerance:

* **extract**: torchvision's ResNet-50 architecture (seeded random weights), ``--n-images``
  random images at 224 px, batch 32, stages conv1, layer1-4 and avgpool. CPU:
  :func:`facebrain.activations.extract` (fused oneDNN path); device: the same call with
  ``device=``, TF32 off (with ``--device cpu``: ``mkldnn=False``, the path without oneDNN
  tensors that a GPU takes). Agreement: per layer, max |device - CPU| <= 1e-4 max |CPU|
  (float32 convolutions summed in other orders through 50 layers).
* **ridge**: :class:`facebrain.encoding.RidgeEncoder` with 19 alphas (``np.logspace(-2, 7,
  19)``), ``KFold(5)``, ``score_dtype="float32"``, on ``--n`` x ``--p`` features x ``--v``
  voxels (bench_encoding's generator: decaying spectrum, silent to high-SNR voxels).
  CPU: numpy (partial fractions); device: torch's direct GEMM in float32. Agreement:
  alphas equal on >= 99% of voxels, the chosen alpha's CV score within 1e-5 relative,
  predictions of voxels with equal alphas within 1e-6 of max |prediction|.
* **rsa**: :func:`facebrain.rsa.compare` with 1,000 stimulus bootstraps, spearman and
  tau-a, 100 stimuli x 6 layers x 40 ROI-subject RDMs (bench_rsa's profile). Agreement:
  every bootstrap score within 1e-6 (absolute; scores are correlations).

Any disagreement prints DISAGREE and exits 1; ``FACEBRAIN_BENCH_PERTURB=0.1`` shifts the
device results and must make it fail. Without the device (no CUDA) it says so and exits 2:
never a silent pass. ``--device cpu`` runs the torch path on the CPU against numpy, which
checks this script on any machine (``--quick`` makes it take seconds).

On the GPU machine (the device tool; its image has torch, numpy, xarray, pandas, scipy,
scikit-learn and numba, not rsatoolbox: carry its wheel, see README "GPU check")::

    PYTHONPATH=src python3 benchmarks/bench_gpu.py [--parts extract,ridge,rsa] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cuda")
ap.add_argument("--parts", default="extract,ridge,rsa")
ap.add_argument("--quick", action="store_true",
                help="small shapes: 8 images at 64 px, 120 x 150 x 300 ridge, 30 stimuli x 10 bootstraps")
ap.add_argument("--n-images", type=int, default=256)
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--p", type=int, default=2048)
ap.add_argument("--v", type=int, default=10000)
ap.add_argument("--n-boot", type=int, default=1000)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import realistic  # benchmarks/ is on sys.path (above)
from _perturb import perturb
from _timing import best_of as _best_of

IMAGE_SIZE, N_STIMULI, N_VOX = (64, 30, 6) if args.quick else (224, 100, 30)
if args.quick:
    args.n_images, args.n, args.p, args.v, args.n_boot = 8, 120, 150, 300, 10


def best_of(fn, repeats):
    """(best wall seconds, last result) after one untimed call (compilation, caches)."""
    fn()
    return _best_of(fn, repeats)


def line(part, t_cpu, t_dev, ok, detail):
    print(f"[{part}] CPU {t_cpu:.3f} s | {args.device} {t_dev:.3f} s | ratio CPU / "
          f"{args.device} {t_cpu / t_dev:.2f}x | {detail} -> {'AGREE' if ok else 'DISAGREE'}",
          flush=True)
    return ok


def part_extract(torch) -> bool:
    import pandas as pd
    from torchvision.models import resnet50

    from facebrain.activations import extract
    from facebrain.models import Preprocess, ResNetFaceNet
    from facebrain.stimuli import ArraySource, StimulusSet

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n, size = args.n_images, IMAGE_SIZE
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    table = pd.DataFrame({"identity": [f"p{i % 7}" for i in range(n)], "expression": "neutral",
                          "view": "S"},
                         index=pd.Index([f"img{i:05d}" for i in range(n)], name="stimulus_id"))
    stimuli = StimulusSet(table, image_source=ArraySource(images), name="gpu-check")
    prep = Preprocess(input_size=size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    model = ResNetFaceNet(resnet50(weights=None), prep).eval()
    layers = ["conv1", "layer1", "layer2", "layer3", "layer4", "avgpool"]
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    def run(device, **kw):
        out = extract(model, stimuli, layers, batch_size=32, progress=False, device=device, **kw)
        model.to("cpu")
        return out

    t_cpu, cpu = best_of(lambda: run("cpu"), args.repeats)
    # on the CPU the "device" run takes the path a GPU takes (no oneDNN tensors)
    kw = {"mkldnn": False} if args.device == "cpu" else {}
    t_dev, dev = best_of(lambda: run(args.device, **kw), args.repeats)
    worst = max(float(np.abs(perturb(dev[ly].values) - cpu[ly].values).max())
                / max(float(np.abs(cpu[ly].values).max()), 1e-30) for ly in layers)
    return line("extract", t_cpu, t_dev, worst <= 1e-4,
                f"ResNet-50, {n} images {size} px, batch 32, {len(layers)} stages; max |diff| / "
                f"max |CPU| over layers {worst:.1e} (tolerance 1e-4)")


def part_ridge(torch) -> bool:
    from sklearn.model_selection import KFold

    from facebrain.encoding import RidgeEncoder
    from facebrain.errors import AlphaGridWarning

    X, Y = realistic(np.random.default_rng(args.seed), args.n, args.p, args.v)
    alphas = np.logspace(-2, 7, 19)

    def fit(device):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlphaGridWarning)
            return RidgeEncoder(alphas, cv=KFold(5), score_dtype="float32",
                                device=device).fit(X, Y)

    t_cpu, cpu = best_of(lambda: fit(None), args.repeats)
    t_dev, dev = best_of(lambda: fit(args.device), args.repeats)
    same = dev.best_alphas_ == cpu.best_alphas_
    cols = np.arange(Y.shape[1])
    k_cpu = np.searchsorted(alphas, cpu.best_alphas_)
    s_cpu = cpu.cv_scores_[k_cpu, cols]
    s_dev = perturb(dev.cv_scores_)[k_cpu, cols]
    score_err = float(np.max(np.abs(s_dev - s_cpu) / np.maximum(np.abs(s_cpu), 1e-30)))
    p_cpu, p_dev = cpu.predict(X[:50])[:, same], perturb(dev.predict(X[:50]))[:, same]
    pred_err = float(np.abs(p_dev - p_cpu).max() / max(float(np.abs(p_cpu).max()), 1e-30)) \
        if same.any() else 0.0
    ok = same.mean() >= 0.99 and score_err < 1e-5 and pred_err < 1e-6
    return line("ridge", t_cpu, t_dev, ok,
                f"{args.n} x {args.p} x {args.v}, 5 folds, 19 alphas, float32 scoring; alphas "
                f"equal on {same.mean():.2%} (need >= 99%), chosen-alpha CV score max relative "
                f"diff {score_err:.1e} (need < 1e-5), predictions {pred_err:.1e} of max (need < "
                f"1e-6)")


def part_rsa(torch) -> bool:
    import xarray as xr

    from facebrain.rsa import compare, rdm

    rng = np.random.default_rng(args.seed)
    n = N_STIMULI
    ids = [f"s{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 20))
    acts = xr.Dataset({f"layer{j}": (("stimulus", f"layer{j}_unit"),
                                     latent @ rng.normal(size=(20, 64))
                                     + (j + 1) * rng.normal(size=(n, 64))) for j in range(6)},
                      coords={"stimulus": ids})
    rois, subjects = ["EVC", "OFA", "FFA", "pSTS"], [f"{s:02d}" for s in range(10)]
    roi = [r for r in rois for s in subjects for _ in range(N_VOX)]
    sub = [s for r in rois for s in subjects for _ in range(N_VOX)]
    brain = xr.DataArray(latent @ rng.normal(size=(20, len(roi)))
                         + 3 * rng.normal(size=(n, len(roi))),
                         dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "roi": ("voxel", roi), "subject": ("voxel", sub)})
    mr, br = rdm(acts), rdm(brain)
    ok = True
    for method in ("spearman", "tau-a"):
        def run(device, method=method):
            return compare(mr, br, method=method, n_bootstrap=args.n_boot, ceiling=False,
                           device=device)["bootstrap_score"].values

        t_cpu, cpu = best_of(lambda: run(None), args.repeats)
        t_dev, dev = best_of(lambda: run(args.device), args.repeats)
        nan_same = bool(np.array_equal(np.isnan(cpu), np.isnan(dev)))
        fin = ~np.isnan(cpu)
        err = float(np.abs(perturb(dev[fin]) - cpu[fin]).max()) if fin.any() else 0.0
        ok &= line(f"rsa {method}", t_cpu, t_dev, nan_same and err <= 1e-6,
                   f"{n} stimuli, 6 layers x 40 RDMs, {args.n_boot} bootstraps; max |diff| "
                   f"{err:.1e} (tolerance 1e-6), NaN at the same places: {nan_same}")
    return ok


def main() -> int:
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"device {args.device!r}: torch.cuda is not available on this machine "
              f"(torch {torch.__version__}); nothing was checked. Run it where a GPU is, or "
              "with --device cpu to check the torch path against numpy.", file=sys.stderr)
        return 2
    name = (torch.cuda.get_device_name(torch.device(args.device))
            if args.device.startswith("cuda") else "torch on the CPU")
    print(f"device {args.device}: {name}; torch {torch.__version__}, numpy {np.__version__}; "
          f"CPU threads {torch.get_num_threads()}; best of {args.repeats}", flush=True)
    parts = {"extract": part_extract, "ridge": part_ridge, "rsa": part_rsa}
    unknown = set(args.parts.split(",")) - set(parts)
    if unknown:
        print(f"--parts: unknown {sorted(unknown)}; choose from {sorted(parts)}", file=sys.stderr)
        return 2
    ok = True
    for name in args.parts.split(","):
        ok &= parts[name](torch)
    print("all parts AGREE" if ok else "DISAGREE: see the lines above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
