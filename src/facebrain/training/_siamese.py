"""``fit_siamese``: train a verification network on a same/different pairs table."""

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
from ._common import check_run_args, common_config, fill_doc, prepare
from ._data import ImageStore
from ._loop import FitResult, run_epochs
from ._pairs import check_pairs

__all__ = ["SAME_CLASS", "fit_siamese"]

#: Output index of ``forward_pair`` logits meaning "same identity" (0 = different).
SAME_CLASS = 1


def _split_pairs(pairs: pd.DataFrame, val_fraction: float, seed: int):
    if not 0 <= float(val_fraction) < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction!r}")
    n = len(pairs)
    if val_fraction == 0:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    same = pairs["same"].to_numpy(bool)
    val = []
    for cls in (True, False):
        rows = np.flatnonzero(same == cls)
        k = round(val_fraction * len(rows))
        val.extend(rng.permutation(rows)[:k].tolist())
    val = np.sort(np.asarray(val, dtype=np.int64))
    return np.setdiff1d(np.arange(n), val), val


@public
@fill_doc
def fit_siamese(
    model: nn.Module,
    pairs: pd.DataFrame,
    stimuli,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: str = "adamw",
    schedule: str | None = "onecycle",
    weight_decay: float | None = None,
    augment: bool | Callable = True,
    val_fraction: float = 0.1,
    val_pairs: pd.DataFrame | None = None,
    out_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    resume: bool = False,
    num_workers: int = 0,
    cache: bool | str = "auto",
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train a verification network on same/different pairs (cross-entropy).

    The run options behave as in :func:`fit_classifier` (checkpoints, resume,
    ``metrics.jsonl``). The two images of a pair are augmented independently.

    Parameters
    ----------
    model : nn.Module
        A network with ``forward_pair(a, b) -> logits (N, 2)`` whose column
        :data:`SAME_CLASS` (1) means "same identity" and 0 "different", such
        as ``create("siamese_lfw")``.
    pairs : DataFrame
        ``left, right`` (stimulus ids of ``stimuli``), ``same`` (bool or 0/1)
        [, ``fold``]: the LFW loader's table or :func:`sample_pairs`.
    stimuli : StimulusSet
        Holds every image the pairs name.
    val_fraction : float
        Pairs held out for validation (stratified by ``same``), unless
        ``val_pairs`` is given. For validation on new people pass
        ``val_pairs`` sampled from other identities.
    val_pairs : DataFrame, optional
        Validation pairs (same columns as ``pairs``); all of ``pairs`` then train.
    {run_parameters}

    Returns
    -------
    FitResult
        ``history`` accuracies are same/different accuracies of the pairs.

    Examples
    --------
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_identities
    >>> from facebrain.training import sample_pairs
    >>> faces = synthetic_identities(4, 6, image_size=72)
    >>> pairs = sample_pairs(faces, 24, seed=0)
    >>> net = create("siamese_lfw", input_size=72, width=8, hidden=32, embedding_dim=16)
    >>> fit = fit_siamese(net, pairs, faces, epochs=1, batch_size=8, progress=False)
    >>> len(fit.history)
    1
    """
    device = check_device(device)
    if not hasattr(model, "forward_pair"):
        raise TypeError(
            f"{type(model).__name__} has no forward_pair(a, b) returning same/different "
            "logits; train a verification network such as create('siamese_lfw')."
        )
    check_run_args(epochs, batch_size, stimuli)
    pairs = check_pairs(pairs, stimuli, name="pairs")
    if val_pairs is not None:
        val_pairs = check_pairs(val_pairs, stimuli, name="val_pairs")
        train_pairs = pairs
    else:
        tr, va = _split_pairs(pairs, val_fraction, seed)
        train_pairs, val_pairs = pairs.iloc[tr], (pairs.iloc[va] if len(va) else None)
    if len(train_pairs) == 0:
        raise ValueError("no training pairs are left after the validation split; "
                         "lower val_fraction.")
    if train_pairs["same"].nunique() < 2:
        only = bool(train_pairs["same"].iloc[0])
        raise ValueError(
            f"every training pair has same={only}; verification needs both same and "
            "different pairs (sample_pairs(..., same_fraction=0.5))."
        )

    all_pairs = pd.concat([train_pairs, val_pairs]) if val_pairs is not None else train_pairs
    uniq = pd.unique(pd.concat([all_pairs["left"], all_pairs["right"]]))
    where = {sid: k for k, sid in enumerate(uniq)}
    positions = stimuli.table.index.get_indexer(uniq)

    def index(df):
        return (torch.from_numpy(np.array(df["left"].map(where), dtype=np.int64)),
                torch.from_numpy(np.array(df["right"].map(where), dtype=np.int64)),
                torch.from_numpy(np.array(df["same"], dtype=bool).astype(np.int64)))

    tl, tr_, ty = index(train_pairs)
    pipeline, augment = prepare(model, augment, device)
    store = ImageStore(stimuli, pipeline, positions, cache=cache, num_workers=num_workers,
                       progress=progress)

    def images(idx, generator=None):
        x = pipeline.to_unit(store.get(idx))
        if generator is not None and augment is not None:
            x = augment(x, generator)
        return pipeline.finish(x).to(device)

    def train_step(idx, generator):
        idx = torch.from_numpy(idx)
        xa = images(tl[idx], generator)
        xb = images(tr_[idx], generator)
        y = ty[idx].to(device)
        logits = model.forward_pair(xa, xb)
        loss = F.cross_entropy(logits, y)
        correct = int((logits.argmax(1) == y).sum())
        return loss, correct, len(idx)

    validate = None
    if val_pairs is not None and len(val_pairs):
        vl, vr, vy = index(val_pairs)

        def validate():
            model.eval()
            tot_loss, tot_correct = 0.0, 0
            with torch.no_grad():
                for a in range(0, len(vy), 256):
                    sl = slice(a, a + 256)
                    logits = model.forward_pair(images(vl[sl]), images(vr[sl]))
                    y = vy[sl].to(device)
                    tot_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                    tot_correct += int((logits.argmax(1) == y).sum())
            model.train()
            return {"val_loss": tot_loss / len(vy), "val_accuracy": tot_correct / len(vy)}

    config = {
        "task": "siamese",
        **common_config(model, pipeline, augment, epochs=epochs, batch_size=batch_size, lr=lr,
                        optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                        val_fraction=val_fraction, seed=seed),
        "pairs": stable_hash(train_pairs[["left", "right", "same"]].to_numpy().tolist()),
        "val_pairs": (stable_hash(val_pairs[["left", "right", "same"]].to_numpy().tolist())
                      if val_pairs is not None else None),
        "stimuli": {"name": stimuli.name, "n": len(stimuli)},
    }
    result = run_epochs(
        model, n_train=len(ty), train_step=train_step, validate=validate, config=config,
        classes=["different", "same"], epochs=int(epochs), batch_size=int(batch_size), lr=lr,
        optimizer=optimizer, schedule=schedule, weight_decay=weight_decay, out_dir=out_dir,
        resume=resume, seed=int(seed), device=device, progress=progress, callback=callback,
        desc="fit siamese",
    )
    result.extra.update({"n_train_pairs": len(ty),
                         "n_val_pairs": 0 if val_pairs is None else len(val_pairs)})
    return result
