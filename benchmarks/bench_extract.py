"""Benchmark: facebrain.extract vs torchvision's ``create_feature_extractor`` (and a hook loop).

Same ResNet-50 (random weights; the torchvision module that facebrain's
``ResNetFaceNet`` wraps, eval mode), same images, same DataLoader decoding,
same process, runs interleaved (peer, extract, hooks, peer, extract, ...):

(a) conv1, layer1-4 and avgpool; (b) ``layer1`` alone. The peer is
``create_feature_extractor(net, return_nodes)`` (it truncates the graph after
the last node too) under ``torch.no_grad()``, outputs copied to numpy, as a
user writes it; the second baseline registers forward hooks and runs the full
forward. Goals: >= 1.5x the peer for (a), >= 1.3x for (b).

Prints best-of-N times and ratios, the spread of the per-round ratios (the
machine may be shared), and the effective GFLOP/s (2 x multiply-adds of the
convolutions/linear layers actually needed, per second) as a fraction of this
machine's fp32 matmul GFLOP/s measured in the same run. Results must agree with
the peer to 1e-5 of each layer's largest absolute value (fused/oneDNN
convolutions sum in a different order, so bit-equality is not expected); the
script exits non-zero when they do not.

Usage: python benchmarks/bench_extract.py [--n 64] [--batch-size 32] [--threads 2]
       [--repeats 5] [--seed 0] [--size 224]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script

from facebrain.activations import extract
from facebrain.models import Preprocess, ResNetFaceNet
from facebrain.stimuli import ArraySource, StimulusSet

LAYERS_A = ["conv1", "layer1", "layer2", "layer3", "layer4", "avgpool"]


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def flops_per_image(model, size: int) -> dict[str, float]:
    """Cumulative conv/linear FLOPs (2 x MACs) per image at the end of each stage."""
    macs = {"n": 0}

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            macs["n"] += out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            macs["n"] += out.numel() * mod.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    out = {}
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for name, stage in model.stages.items():
            x = stage(x)
            out[name] = 2.0 * macs["n"]
    for h in hs:
        h.remove()
    return out


def naive(model, stimuli, layers, batch_size):
    """Forward hooks + full forward pass, NCHW, as in most tutorials."""
    feats = {k: [] for k in layers}
    handles = [model.stages[k].register_forward_hook(
        lambda m, i, o, k=k: feats[k].append(o.detach().cpu().numpy().reshape(len(o), -1)))
        for k in layers]
    loader = torch.utils.data.DataLoader(stimuli.to_torch(model.preprocess),
                                         batch_size=batch_size, shuffle=False)
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    for h in handles:
        h.remove()
    return {k: np.concatenate(v) for k, v in feats.items()}


#: agreement tolerance, relative to the layer's largest absolute value
TOL = 1e-5


def check_close(got, ref, layer) -> float:
    got = perturb(got)
    scale = float(np.abs(ref).max()) or 1.0
    err = float(np.abs(got - ref).max()) / scale
    if err > TOL:
        raise AssertionError(f"{layer}: extract differs from the baseline by {err:.2e} of the "
                             f"layer's scale (> {TOL:g})")
    return err


#: torchvision node names of facebrain's stages (conv1 = conv + bn + relu)
TV_NODES = {"conv1": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3",
            "layer4": "layer4", "avgpool": "avgpool"}


def make_peer(net, layers):
    """torchvision's feature extractor for ``layers`` (built once, outside the timings)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    return create_feature_extractor(net, {TV_NODES[k]: k for k in layers}).eval()


def peer(fx, stimuli, preprocess, layers, batch_size):
    """Run torchvision's feature extractor ``fx`` as a user writes it."""
    loader = torch.utils.data.DataLoader(stimuli.to_torch(preprocess), batch_size=batch_size,
                                         shuffle=False)
    feats = {k: [] for k in layers}
    with torch.no_grad():
        for x, _ in loader:
            for k, v in fx(x).items():
                feats[k].append(v.numpy().reshape(len(v), -1))
    return {k: np.concatenate(v) for k, v in feats.items()}


#: process CPU seconds of each run, {name: [seconds]} (contention-robust-ish)
CPU: dict[str, list[float]] = {}


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Run each function once per round, rounds ``repeats`` times: {name: [seconds]}."""
    times, outs = {k: [] for k in fns}, {}
    CPU.clear()
    for _ in range(repeats):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t)
            CPU.setdefault(k, []).append(time.process_time() - c)
    return times, outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images (default 64)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=224, help="input size (default 224)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (best of N)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the images and weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, size=(args.n, args.size, args.size, 3), dtype=np.uint8)
    table = pd.DataFrame({"identity": [f"p{i % 7}" for i in range(args.n)],
                          "expression": "neutral", "view": "S"},
                         index=pd.Index([f"img{i:05d}" for i in range(args.n)],
                                        name="stimulus_id"))
    stimuli = StimulusSet(table, image_source=ArraySource(images), name="bench")
    from torchvision.models import resnet50

    net = resnet50(weights=None).eval()
    prep = Preprocess(input_size=args.size, mean=(0.485, 0.456, 0.406),
                      std=(0.229, 0.224, 0.225))
    model = ResNetFaceNet(net, prep).eval()  # shares net's modules
    peak = matmul_gflops()
    flops = flops_per_image(model, args.size)
    print(f"torch {torch.__version__}, {args.threads} threads, ResNet-50 random weights "
          f"(seed {args.seed}), {args.n} images {args.size}x{args.size}, batch "
          f"{args.batch_size}, {args.repeats} interleaved rounds")
    print(f"fp32 matmul reference: {peak:.1f} GFLOP/s; ResNet-50 up to avgpool "
          f"{flops['avgpool'] / 1e9:.2f} GFLOP/image, up to layer1 {flops['layer1'] / 1e9:.2f}")
    warm = stimuli.subset(np.arange(2))
    t = time.perf_counter()
    peer(make_peer(net, LAYERS_A), warm, prep, LAYERS_A, 2)
    t_wp = time.perf_counter() - t
    t = time.perf_counter()
    extract(model, warm, LAYERS_A, batch_size=2, progress=False)
    t_wf = time.perf_counter() - t
    print(f"warm-up on 2 images (excluded below): peer {t_wp:.1f} s, extract {t_wf:.1f} s "
          "(includes the one-time conv-bn fusion and oneDNN weight reorder, cached per model "
          "while its weights are unchanged)")

    ok = True
    for tag, layers, goal in (("a", LAYERS_A, 1.5), ("b", ["layer1"], 1.3)):
        fx = make_peer(net, layers)
        fns = {
            "peer": lambda ly=layers, fx=fx: peer(fx, stimuli, prep, ly, args.batch_size),
            "extract": lambda ly=layers: extract(model, stimuli, ly,
                                                 batch_size=args.batch_size, progress=False),
            "hooks": lambda ly=layers: naive(model, stimuli, ly, args.batch_size),
            # the same without oneDNN convolutions (fused, channels-last): what they add
            "extract_no_onednn": lambda ly=layers: extract(
                model, stimuli, ly, batch_size=args.batch_size, progress=False, mkldnn=False),
        }
        times, outs = interleaved(fns, args.repeats)
        worst = {}
        for k in layers:
            try:
                worst[k] = check_close(outs["extract"][k].values, outs["peer"][k], k)
                check_close(outs["hooks"][k], outs["peer"][k], k)
                check_close(outs["extract_no_onednn"][k].values, outs["peer"][k], k)
            except AssertionError as e:
                print(f"({tag}) DISAGREEMENT: {e}")
                ok = False
        print(f"({tag}) agreement with the peer: max |diff| / max |peer| per layer "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) + f" (tolerance {TOL:g})")
        best = {k: min(v) for k, v in times.items()}
        last = layers[-1] if tag == "b" else "avgpool"
        g = flops[last] * args.n / best["extract"] / 1e9
        rounds = np.array(times["extract_no_onednn"]) / np.array(times["extract"])
        print(f"({tag}) oneDNN convolutions vs fused channels-last (extract mkldnn=False): "
              f"best-of-{args.repeats} {best['extract_no_onednn'] / best['extract']:.2f}x, "
              f"per-round {rounds.min():.2f}-{rounds.max():.2f}x")
        print(f"({tag}) best process CPU seconds: "
              + ", ".join(f"{k} {min(v):.1f}" for k, v in CPU.items()))
        for base in ("peer", "hooks"):
            rounds = np.array(times[base]) / np.array(times["extract"])
            name = "create_feature_extractor" if base == "peer" else "hooks + full forward"
            print(f"({tag}) {'+'.join(layers) if tag == 'b' else 'all stages'}: {name} "
                  f"{args.n / best[base]:.2f} img/s | extract {args.n / best['extract']:.2f} "
                  f"img/s ({g:.1f} GFLOP/s = {g / peak:.0%} of matmul) | speed-up best-of-"
                  f"{args.repeats} {best[base] / best['extract']:.2f}x, per-round "
                  f"{rounds.min():.2f}-{rounds.max():.2f}x (median {np.median(rounds):.2f}x)"
                  + (f" (goal >= {goal}x)" if base == "peer" else ""))
        del outs
    print("note: timings on a shared machine are noisy; rerun when it is idle.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
