"""The epoch loop shared by ``fit_classifier`` and ``fit_siamese``.

Randomness: the whole fit runs inside ``torch.random.fork_rng`` seeded with
``seed`` (the caller's global torch RNG is left as it was); batch order and
augmentation come from two dedicated ``torch.Generator`` objects. All of them,
plus numpy's and Python's global states, are saved in every checkpoint and
restored on ``resume=True``, so an interrupted run that is resumed ends with
bitwise the same weights as an uninterrupted one (on CPU, same thread count).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import TrainingError
from ._checkpoint import (
    capture_rng,
    config_differences,
    load_checkpoint,
    reconcile_best,
    restore_rng,
    save_checkpoint,
    write_metrics,
)

__all__ = ["FitResult", "TrainingError", "build_optimizer", "run_epochs"]

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "step", None)



@public
@dataclass
class FitResult:
    """What a fit returns.

    Attributes
    ----------
    model : nn.Module
        The trained network (weights of the *last* epoch; ``best.pt`` holds the best).
    history : list of dict
        One row per epoch: ``epoch, train_loss, train_accuracy, val_loss,
        val_accuracy, lr, seconds, train_seconds, images_per_s`` (validation
        keys are NaN without a validation set; ``seconds`` includes validation).
    classes : list of str or None
        Class names in output order (classifier fits).
    best_epoch : int
        Epoch (1-based) with the best validation accuracy (lowest training
        loss without validation).
    out_dir : Path or None
        Folder with ``last.pt``, ``best.pt`` and ``metrics.jsonl``.
    config : dict
        The settings checked on resume.
    """

    model: nn.Module
    history: list[dict]
    classes: list[str] | None
    best_epoch: int
    out_dir: Path | None
    config: dict
    extra: dict = field(default_factory=dict)

    @property
    def history_frame(self):
        """History as a pandas DataFrame indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.history).set_index("epoch")

    @property
    def final(self) -> dict:
        """Metrics of the last epoch."""
        return dict(self.history[-1]) if self.history else {}

    def __getitem__(self, key: str):
        # dict-style access for scripts: result["history"], result["model"]
        return getattr(self, key)


def build_optimizer(model: nn.Module, *, optimizer: str, lr: float, weight_decay: float | None,
                    schedule: str | None, epochs: int, steps_per_epoch: int):
    """Optimizer and scheduler by name; returns ``(optimizer, scheduler, per_batch)``."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    # one fused kernel per step instead of a few small ops per tensor: on CPU 1.1 ms
    # instead of 3.5 ms per small_resnet step (torch's fused optimizers take float
    # tensors on CPU and CUDA)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if optimizer == "adamw":
        wd = 0.05 if weight_decay is None else weight_decay
        groups = [{"params": decay, "weight_decay": wd},
                  {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=lr, fused=fused)
    else:
        wd = 5e-4 if weight_decay is None else weight_decay
        groups = [{"params": decay, "weight_decay": wd},
                  {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, fused=fused)
    total = max(1, epochs * steps_per_epoch)
    if schedule in ("onecycle", "cosine") and total < 4:
        # too few steps for a shape: constant rate (torch's OneCycleLR divides by zero)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0), True
    if schedule == "onecycle":
        # warm-up over 25% of the steps (at least 1.5, so short runs stay valid)
        pct = max(0.25, 1.5 / total)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=pct, div_factor=20.0,
            final_div_factor=200.0)
        return opt, sched, True
    if schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), True
    if schedule == "step":
        # x0.1 after 1/2 and 3/4 of the run
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1), False
    return opt, None, False


def run_epochs(
    model: nn.Module,
    *,
    n_train: int,
    train_step: Callable[[np.ndarray, torch.Generator], tuple[torch.Tensor, int, int]],
    validate: Callable[[], dict] | None,
    config: dict,
    classes: list[str] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    schedule: str | None,
    weight_decay: float | None,
    out_dir,
    resume: bool,
    seed: int,
    device: torch.device,
    progress: bool,
    callback: Callable[[dict], None] | None,
    desc: str,
    set_classes: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Run the epochs, checkpointing after each; see the module docstring."""
    drop_last = n_train > batch_size
    steps = n_train // batch_size if drop_last else 1
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir= (the folder holding last.pt)")
    fork_devices = [] if device.type != "cuda" else [device.index or 0]
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        opt, sched, per_batch = build_optimizer(
            model, optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule,
            epochs=epochs, steps_per_epoch=steps)
        gens = {"shuffle": torch.Generator().manual_seed(seed),
                "augment": torch.Generator().manual_seed(seed + 0x5EED)}
        history: list[dict] = []
        best = {"epoch": 0, "score": -math.inf}
        start = 0
        last_path = out_dir / "last.pt" if out_dir is not None else None
        if resume and last_path is not None and not last_path.exists():
            warnings.warn(f"resume=True but {last_path} does not exist; starting from epoch 1",
                          stacklevel=user_stacklevel())
        elif resume:
            state = load_checkpoint(last_path, map_location=device)
            ignore = ("epochs",) if schedule is None else ()
            diff = config_differences(state["config"], config, ignore=ignore)
            if diff:
                shown = "; ".join(f"{k}: checkpoint {a!r} vs now {b!r}"
                                  for k, (a, b) in list(diff.items())[:6])
                hint = (" (with a learning-rate schedule the number of epochs is part of the "
                        "run; resume with the original epochs, or use schedule=None to extend)"
                        if "epochs" in diff else "")
                raise TrainingError(
                    f"{last_path}: cannot resume, the settings differ in "
                    f"{sorted(diff)}: {shown}{hint}. Pass the original settings, or use a "
                    "new out_dir (or resume=False) to start a new run."
                )
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None:
                sched.load_state_dict(state["scheduler"])
            restore_rng(state["rng"], gens)
            history = list(state["history"])
            best = dict(state["best"])
            start = int(state["epoch"])
            reconcile_best(out_dir)  # a kill between last.pt and best.pt: repair best.pt
        if set_classes is not None:
            set_classes(model)
        with _channels_last(model, device):
            for epoch in range(start, epochs):
                row = _one_epoch(model, epoch, epochs, n_train, batch_size, drop_last,
                                 train_step, validate, opt, sched, per_batch, gens, progress,
                                 desc)
                history.append(row)
                score = (row["val_accuracy"] if not math.isnan(row["val_accuracy"])
                         else -row["train_loss"])
                improved = score > best["score"]
                if improved:
                    best = {"epoch": row["epoch"], "score": float(score)}
                if out_dir is not None:
                    state = {
                        # default layout on disk, whatever layout the fit trains in
                        "model": {k: v.contiguous() for k, v in model.state_dict().items()},
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "epoch": epoch + 1,
                        "rng": capture_rng(gens),
                        "classes": classes,
                        "config": config,
                        "history": history,
                        "best": best,
                        "model_name": getattr(model, "name", type(model).__name__),
                        "facebrain_version": __version__,
                    }
                    save_checkpoint(out_dir / "last.pt", state)
                    if improved:
                        save_checkpoint(out_dir / "best.pt", state)
                    write_metrics(out_dir, history)
                if callback is not None:
                    callback(dict(row))
    model.eval()
    return FitResult(model=model, history=history, classes=classes, best_epoch=best["epoch"],
                     out_dir=out_dir, config=config)


@contextmanager
def _channels_last(model: nn.Module, device: torch.device):
    """Train a convolutional network in channels-last layout on CPU; restore the layout after.

    oneDNN's channels-last convolutions run a training step of ``small_resnet``
    (64 px, batch 64) about 1.3x faster than the default layout on one thread and
    1.4x on two (``benchmarks/bench_training.py --step``). Only the memory layout of
    the 4-d weights changes: values, checkpoints and ``state_dict`` keys are the
    same kind of tensors, and the model leaves the fit in the layout it came in.
    Results stay deterministic for a given thread count (the step's float
    reductions differ from the default layout's, as they do between thread counts).
    """
    if not (device.type == "cpu" and channels_last_trains_safely(model)):
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


def channels_last_trains_safely(model: nn.Module) -> bool:
    """Whether ``model`` has convolutions and none that oneDNN's channels-last backward breaks.

    With torch 2.14 on x86 (AVX2), the backward pass of a 1x1 convolution with a
    stride and 2 to 7 input channels aborts or segfaults in channels-last layout
    (e.g. ``small_resnet(width=4)``'s shortcut, 4 -> 8 channels at stride 2; 1x1
    stride 2 with 8, 9, 12 or 16 input channels, and 3x3 ones at any width, run
    correctly). Such a network, and any with grouped convolutions (not measured),
    trains in the default layout.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return bool(convs) and not any(
        m.groups != 1 or (m.kernel_size == (1, 1) and m.stride != (1, 1) and m.in_channels < 8)
        for m in convs)


def _one_epoch(model, epoch, epochs, n_train, batch_size, drop_last, train_step, validate,
               opt, sched, per_batch, gens, progress, desc) -> dict:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    model.train()
    order = torch.randperm(n_train, generator=gens["shuffle"]).numpy()
    n_batches = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    tot_loss, tot_correct, tot_n = 0.0, 0, 0
    bar = tqdm(total=n_batches, desc=f"{desc} epoch {epoch + 1}/{epochs}",
               disable=not progress, leave=False, unit="batch")
    try:
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss, correct, n = train_step(idx, gens["augment"])
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, batch "
                    f"{b + 1}; lower lr (now {opt.param_groups[0]['lr']:.3g}) or check "
                    "the inputs for NaN."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None and per_batch:
                sched.step()
            tot_loss += float(loss.detach()) * n
            tot_correct += int(correct)
            tot_n += int(n)
            bar.update(1)
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}", acc=f"{tot_correct / tot_n:.3f}")
        if sched is not None and not per_batch:
            sched.step()
        train_seconds = time.perf_counter() - t0
        val = validate() if validate is not None else {}
        if val:
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}", acc=f"{tot_correct / tot_n:.3f}",
                            val_acc=f"{val['val_accuracy']:.3f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    row = {
        "epoch": epoch + 1,
        "train_loss": tot_loss / max(tot_n, 1),
        "train_accuracy": tot_correct / max(tot_n, 1),
        "val_loss": float(val.get("val_loss", float("nan"))),
        "val_accuracy": float(val.get("val_accuracy", float("nan"))),
        "lr": float(opt.param_groups[0]["lr"]),
        "seconds": seconds,
        "train_seconds": train_seconds,
        "images_per_s": tot_n / train_seconds if train_seconds > 0 else float("nan"),
    }
    if progress:
        tqdm.write(
            f"{desc} epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.3f}"
            + (f" val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.3f}" if val
               else "")
            + f" ({seconds:.1f} s)"
        )
    return row
