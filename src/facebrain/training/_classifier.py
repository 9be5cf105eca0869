"""``fit_classifier``: train a FaceNet to classify identity, expression or any label column."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._boundary import public
from .._utils import check_device, stable_hash
from ..errors import DataFormatError
from ._common import check_run_args, common_config, fill_doc, prepare
from ._data import ImageStore
from ._loop import FitResult, run_epochs

__all__ = ["check_head", "fit_classifier", "split_train_val"]

VAL_WORDS = ("val", "valid", "validation")
TRAIN_WORDS = ("train", "training")


@public
def split_train_val(
    stimuli, target: str, *, val_fraction: float = 0.1, val_split=None, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and validation sets.

    * ``val_split`` given: a boolean mask (True = validation) or the name of a
      column that is boolean (True = validation) or holds strings: rows equal
      to ``"val"``/``"valid"``/``"validation"`` validate, ``"train"``/``"training"``
      rows train, any other value (``"test"``...) is left out of both.
    * ``target == "identity"``: images are held out, not people:
      ``round(val_fraction * n)`` images of *each* identity (at least one when
      ``val_fraction > 0`` and the identity has two or more images, never all).
    * any other target (``"expression"``...): whole identities are held out
      (``round(val_fraction * n_identities)``, at least one), so validation
      measures generalisation to new people.

    Returns
    -------
    train, val : ndarray of int64
        Sorted row positions.
    """
    n = len(stimuli)
    if val_split is not None:
        return _explicit_split(stimuli, val_split)
    if not 0 <= float(val_fraction) < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    if val_fraction == 0 or n == 0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ident = stimuli.table["identity"].astype(str).to_numpy()
    val = []
    if target == "identity":
        for name in sorted(set(ident)):
            rows = np.flatnonzero(ident == name)
            if len(rows) < 2:
                continue
            k = int(np.clip(round(val_fraction * len(rows)), 1, len(rows) - 1))
            val.extend(rng.permutation(rows)[:k].tolist())
    else:
        people = np.array(sorted(set(ident)))
        if len(people) < 2:
            raise ValueError(
                f"target={target!r} holds out whole identities for validation, but the set "
                f"has only {len(people)} identity ({people.tolist()}). Pass val_fraction=0, "
                "or val_split= (a column or boolean mask) to choose validation images."
            )
        k = int(np.clip(round(val_fraction * len(people)), 1, len(people) - 1))
        held = set(rng.permutation(people)[:k].tolist())
        val = np.flatnonzero([p in held for p in ident]).tolist()
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(n, dtype=np.int64), val)
    return train, val


def _explicit_split(stimuli, val_split) -> tuple[np.ndarray, np.ndarray]:
    n = len(stimuli)
    if isinstance(val_split, str):
        if val_split not in stimuli.table.columns:
            raise KeyError(
                f"val_split column {val_split!r} not found; available: "
                f"{list(stimuli.table.columns)}"
            )
        col = stimuli.table[val_split]
        if pd.api.types.is_bool_dtype(col):
            mask = col.to_numpy(bool)
            return np.flatnonzero(~mask), np.flatnonzero(mask)
        values = col.astype(str).str.lower().to_numpy()
        is_val = np.isin(values, VAL_WORDS)
        is_train = np.isin(values, TRAIN_WORDS)
        if not is_train.any():
            raise DataFormatError(
                f"val_split column {val_split!r} has no training rows: values "
                f"{sorted(set(col.astype(str)))[:10]}. Mark training rows 'train' and "
                "validation rows 'val' (other values are left out), or pass a boolean mask."
            )
        return np.flatnonzero(is_train), np.flatnonzero(is_val)
    mask = np.asarray(val_split)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(
            f"val_split must be a column name or a boolean mask of shape ({n},); got "
            f"dtype {mask.dtype} and shape {mask.shape}"
        )
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def check_head(model: nn.Module, example: torch.Tensor, n_classes: int, target: str) -> None:
    """Raise if ``model(example)`` does not give ``n_classes`` logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        model.train(was_training)
    if out.ndim != 2 or out.shape[1] != n_classes:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"the model's output has shape {tuple(out.shape[1:])} per image, but target "
            f"{target!r} has {n_classes} classes. Create the model with a matching head: "
            f"create({name!r}, num_classes={n_classes})."
        )


@public
@fill_doc
def fit_classifier(
    model: nn.Module,
    stimuli,
    *,
    target: str = "identity",
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 3e-3,
    optimizer: str = "adamw",
    schedule: str | None = "onecycle",
    weight_decay: float | None = None,
    label_smoothing: float = 0.1,
    augment: bool | Callable = True,
    val_fraction: float = 0.1,
    val_split=None,
    out_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    resume: bool = False,
    num_workers: int = 0,
    cache: bool | str = "auto",
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train ``model`` to classify the ``target`` column of ``stimuli``.

    Parameters
    ----------
    model : FaceNet
        Network whose output (``forward``) is one logit per class; its
        ``preprocess`` turns images into inputs.
    stimuli : StimulusSet
        Images with the ``target`` label column.
    target : str
        Label column (``"identity"``, ``"expression"``, ...). Classes are
        ``stimuli.labels(target)[1]``; they are stored on the model as
        ``model.classes_`` and in each checkpoint.
    label_smoothing : float
        Cross-entropy label smoothing.
    val_fraction, val_split
        Validation set, see :func:`split_train_val`: for ``target="identity"``
        held-out *images* of every identity; for other targets held-out
        *identities*; or an explicit column / boolean mask.
    {run_parameters}

    Returns
    -------
    FitResult
        ``model`` (last epoch, in eval mode), ``history``, ``classes``,
        ``best_epoch``, ``out_dir``, ``config``.

    Examples
    --------
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_identities
    >>> faces = synthetic_identities(4, 6, image_size=32)
    >>> net = create("small_resnet", num_classes=4, width=8)
    >>> fit = fit_classifier(net, faces, epochs=1, progress=False)
    >>> len(fit.history), 0.0 <= fit.history[-1]["val_accuracy"] <= 1.0
    (1, True)
    """
    device = check_device(device)
    if not isinstance(target, str) or target not in stimuli.table.columns:
        raise KeyError(
            f"target column {target!r} not found in the stimulus table; available columns: "
            f"{list(stimuli.table.columns)}. Pass target='identity', 'expression' or another "
            "label column."
        )
    check_run_args(epochs, batch_size, stimuli)
    codes, classes = stimuli.labels(target)
    if len(classes) < 2:
        raise ValueError(
            f"target column {target!r} has a single class ({classes[0]!r}) in these "
            f"{len(stimuli)} images; a classifier needs at least two. Choose another "
            "column, or a set with several values."
        )
    train_pos, val_pos = split_train_val(stimuli, target, val_fraction=val_fraction,
                                         val_split=val_split, seed=seed)
    if len(train_pos) == 0:
        raise ValueError(
            f"the training set is empty after the validation split ({len(val_pos)} of "
            f"{len(stimuli)} images went to validation). Lower val_fraction or change val_split."
        )
    train_classes = np.unique(codes[train_pos])
    if len(train_classes) < 2:
        raise ValueError(
            f"after the validation split the training images of target {target!r} have a "
            f"single class ({classes[int(train_classes[0])]!r}); lower val_fraction or "
            "pass val_split."
        )

    pipeline, augment = prepare(model, augment, device)
    train_store = ImageStore(stimuli, pipeline, train_pos, cache=cache,
                             num_workers=num_workers, progress=progress)
    val_store = (ImageStore(stimuli, pipeline, val_pos, cache=cache, num_workers=num_workers,
                            progress=progress) if len(val_pos) else None)
    y_train = torch.from_numpy(codes[train_pos])
    y_val = torch.from_numpy(codes[val_pos])
    example = pipeline.finish(pipeline.to_unit(train_store.get([0]))).to(device)
    check_head(model, example, len(classes), target)

    def train_step(idx, generator):
        x = pipeline.to_unit(train_store.get(idx))
        if augment is not None:
            x = augment(x, generator)
        x = pipeline.finish(x).to(device)
        y = y_train[torch.from_numpy(idx)].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        correct = int((logits.argmax(1) == y).sum())
        return loss, correct, len(idx)

    def validate():
        model.eval()
        tot_loss, tot_correct = 0.0, 0
        with torch.no_grad():
            for idx, x in val_store.batches(np.arange(len(val_store)), max(batch_size, 256)):
                x = pipeline.finish(pipeline.to_unit(x)).to(device)
                y = y_val[torch.from_numpy(idx)].to(device)
                logits = model(x)
                tot_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                tot_correct += int((logits.argmax(1) == y).sum())
        model.train()
        n = len(val_store)
        return {"val_loss": tot_loss / n, "val_accuracy": tot_correct / n}

    def set_classes(m):
        m.classes_ = list(classes)
        m.target_ = target

    config = {
        "task": "classifier",
        "target": target,
        "classes": list(classes),
        **common_config(model, pipeline, augment, epochs=epochs, batch_size=batch_size, lr=lr,
                        optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                        val_fraction=val_fraction, seed=seed),
        "label_smoothing": float(label_smoothing),
        "val_split": val_split if isinstance(val_split, str) or val_split is None
        else "mask:" + stable_hash(np.asarray(val_split).astype(int).tolist()),
        "stimuli": {"name": stimuli.name, "n": len(stimuli),
                    "train_ids": stable_hash(stimuli.ids[train_pos].tolist()),
                    "val_ids": stable_hash(stimuli.ids[val_pos].tolist())},
    }
    result = run_epochs(
        model, n_train=len(train_pos), train_step=train_step,
        validate=validate if val_store is not None else None, config=config,
        classes=list(classes), epochs=int(epochs), batch_size=int(batch_size), lr=lr,
        optimizer=optimizer, schedule=schedule, weight_decay=weight_decay, out_dir=out_dir,
        resume=resume, seed=int(seed), device=device, progress=progress, callback=callback,
        desc=f"fit {target}", set_classes=set_classes,
    )
    result.extra.update({"train_positions": train_pos, "val_positions": val_pos,
                         "target": target, "cached": train_store.cached})
    return result
