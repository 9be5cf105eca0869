"""``probe``: cross-validated linear read-out of a label from each layer (TransferResult)."""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from .._boundary import public
from .._utils import check_activations, check_label
from ..activations import _accessor  # noqa: F401  (registers acts.fb, used below)
from ..errors import MissingKeyError, ParameterError, ShapeError
from ._cv import Folds, check_folds, make_folds
from ._heads import blas_threads_for, make_probe_pipeline
from ._permute import cv_predict_all, permuted_training_labels

__all__ = ["permutation_p_values", "probe"]

CHANCE_METHOD = (
    "majority-class rate of each test fold (the accuracy of always predicting the test fold's "
    "most frequent class), averaged over folds like accuracy"
)
P_VALUE_METHOD = (
    "(1 + #{null >= observed}) / (1 + n_permutations) per layer, uncorrected; null: training "
    "labels permuted within each training fold, scaler/reduction/head refitted, tested on the "
    "true test labels"
)
P_VALUE_FWE_METHOD = (
    "max-statistic over layers: (1 + #{null_max >= observed}) / (1 + n_permutations), "
    "null_max[p] = max over layers of null_accuracy[layer, p]; the same label permutation p is "
    "applied to every layer (paired), so this corrects for choosing the best of the probed "
    "layers (family-wise error over layers)"
)
SELECTION = "best layer = argmax of accuracy_mean over the probed layers"


def _layers(acts, layers) -> list[str]:
    import facebrain.activations  # noqa: F401  (registers acts.fb)

    check_activations(acts)
    available = acts.fb.layers
    if layers is None:
        if not available:
            raise ShapeError("the Activations have no layer variables (dims stimulus, *_unit)")
        return available
    if isinstance(layers, str):
        layers = [layers]
    unknown = [ly for ly in layers if ly not in available]
    if unknown:
        raise MissingKeyError(f"Activations have no layer(s) {unknown}; available layers: {available}")
    return list(layers)


def _target(acts, target: str):
    import facebrain.activations  # noqa: F401

    check_activations(acts)
    check_label(target, "target")
    y, classes = acts.fb.labels(target)
    if len(classes) < 2:
        raise ParameterError(
            f"target {target!r} has a single class {classes}; a probe needs at least 2 classes"
        )
    return y, classes


def cv_predict(X, y, folds: Folds, *, head, standardize, reduce, seed, head_kw,
               perm_seed=None) -> np.ndarray:
    """Out-of-fold predictions (class codes); training labels permuted if ``perm_seed``."""
    pred = np.empty(len(y), np.int64)
    rng = np.random.default_rng(perm_seed) if perm_seed is not None else None
    with blas_threads_for(X):
        for train, test in folds.splits():
            y_train = y[train]
            if rng is not None:
                y_train = rng.permutation(y_train)
            pipe = make_probe_pipeline(head, standardize=standardize, reduce=reduce, seed=seed,
                                 head_kw=head_kw)
            pipe.fit(X[train], y_train)
            pred[test] = pipe.predict(X[test])
    return pred


def _fold_accuracy(pred, y, folds: Folds) -> np.ndarray:
    return np.array([np.mean(pred[test] == y[test]) for _, test in folds.splits()])


def permutation_p_values(observed: np.ndarray, null: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer and max-statistic (family-wise) permutation p-values.

    Parameters
    ----------
    observed : ndarray of shape (n_layers,)
        Mean cross-validated accuracy of each layer.
    null : ndarray of shape (n_layers, n_permutations)
        Accuracy of each layer under each permutation; permutation ``p`` must be the
        same label permutation for every layer (paired).

    Returns
    -------
    p_value : ndarray of shape (n_layers,)
        ``(1 + #{null[l] >= observed[l]}) / (1 + n_permutations)``.
    p_value_fwe : ndarray of shape (n_layers,)
        ``(1 + #{null_max >= observed[l]}) / (1 + n_permutations)`` with
        ``null_max[p] = max_l null[l, p]``; ``>= p_value`` for every layer.
        Both are NaN when there are no permutations.
    """
    observed = np.asarray(observed, float)
    null = np.asarray(null, float)
    n_perm = null.shape[1]
    if n_perm == 0:
        nan = np.full(len(observed), np.nan)
        return nan, nan.copy()
    tol = 1e-12  # accuracies are ratios of counts: equal values must count as >=
    p = (1 + (null >= observed[:, None] - tol).sum(axis=1)) / (1 + n_perm)
    null_max = null.max(axis=0)
    p_fwe = (1 + (null_max[None, :] >= observed[:, None] - tol).sum(axis=1)) / (1 + n_perm)
    return p, p_fwe


def _null_task(X, y, folds, perm_seeds, kw):
    return [float(_fold_accuracy(cv_predict(X, y, folds, perm_seed=s, **kw), y, folds).mean())
            for s in perm_seeds]


@public
def probe(
    acts: xr.Dataset,
    target: str,
    *,
    layers=None,
    cv="leave-identity-out",
    head="logistic",
    standardize: bool = True,
    n_permutations: int = 0,
    n_folds: int = 10,
    seed: int = 0,
    client=None,
    reduce: str | None = None,
    head_kw: dict | None = None,
) -> xr.Dataset:
    """Cross-validated decoding of ``target`` from each layer: a TransferResult.

    For every fold, standardisation (and ``reduce``) and the head are fitted on
    the training stimuli only, then tested on the held-out fold.

    Parameters
    ----------
    acts : Activations
        From :func:`facebrain.extract` (in memory or lazy).
    target : str
        Stimulus label to decode (``"expression"``, ``"identity"``...).
    layers : str or list of str, optional
        Layers to probe (all by default).
    cv : str or mapping
        ``"leave-identity-out"``, ``"leave-expression-out"``, ``"leave-view-out"``,
        ``"kfold"``, ``"kdef10"``, a label column holding folds, or a mapping
        ``stimulus_id -> fold`` (see :func:`make_folds`).
    head : {"logistic", "fc", "ridge"} or sklearn classifier
        ``"logistic"``: multinomial :class:`~sklearn.linear_model.LogisticRegression`
        (lbfgs); ``"fc"``: :class:`TorchLinearClassifier` (torch Linear + cross-entropy);
        ``"ridge"``: :class:`~sklearn.linear_model.RidgeClassifier` (``head_kw={"alpha": a}``,
        default 1.0), whose permutations share one solve per fold (exact; see Notes).
    standardize : bool
        Z-score each unit with the training fold's mean and sd.
    n_permutations : int
        Permutation test size; 0 skips it (``p_value`` and ``p_value_fwe`` are NaN).
    n_folds : int
        Folds of ``leave-identity-out`` / ``kfold``.
    seed : int
        Seeds the fold assignment, the heads and the permutations.
    client : dask.distributed.Client, optional
        Run the permutations on a cluster (same numbers as locally).
    reduce : {"pca:N", "srp:N"}, optional
        Reduction fitted inside each training fold.
    head_kw : dict, optional
        Parameters of a named head (e.g. ``{"C": 0.1}`` or ``{"optimizer": "adam"}``).

    Returns
    -------
    TransferResult : xarray.Dataset
        ``accuracy(layer, fold)``, ``accuracy_mean/sem(layer)``, ``chance``,
        ``chance_fold(fold)``, ``p_value(layer)`` (uncorrected), ``p_value_fwe(layer)``
        (corrected for choosing among the probed layers), ``null_accuracy(layer,
        permutation)``, ``confusion(layer, true, predicted)``, ``prediction(layer,
        stimulus)``, ``test_fold(stimulus)``; attrs ``target``, ``cv``, ``head``,
        ``model``, ``best_layer``, ``selection``, ``p_value_method``,
        ``p_value_fwe_method``, ...

    Notes
    -----
    One layer at a time is loaded into memory as float64 (lazy, store-backed
    Activations are computed then); reduce large early layers at extraction
    (``extract(..., reduce="srp:4096")``) before probing them.

    Permutation ``p`` permutes each training fold's labels with
    ``default_rng([seed, 1 + p])``, the same permutation for every layer, so the
    null distribution of the best layer's accuracy is the distribution of
    ``null_max[p] = max_layer null_accuracy[layer, p]``. With ``n`` permutations:

    * ``p_value[l] = (1 + #{null_accuracy[l, :] >= observed[l]}) / (1 + n)``;
    * ``p_value_fwe[l] = (1 + #{null_max >= observed[l]}) / (1 + n)`` (max statistic,
      Nichols & Holmes 2002), the value to quote for the best layer, which is chosen
      by mean accuracy (attr ``best_layer``). ``p_value_fwe >= p_value``.

    The label-free steps of each fold (scaler, reduction) are fitted once and shared
    by the observed and permuted heads. ``head="ridge"`` solves all permutations as
    extra output columns of one Cholesky-factored ridge problem per fold: the exact
    refit answers at a fraction of the cost. Iterative heads (logistic, fc) cost
    ``n_permutations x n_folds`` fits per layer; pass ``client=`` to spread them
    over a dask cluster.

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> res = probe(acts, "expression", cv="leave-identity-out", n_folds=3,
    ...             n_permutations=5)
    >>> 0.0 <= float(res.accuracy_mean.sel(layer="avgpool")) <= 1.0
    True
    """
    layers = _layers(acts, layers)
    from ..activations import check_pca_leakage

    check_pca_leakage(acts, layers, analysis="transfer.probe")
    y, classes = _target(acts, target)
    folds = make_folds(acts, cv, target=target, n_folds=n_folds, seed=seed)
    check_folds(folds, y, classes, target)
    if not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise ParameterError(f"n_permutations must be an integer >= 0; got {n_permutations!r}")
    kw = {"head": head, "standardize": standardize, "reduce": reduce, "seed": seed,
          "head_kw": head_kw}
    n_classes = len(classes)
    acc = np.empty((len(layers), folds.n_folds))
    conf = np.zeros((len(layers), n_classes, n_classes), np.int64)
    preds = np.empty((len(layers), len(y)), np.int64)
    null = np.full((len(layers), n_permutations), np.nan)
    perm_seeds = [[seed, 1 + p] for p in range(n_permutations)]
    # labels of every permutation, drawn once and shared by every layer (paired permutations)
    shared = client is None or (isinstance(head, str) and head == "ridge")
    perm_labels = (permuted_training_labels(y, folds, seed, n_permutations)
                   if n_permutations and shared else None)
    futures = {}
    for i, layer in enumerate(layers):
        X = acts.fb.matrix(layer)
        if shared:
            pred, null_pred = cv_predict_all(X, y, folds, perm_labels=perm_labels, **kw)
            null[i] = [_fold_accuracy(q, y, folds).mean() for q in null_pred]
        else:
            pred = cv_predict(X, y, folds, **kw)
        preds[i] = pred
        acc[i] = _fold_accuracy(pred, y, folds)
        np.add.at(conf[i], (y, pred), 1)
        if n_permutations and not shared:
            [Xf] = client.scatter([X], hash=False)
            n_chunks = max(1, min(n_permutations,
                                  2 * len(client.scheduler_info().get("workers", {}))))
            bounds = np.linspace(0, n_permutations, n_chunks + 1).round().astype(int)
            futures[i] = [client.submit(_null_task, Xf, y, folds, perm_seeds[a:b], kw,
                                        pure=False)
                          for a, b in itertools.pairwise(bounds) if b > a]
    for i, futs in futures.items():
        null[i] = np.concatenate([np.asarray(f.result()) for f in futs])
    observed = acc.mean(axis=1)
    p_value, p_value_fwe = permutation_p_values(observed, null)
    best = int(np.argmax(observed))
    chance_fold = np.array([np.bincount(y[test], minlength=n_classes).max() / len(test)
                            for _, test in folds.splits()])
    n_train = np.array([len(tr) for tr, _ in folds.splits()])
    n_test = np.array([len(te) for _, te in folds.splits()])
    sem = acc.std(axis=1, ddof=1) / np.sqrt(folds.n_folds)
    cls = np.asarray(classes, dtype=str)
    ds = xr.Dataset(
        {
            "accuracy": (("layer", "fold"), acc),
            "accuracy_mean": ("layer", observed),
            "accuracy_sem": ("layer", sem),
            "chance": ((), float(chance_fold.mean())),
            "chance_fold": ("fold", chance_fold),
            "p_value": ("layer", p_value),
            "p_value_fwe": ("layer", p_value_fwe),
            "null_accuracy": (("layer", "permutation"), null),
            "confusion": (("layer", "true", "predicted"), conf),
            "prediction": (("layer", "stimulus"), cls[preds]),
            "test_fold": ("stimulus", folds.assignment),
            "n_train": ("fold", n_train),
            "n_test": ("fold", n_test),
        },
        coords={
            "layer": np.asarray(layers, dtype=str),
            "fold": np.asarray(folds.names, dtype=str),
            "true": cls,
            "predicted": cls,
            "permutation": np.arange(n_permutations),
            "stimulus": np.asarray(acts["stimulus"].values).astype(str),
        },
        attrs={
            "target": target,
            "cv": folds.scheme,
            "head": head if isinstance(head, str) else type(head).__name__,
            "model": str(acts.attrs.get("model", "")),
            "standardize": int(bool(standardize)),
            "reduce": reduce or "none",
            "seed": int(seed),
            "n_permutations": int(n_permutations),
            "chance_method": CHANCE_METHOD,
            "p_value_method": P_VALUE_METHOD,
            "p_value_fwe_method": P_VALUE_FWE_METHOD,
            "selection": SELECTION,
            "best_layer": str(layers[best]),
        },
    )
    return ds
