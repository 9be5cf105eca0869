"""Benchmark: facebrain.extract vs torchvision's ``create_feature_extractor`` (and a hook loop).

Same ResNet-50 (random weights; the torchvision module that facebrain's
``ResNetFaceNet`` wraps, eval mode), same images, same DataLoader decoding,
same threads, same process, runs interleaved (peer, peer channels-last,
extract, peer, ...), on two cases in one run: the default shapes (224 px,
batch 32, seed 0) and held-out ones (192 px, batch 24, seed 7: other size,
batch split with a short last batch, other weights and images).

(a) conv1, layer1-4 and avgpool; (b) ``layer1`` alone. The peer is
``create_feature_extractor(net, return_nodes)`` (it truncates the graph after
the last node too) under ``torch.inference_mode()`` (faster than ``no_grad``),
outputs copied to numpy, as a user writes it; it runs twice, once as is (NCHW,
what most users run) and once with the network and inputs in channels-last
memory format (PyTorch's CPU performance advice), and the speed-up is taken
against the faster of the two in each round. Goals: >= 1.5x for (a),
>= 1.3x for (b). ``--extra`` adds a forward-hook loop over the full forward and
``extract(mkldnn=False)`` (fused channels-last without oneDNN).

Prints, per case and stage set, best-of-N and median times with their range,
the per-round speed-ups (min-median-max), the process CPU seconds, the load
average before and after (the machine may be shared: compare rounds, not
runs), and the effective GFLOP/s (2 x multiply-adds of the convolutions/linear
layers actually needed, per second) as a fraction of this machine's fp32
matmul GFLOP/s. A ceiling line says what speed-up over each peer an implementation
of the same fp32 arithmetic would reach at 100% of that matmul rate (convolutions
lowered to GEMM-like kernels cannot beat the GEMM); a goal above it cannot be met on
this machine by faster code, only by doing less arithmetic. Results must agree with the peer to 1e-5 of each layer's
largest absolute value (fused/oneDNN convolutions sum in a different order,
so bit-equality is not expected); the script exits non-zero when they do not
(``FACEBRAIN_BENCH_PERTURB`` shifts extract's result to prove it).
Allocator: glibc's malloc is set as the ``facebrain`` command sets it (freed memory kept)
for both sides; ``--default-malloc`` leaves the default, under which every batch faults
its big buffers in again and the peer, which allocates more, pays more.

Usage: python benchmarks/bench_extract.py [--n 64] [--threads 2] [--repeats 5] [--extra]
       [--cases 224:32:0,192:24:7]   (size:batch:seed, comma separated)
       [--size S --batch-size B --seed K]   (one case instead)
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from _timing import allocator

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


def check_close(got, ref, layer, planted: bool = True) -> float:
    got = perturb(got) if planted else got
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


def peer(fx, stimuli, preprocess, layers, batch_size, channels_last=False):
    """Run torchvision's feature extractor ``fx`` as a user writes it."""
    loader = torch.utils.data.DataLoader(stimuli.to_torch(preprocess), batch_size=batch_size,
                                         shuffle=False)
    feats = {k: [] for k in layers}
    with torch.inference_mode():
        for x, _ in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
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


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def spread(v) -> str:
    v = np.asarray(v)
    return f"best {v.min():.2f} s, median {np.median(v):.2f} s [{v.min():.2f}-{v.max():.2f}]"


def run_case(size, batch_size, seed, args, peak) -> bool:
    """One case (input size, batch size, seed of weights and images); False on disagreement."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(args.n, size, size, 3), dtype=np.uint8)
    table = pd.DataFrame({"identity": [f"p{i % 7}" for i in range(args.n)],
                          "expression": "neutral", "view": "S"},
                         index=pd.Index([f"img{i:05d}" for i in range(args.n)],
                                        name="stimulus_id"))
    stimuli = StimulusSet(table, image_source=ArraySource(images), name="bench")
    from torchvision.models import resnet50

    net = resnet50(weights=None).eval()
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last).eval()
    prep = Preprocess(input_size=size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    model = ResNetFaceNet(net, prep).eval()  # shares net's modules
    flops = flops_per_image(model, size)
    case = f"{size}px/b{batch_size}/s{seed}"
    print(f"\n== case {case}: {args.n} images {size}x{size}, batch {batch_size}, weights and "
          f"images seed {seed}; ResNet-50 up to avgpool {flops['avgpool'] / 1e9:.2f} "
          f"GFLOP/image, up to layer1 {flops['layer1'] / 1e9:.2f}; load average {loadavg()}")
    ok = True
    for tag, layers, goal in (("a", LAYERS_A, 1.5), ("b", ["layer1"], 1.3)):
        fx, fx_cl = make_peer(net, layers), make_peer(net_cl, layers)
        fns = {
            "peer": lambda ly=layers, fx=fx: peer(fx, stimuli, prep, ly, batch_size),
            "peer_cl": lambda ly=layers, fx=fx_cl: peer(fx, stimuli, prep, ly, batch_size,
                                                        channels_last=True),
            "extract": lambda ly=layers: extract(model, stimuli, ly, batch_size=batch_size,
                                                 progress=False),
        }
        if args.extra:
            fns["hooks"] = lambda ly=layers: naive(model, stimuli, ly, batch_size)
            fns["extract_no_onednn"] = lambda ly=layers: extract(
                model, stimuli, ly, batch_size=batch_size, progress=False, mkldnn=False)
        warm = stimuli.subset(np.arange(2))
        t = time.perf_counter()
        for k in fns:  # first calls: fusion, weight reorder, allocator warm-up
            if k.startswith("peer"):
                peer(fx if k == "peer" else fx_cl, warm, prep, layers, 2, k == "peer_cl")
            else:
                extract(model, warm, layers, batch_size=2, progress=False,
                        mkldnn=False if k == "extract_no_onednn" else None)
        t_warm = time.perf_counter() - t
        times, outs = interleaved(fns, args.repeats)
        worst = {}
        for k in layers:
            try:
                worst[k] = check_close(outs["extract"][k].values, outs["peer"][k], k)
                check_close(outs["peer_cl"][k], outs["peer"][k], k, planted=False)
                if args.extra:
                    check_close(outs["hooks"][k], outs["peer"][k], k, planted=False)
                    check_close(outs["extract_no_onednn"][k].values, outs["peer"][k], k)
            except AssertionError as e:
                print(f"({case} {tag}) DISAGREEMENT: {e}")
                ok = False
        what = "+".join(layers) if tag == "b" else "all stages"
        print(f"({case} {tag}) {what}: agreement with the peer, max |diff| / max |peer|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
              + f" (tolerance {TOL:g}); warm-up on 2 images {t_warm:.1f} s (excluded)")
        for k, v in times.items():
            print(f"({case} {tag})   {k:18s} {spread(v)}, {args.n / min(v):.2f} img/s, "
                  f"CPU {min(CPU[k]):.1f} s")
        ext = np.array(times["extract"])
        faster_peer = np.minimum(times["peer"], times["peer_cl"])
        rounds = faster_peer / ext
        best = min(faster_peer) / ext.min()
        last = layers[-1] if tag == "b" else "avgpool"
        g = flops[last] * args.n / ext.min() / 1e9
        verdict = "meets" if best >= goal and np.median(rounds) >= goal else "BELOW"
        print(f"({case} {tag}) {what}: extract vs faster peer: best-of-{args.repeats} "
              f"{best:.2f}x, per-round min {rounds.min():.2f}x / median "
              f"{np.median(rounds):.2f}x / max {rounds.max():.2f}x (goal >= {goal}x: {verdict} "
              f"on best and median); vs NCHW peer best {min(times['peer']) / ext.min():.2f}x, "
              f"vs channels-last peer best {min(times['peer_cl']) / ext.min():.2f}x; extract "
              f"{g:.1f} GFLOP/s = {g / peak:.0%} of matmul")
        # the ceiling: these convolution flops at this machine's fp32 matmul rate (no
        # implementation of the same arithmetic in fp32 runs faster than its GEMM)
        floor = flops[last] * args.n / (peak * 1e9)
        print(f"({case} {tag}) {what}: ceiling at 100% of matmul ({floor:.2f} s): "
              f"{min(faster_peer) / floor:.2f}x the faster peer, "
              f"{min(times['peer']) / floor:.2f}x the NCHW peer (goal {goal}x "
              f"{'within' if min(faster_peer) / floor >= goal else 'ABOVE'} this ceiling); "
              f"peers at {flops[last] * args.n / min(faster_peer) / 1e9 / peak:.0%} of matmul")
        if args.extra:
            for base in ("hooks", "extract_no_onednn"):
                r = np.array(times[base]) / ext
                print(f"({case} {tag}) extract vs {base}: best {min(times[base]) / ext.min():.2f}x,"
                      f" per-round {r.min():.2f}-{r.max():.2f}x")
        del outs
    print(f"({case}) load average after: {loadavg()}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images per case (default 64)")
    ap.add_argument("--cases", default="224:32:0,192:24:7",
                    help="size:batch:seed cases, comma separated (default: the default "
                         "shapes and the held-out ones)")
    ap.add_argument("--size", type=int, help="one case of this input size instead")
    ap.add_argument("--batch-size", type=int, default=32, help="with --size")
    ap.add_argument("--seed", type=int, default=0, help="with --size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (best of N)")
    ap.add_argument("--extra", action="store_true",
                    help="also time a hook loop and extract(mkldnn=False)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's malloc as it is (freed big blocks unmapped, faulted in "
                         "again: the peer allocates more and pays more)")
    args = ap.parse_args()
    malloc = allocator(args.default_malloc)
    if args.size is not None:
        cases = [(args.size, args.batch_size, args.seed)]
    else:
        cases = [tuple(int(v) for v in c.split(":")) for c in args.cases.split(",") if c]
    torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (peer and extract), "
          f"ResNet-50 random weights, {args.repeats} interleaved rounds per stage set; "
          f"fp32 matmul reference {peak:.1f} GFLOP/s; load average {loadavg()}; {malloc}")
    results = [run_case(size, bs, seed, args, peak) for size, bs, seed in cases]  # run all
    print("note: timings on a shared machine are noisy; compare the per-round ratios and "
          "rerun when it is idle.")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
