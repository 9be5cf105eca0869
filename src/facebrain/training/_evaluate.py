"""Evaluation: top-1 accuracy on a StimulusSet, LFW-protocol verification accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._boundary import public
from .._utils import check_device
from ._data import ImagePipeline, ImageStore
from ._pairs import check_pairs

__all__ = [
    "AccuracyResult",
    "VerificationResult",
    "best_threshold",
    "evaluate_accuracy",
    "pair_scores",
    "verification_accuracy",
]


@public
@dataclass
class AccuracyResult:
    """Top-1 accuracy of a classifier on a labelled StimulusSet.

    Attributes
    ----------
    accuracy : float
        Fraction of images whose arg-max class is the true one.
    per_class : Series
        Accuracy (recall) per true class, indexed by class name (classes
        absent from the set are left out).
    n : int
    predicted : ndarray of str, shape (n_stimuli,)
    true : ndarray of str, shape (n_stimuli,)
    """

    accuracy: float
    per_class: pd.Series
    n: int
    predicted: np.ndarray
    true: np.ndarray


@public
@dataclass
class VerificationResult:
    """LFW-protocol verification accuracy.

    Attributes
    ----------
    accuracy : float
        Mean over folds of the test-fold accuracy.
    sem : float
        Standard error of that mean (std with ddof=1 over folds / sqrt(n_folds)).
    fold_accuracy : ndarray of shape (n_folds,)
    thresholds : ndarray of shape (n_folds,)
        Threshold chosen on the other folds (score > threshold means "same").
    scores : ndarray of shape (n_pairs,)
        Similarity per pair (higher = more alike).
    same : ndarray of bool, shape (n_pairs,)
    fold : ndarray of int, shape (n_pairs,)
    metric : str
    auc : float
        ROC AUC of ``scores`` over all pairs.
    """

    accuracy: float
    sem: float
    fold_accuracy: np.ndarray
    thresholds: np.ndarray
    scores: np.ndarray
    same: np.ndarray
    fold: np.ndarray
    metric: str
    auc: float
    extra: dict = field(default_factory=dict)


def _forward_store(model, pipeline, store, fn, batch_size, device, progress, desc):
    from tqdm.auto import tqdm

    outs = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            n_batches = -(-len(store) // batch_size)
            for _, x in tqdm(store.batches(np.arange(len(store)), batch_size),
                             total=n_batches, disable=not progress, desc=desc, leave=False):
                x = pipeline.finish(pipeline.to_unit(x)).to(device)
                outs.append(fn(x).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)


@public
def evaluate_accuracy(
    model: nn.Module, stimuli, target: str = "identity", *, classes=None,
    batch_size: int = 256, device: str | torch.device = "cpu", num_workers: int = 0,
    progress: bool = False,
) -> AccuracyResult:
    """Top-1 accuracy (overall and per class) of a classifier on a StimulusSet.

    Parameters
    ----------
    model : FaceNet
        Classifier; output ``k`` is class ``classes[k]``.
    stimuli : StimulusSet
    target : str
        Label column holding the true classes.
    classes : list of str, optional
        Output order; default ``model.classes_`` (set by ``fit_classifier``),
        else the set's own ``stimuli.labels(target)`` order.

    Examples
    --------
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_identities
    >>> faces = synthetic_identities(4, 3, image_size=32)
    >>> net = create("small_resnet", num_classes=4, width=8).eval()  # or fit_classifier(...).model
    >>> res = evaluate_accuracy(net, faces, "identity")
    >>> res.n, 0.0 <= res.accuracy <= 1.0
    (12, True)
    """
    device = check_device(device)
    if target not in stimuli.table.columns:
        raise KeyError(f"target column {target!r} not found; available: "
                       f"{list(stimuli.table.columns)}")
    if len(stimuli) == 0:
        raise ValueError("the stimulus set is empty; nothing to evaluate")
    if classes is None:
        classes = getattr(model, "classes_", None)
    if classes is None:
        classes = stimuli.labels(target)[1]
    classes = [str(c) for c in classes]
    true = stimuli.table[target].astype(str).to_numpy()
    unknown = sorted(set(true) - set(classes))
    if unknown:
        raise ValueError(
            f"{target!r} values {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not "
            f"among the model's {len(classes)} classes (e.g. {classes[:3]}); evaluate on "
            "a subset with known classes, or pass classes= in the model's output order."
        )
    pipeline = ImagePipeline(getattr(model, "preprocess", None))
    store = ImageStore(stimuli, pipeline, np.arange(len(stimuli)), cache=False,
                       num_workers=num_workers)
    model.to(device)
    logits = _forward_store(model, pipeline, store, model, batch_size, device, progress,
                            "evaluate")
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(
            f"the model gives {tuple(logits.shape[1:])} outputs per image for "
            f"{len(classes)} classes; pass classes= matching the head."
        )
    pred = np.asarray(classes, dtype=object)[logits.argmax(1).numpy()].astype(str)
    hit = pred == true
    per_class = pd.Series(hit).groupby(true).mean()
    per_class.index.name = target
    order = [c for c in classes if c in per_class.index]
    return AccuracyResult(accuracy=float(hit.mean()), per_class=per_class.loc[order],
                          n=len(true), predicted=pred, true=true)


@public
def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold maximising accuracy of ``score > t`` as "same"; returns ``(t, accuracy)``.

    Candidates are the midpoints between consecutive distinct scores and
    +-inf; ties go to the lowest threshold. O(n log n).
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    n = len(scores)
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order]
    # cut k: the first k sorted pairs are called "different", the rest "same"
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    pos_above = y.sum() - np.concatenate([[0], np.cumsum(y)])
    correct = neg_below + pos_above
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = s[1:] > s[:-1]
    correct = np.where(valid, correct, -1)
    k = int(np.argmax(correct))
    if k == 0:
        t = -np.inf
    elif k == n:
        t = np.inf
    else:
        t = (s[k - 1] + s[k]) / 2
    return float(t), float(correct[k] / n)


@public
def pair_scores(
    model: nn.Module, pairs: pd.DataFrame, stimuli, *, metric: str = "auto",
    layer: str | None = None, batch_size: int = 256, device: str | torch.device = "cpu",
    num_workers: int = 0, progress: bool = False,
) -> tuple[np.ndarray, str]:
    """Similarity of each pair (higher = more alike) and the metric used.

    ``metric``: ``"logit"`` (same minus different logit of
    ``model.forward_pair``), ``"cosine"`` or ``"euclidean"`` (negative distance)
    between embeddings: ``model(x)`` or, with ``layer``, that layer's output
    flattened. ``"auto"`` is ``"logit"`` for models with ``forward_pair``
    (and no ``layer``), else ``"cosine"``.
    """
    device = check_device(device)
    pairs = check_pairs(pairs, stimuli)
    if metric == "auto":
        metric = "logit" if hasattr(model, "forward_pair") and layer is None else "cosine"
    if metric not in ("logit", "cosine", "euclidean"):
        raise ValueError(f"metric must be 'auto', 'logit', 'cosine' or 'euclidean'; "
                         f"got {metric!r}")
    if metric == "logit" and not hasattr(model, "forward_pair"):
        raise ValueError(
            f"metric='logit' needs a model with forward_pair (e.g. siamese_lfw); "
            f"{type(model).__name__} has none. Use metric='cosine'."
        )
    uniq = pd.unique(pd.concat([pairs["left"], pairs["right"]]))
    positions = stimuli.table.index.get_indexer(uniq)
    where = {sid: k for k, sid in enumerate(uniq)}
    left = np.array(pairs["left"].map(where), dtype=np.int64)
    right = np.array(pairs["right"].map(where), dtype=np.int64)
    pipeline = ImagePipeline(getattr(model, "preprocess", None))
    model.to(device)
    if metric == "logit":
        # the pair head needs both images: keep the pair's images in memory
        store = ImageStore(stimuli, pipeline, positions, cache="auto", num_workers=num_workers)
        was_training = model.training
        model.eval()
        out = []
        try:
            with torch.no_grad():
                for a in range(0, len(pairs), batch_size):
                    sl = slice(a, a + batch_size)
                    xa = pipeline.finish(pipeline.to_unit(store.get(left[sl]))).to(device)
                    xb = pipeline.finish(pipeline.to_unit(store.get(right[sl]))).to(device)
                    logits = model.forward_pair(xa, xb)
                    out.append((logits[:, 1] - logits[:, 0]).float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(out).numpy().astype(np.float64), metric
    store = ImageStore(stimuli, pipeline, positions, cache=False, num_workers=num_workers)
    if layer is not None:
        def embed(x):
            return model.forward_layers(x, [layer])[layer].flatten(1)
    else:
        embed = model
    emb = _forward_store(model, pipeline, store, embed, batch_size, device, progress, "embed")
    ea, eb = emb[left].double(), emb[right].double()
    if metric == "cosine":
        sim = torch.nn.functional.cosine_similarity(ea, eb, dim=1)
    else:
        sim = -torch.linalg.vector_norm(ea - eb, dim=1)
    return sim.numpy(), metric


@public
def verification_accuracy(
    model: nn.Module, pairs: pd.DataFrame, stimuli, *, folds: int = 10, metric: str = "auto",
    layer: str | None = None, seed: int = 0, batch_size: int = 256,
    device: str | torch.device = "cpu", num_workers: int = 0, progress: bool = False,
) -> VerificationResult:
    """Face verification accuracy with the LFW protocol.

    Each pair gets a similarity (:func:`pair_scores`). For each fold, the
    threshold maximising accuracy on the *other* folds (:func:`best_threshold`)
    is applied to that fold; the result is the mean over folds and its
    standard error. Folds come from the table's ``fold`` column when it has
    one (LFW ``pairs.txt``), else pairs are dealt into ``folds`` folds
    stratified by ``same`` (seeded).

    Examples
    --------
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_identities
    >>> from facebrain.training import sample_pairs
    >>> faces = synthetic_identities(6, 5, image_size=32)
    >>> net = create("small_resnet", num_classes=6, width=8).eval()
    >>> res = verification_accuracy(net, sample_pairs(faces, 60, folds=3), faces)
    >>> 0.0 <= res.accuracy <= 1.0
    True
    """
    from sklearn.metrics import roc_auc_score

    pairs = check_pairs(pairs, stimuli)
    scores, metric = pair_scores(model, pairs, stimuli, metric=metric, layer=layer,
                                 batch_size=batch_size, device=device,
                                 num_workers=num_workers, progress=progress)
    same = pairs["same"].to_numpy(bool)
    fold = assign_folds(pairs, folds, seed)
    return threshold_cv(scores, same, fold, metric=metric, roc_auc=roc_auc_score)


def assign_folds(pairs: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """The table's ``fold`` column, or a seeded split stratified by ``same``."""
    if "fold" in pairs.columns:
        fold = pd.factorize(pairs["fold"], sort=True)[0].astype(np.int64)
        if fold.max() < 1:
            raise ValueError("the pairs table's 'fold' column has a single fold; need >= 2")
        return fold
    if int(folds) < 2:
        raise ValueError(f"folds must be >= 2; got {folds!r}")
    same = pairs["same"].to_numpy(bool)
    if len(pairs) < folds:
        raise ValueError(f"{len(pairs)} pairs cannot fill {folds} folds; lower folds=")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(pairs), dtype=np.int64)
    offset = 0
    for cls in (True, False):
        rows = rng.permutation(np.flatnonzero(same == cls))
        fold[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return fold


def threshold_cv(scores, same, fold, *, metric: str = "", roc_auc=None) -> VerificationResult:
    """Leave-one-fold-out threshold selection on precomputed scores."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    fold = np.asarray(fold)
    ks = np.unique(fold)
    accs, thrs = [], []
    for k in ks:
        test = fold == k
        t, _ = best_threshold(scores[~test], same[~test])
        accs.append(float(np.mean((scores[test] > t) == same[test])))
        thrs.append(t)
    accs = np.asarray(accs)
    sem = float(accs.std(ddof=1) / np.sqrt(len(accs))) if len(accs) > 1 else float("nan")
    auc = float("nan")
    if roc_auc is not None and 0 < same.sum() < len(same):
        auc = float(roc_auc(same, scores))
    return VerificationResult(accuracy=float(accs.mean()), sem=sem, fold_accuracy=accs,
                              thresholds=np.asarray(thrs), scores=scores, same=same, fold=fold,
                              metric=metric, auc=auc)
