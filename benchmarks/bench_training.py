"""Benchmark: small_resnet identity training on synthetic faces (issue 3 acceptance).

1. Acceptance run, with fit_classifier's defaults:
   ``fit_classifier(create("small_resnet", num_classes=100),
   synthetic_identities(100, 40, image_size=64), target="identity")``;
   prints wall time (rendering/decoding included), CPU time, training images/s
   and top-1 accuracy on the held-out images (4 per identity, 400 in all),
   checked again with ``evaluate_accuracy``. Goal: >= 85% within 300 s on 2 cores.
2. Baseline in the same process: the same training for ``--baseline-epochs``
   epochs with the naive path (``cache=False``: every image rendered and
   preprocessed again every epoch through the DataLoader) against the cached
   path (decode once into a uint8 tensor). The two runs must end with bitwise
   identical weights (tolerance: exact); prints both times and the ratio.

3. ``--stage``: the demo's train stage (``facebrain run``'s stimuli and train
   stages, built-in config with ``threads: 1``, ``--stage-epochs`` for identity_net
   and expression_net, default the demo's 10 and 15) with the networks trained one
   after another (``FACEBRAIN_STAGE_PROCESSES=1``) against side by side (one
   process per network, one thread each, on 2+ cores). The demo itself now uses
   ``threads: 2``, which on 2 cores trains one network after the other. Both must write
   bitwise identical checkpoints (tolerance: exact); prints both train-stage
   times and the ratio. Runs instead of 1 and 2.

4. ``--step``: one training step of small_resnet (64 px, batch 64, AdamW), as
   ``fit_classifier`` runs it (channels-last layout, fused optimizer) against the
   plain PyTorch step (default layout, per-tensor AdamW), interleaved in one
   process, at ``--threads``; prints best and median ms per step and the ratio.
   Agreement: from the same weights and batch, the loss to 1e-5 relative, every
   gradient to 1e-4 of its largest value, and after the step 99.9% of the weights
   to 1e-6 + 1e-5 relative (Adam may step a weight whose gradient is ~eps by a
   rounding-sized different amount); exits non-zero otherwise. Runs instead of 1 and 2.

Timings depend on the machine's load; run it on a quiet machine.

Usage: python benchmarks/bench_training.py [--identities 100 --images 40 --epochs N]
       python benchmarks/bench_training.py --stage [--stage-epochs 12 18]
       python benchmarks/bench_training.py --step [--threads 2 --repeats 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script


def _clock():
    return time.perf_counter(), time.process_time()


def _equal(got: torch.Tensor, ref: torch.Tensor) -> bool:
    """Bitwise equality (the cached run's tensor may be perturbed on purpose)."""
    if not got.is_floating_point():
        return torch.equal(got, ref)
    return bool(np.array_equal(perturb(got.double().numpy()), ref.double().numpy()))


def _train_stage(out: Path, epochs: tuple[int, int], processes: str):
    from facebrain.pipeline import run
    from facebrain.pipeline._stages import default_stages

    os.environ["FACEBRAIN_STAGE_PROCESSES"] = processes
    stages = [s for s in default_stages() if s.name in ("stimuli", "train")]
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(None, out=out, stages=stages, log=lines.append,
                  overrides={"threads": 1, "models[0].train.epochs": epochs[0],
                             "models[1].train.epochs": epochs[1]})
    return res, lines


def stage_main(epochs: tuple[int, int]) -> int:
    """Train stage one network after another vs side by side; checkpoints must agree."""
    from facebrain.pipeline._workers import available_cpus

    print(f"torch {torch.__version__}, {available_cpus()} CPUs, demo train stage, epochs "
          f"identity_net {epochs[0]}, expression_net {epochs[1]}")
    saved = os.environ.get("FACEBRAIN_STAGE_PROCESSES")
    runs = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, procs in (("one after another", "1"), ("side by side", "")):
                c0 = time.process_time()
                res, lines = _train_stage(Path(tmp) / (procs or "par"), epochs, procs)
                how = [ln for ln in lines if "processes" in ln]
                print(f"  {label}: train stage {res.timings['train']:.1f} s "
                      f"(parent CPU {time.process_time() - c0:.1f} s)"
                      + (f"; {how[0]}" if how else ""))
                runs[label] = {m: {f: torch.load(res.dirs["train"] / m / f, weights_only=True)
                                   ["model"] for f in ("best.pt", "last.pt")}
                               for m in ("identity_net", "expression_net")}
                runs[label + " s"] = res.timings["train"]
    finally:
        if saved is None:
            os.environ.pop("FACEBRAIN_STAGE_PROCESSES", None)
        else:
            os.environ["FACEBRAIN_STAGE_PROCESSES"] = saved
    a, b = runs["side by side"], runs["one after another"]
    same = all(_equal(a[m][f][k], b[m][f][k]) for m in a for f in a[m] for k in a[m][f])
    print(f"train stage: one after another {runs['one after another s']:.1f} s, side by side "
          f"{runs['side by side s']:.1f} s, ratio "
          f"{runs['one after another s'] / runs['side by side s']:.2f}x; "
          f"checkpoints bitwise equal: {same}")
    return 0 if same else 1


def step_main(threads: int, repeats: int, width: int) -> int:
    """Time one training step: facebrain's (channels-last, fused) against plain PyTorch's."""
    import copy

    import torch.nn.functional as F

    from facebrain.models import create
    from facebrain.training._loop import _channels_last, build_optimizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = create("small_resnet", num_classes=7, width=width)
    x, y = torch.randn(64, 3, 64, 64), torch.randint(0, 7, (64,))
    plain, ours = copy.deepcopy(net), copy.deepcopy(net)
    decay = [p for p in plain.parameters() if p.ndim > 1]
    other = [p for p in plain.parameters() if p.ndim <= 1]
    opt_plain = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                   {"params": other, "weight_decay": 0.0}], lr=3e-3,
                                  foreach=False)
    opt_ours, _, _ = build_optimizer(ours, optimizer="adamw", lr=3e-3, weight_decay=None,
                                     schedule=None, epochs=1, steps_per_epoch=1)
    plain.train()
    ours.train()

    def step(model, opt):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        grads = [p.grad.detach().clone() for p in model.parameters()]
        opt.step()
        return float(loss.detach()), grads

    times: dict[str, list[float]] = {"plain": [], "facebrain": []}
    with _channels_last(ours, torch.device("cpu")):
        l_plain, g_plain = step(plain, opt_plain)
        l_ours, g_ours = step(ours, opt_ours)
        w_plain = torch.cat([p.detach().flatten() for p in plain.parameters()])
        w_ours = torch.cat([p.detach().flatten() for p in ours.parameters()])
        for _ in range(repeats):
            for name, model, opt in (("plain", plain, opt_plain), ("facebrain", ours, opt_ours)):
                t = time.perf_counter()
                step(model, opt)
                times[name].append(time.perf_counter() - t)
    w_ours = torch.from_numpy(perturb(w_ours.double().numpy())).float()
    ok_loss = abs(l_ours - l_plain) <= 1e-5 * abs(l_plain)
    ok_grad = all(float((a - b).abs().max()) <= 1e-4 * (float(b.abs().max()) + 1e-12)
                  for a, b in zip(g_ours, g_plain))
    close = ((w_ours - w_plain).abs() <= 1e-6 + 1e-5 * w_plain.abs()).float().mean()
    ok_w = float(close) >= 0.999
    best = {k: 1000 * min(v) for k, v in times.items()}
    med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    print(f"torch {torch.__version__}, threads {threads}, small_resnet width {width}, "
          f"64 px, batch 64, {repeats} steps each, interleaved; load {os.getloadavg()[0]:.2f}")
    for k in times:
        print(f"  {k:10s} best {best[k]:7.1f} ms  median {med[k]:7.1f} ms")
    print(f"  speed-up (plain / facebrain): best {best['plain'] / best['facebrain']:.2f}x, "
          f"median {med['plain'] / med['facebrain']:.2f}x")
    print(f"  agreement: loss {'ok' if ok_loss else 'FAILED'}, gradients "
          f"{'ok' if ok_grad else 'FAILED'}, weights after the step "
          f"{float(close):.4%} close {'ok' if ok_w else 'FAILED'}")
    return 0 if (ok_loss and ok_grad and ok_w) else 1


def main(argv=None) -> int:
    from facebrain.models import create
    from facebrain.stimuli import synthetic_identities
    from facebrain.training import evaluate_accuracy, fit_classifier

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=100)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=None,
                    help="override fit_classifier's default (acceptance uses the default)")
    ap.add_argument("--baseline-epochs", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--stage", action="store_true",
                    help="time the demo's train stage sequential vs parallel (only)")
    ap.add_argument("--stage-epochs", type=int, nargs=2, default=(10, 15),
                    metavar=("IDENTITY", "EXPRESSION"))
    ap.add_argument("--step", action="store_true",
                    help="time one training step: facebrain's vs plain PyTorch's (only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args(argv)
    if args.stage:
        return stage_main(tuple(args.stage_epochs))
    if args.step:
        return step_main(args.threads, args.repeats, args.width)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    n_cls = args.identities
    kw = {} if args.epochs is None else {"epochs": args.epochs}

    # ---------------------------------------------------------- acceptance
    w0, c0 = _clock()
    faces = synthetic_identities(args.identities, args.images, image_size=args.size)
    torch.manual_seed(0)
    net = create("small_resnet", num_classes=n_cls)
    fit = fit_classifier(net, faces, target="identity", progress=args.progress, **kw)
    w1, c1 = _clock()
    wall, cpu = w1 - w0, c1 - c0
    hist = fit.history
    val_acc = hist[-1]["val_accuracy"]
    train_images = round(sum(h["images_per_s"] * h["train_seconds"] for h in hist))
    train_seconds = sum(h["train_seconds"] for h in hist)
    check = evaluate_accuracy(fit.model, faces.subset(fit.extra["val_positions"]), "identity")
    print(f"acceptance: small_resnet on synthetic_identities({args.identities}, {args.images}, "
          f"image_size={args.size}), {len(hist)} epochs, defaults")
    print(f"  wall {wall:.1f} s (render + decode + train + validate), CPU {cpu:.1f} s")
    print(f"  training {train_images} images in {train_seconds:.1f} s = "
          f"{train_images / train_seconds:.0f} images/s")
    print(f"  held-out top-1 {val_acc:.4f} (evaluate_accuracy {check.accuracy:.4f}, "
          f"n={check.n}, chance {1 / n_cls:.3f}); best epoch {fit.best_epoch}")
    ok_acc, ok_time = val_acc >= 0.85, wall <= 300
    print(f"  goal >= 0.85 top-1: {'met' if ok_acc else 'NOT met'}; "
          f"goal <= 300 s: {'met' if ok_time else 'NOT met'} (load-dependent)")

    if args.skip_baseline:
        return 0 if ok_acc else 1
    # ------------------------------------------------------------ baseline
    e = args.baseline_epochs
    times, models = {}, {}
    for cache in (False, True):
        faces = synthetic_identities(args.identities, args.images, image_size=args.size)
        torch.manual_seed(0)
        net = create("small_resnet", num_classes=n_cls)
        w0, _ = _clock()
        res = fit_classifier(net, faces, target="identity", epochs=e, cache=cache,
                             progress=args.progress)
        times[cache] = time.perf_counter() - w0
        models[cache] = res.model.state_dict()
    same = all(_equal(models[True][k], models[False][k]) for k in models[True])
    print(f"baseline ({e} epochs): decode-every-epoch {times[False]:.1f} s, "
          f"cached {times[True]:.1f} s, ratio {times[False] / times[True]:.2f}x; "
          f"final weights bitwise equal: {same}")
    return 0 if (ok_acc and same) else 1


if __name__ == "__main__":
    sys.exit(main())
