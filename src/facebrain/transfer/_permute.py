"""Cross-validated predictions for the observed labels and every permutation at once.

The permutation null of :func:`facebrain.transfer.probe` refits the whole
per-fold pipeline on permuted training labels. Two things are shared across
permutations here without changing a single prediction:

* the label-free part of each fold's pipeline (``StandardScaler``, the in-fold
  ``pca:N`` / ``srp:N`` reduction) is fitted once per fold, by the same
  ``fit_transform`` / ``transform`` calls a :class:`~sklearn.pipeline.Pipeline`
  makes, and every head (observed and permuted) reads the same matrices;
* for the ``"ridge"`` head (z-scored, more training stimuli than features), the
  fold's covariance is a downdate of one Gram matrix of all stimuli (see
  :class:`_StandardizedGram`) instead of a fresh product per fold;
* for the ``"ridge"`` head (scikit-learn's :class:`~sklearn.linear_model.RidgeClassifier`:
  least squares on one-hot targets with an intercept) the permuted label vectors
  are extra output columns of ONE regularised solve per fold. The fold's
  Cholesky factor (of ``Xc Xc' + alpha I`` when there are fewer training stimuli
  than features, else of ``Xc' Xc + alpha I``) is computed once and applied to
  ``K x (1 + n_permutations)`` right-hand sides. This is the exact solution each
  refit computes, so predictions and accuracies equal the refits' (ties aside,
  which have probability zero for continuous features).

Other heads (logistic, fc, user estimators) are iterative optimisations; each
permutation still gets its own fit (an exact refit; the features are shared).

The permutation scheme is the one :func:`facebrain.transfer.probe` documents:
permutation ``p`` draws ``numpy.random.default_rng([seed, 1 + p])`` and permutes
each training fold's labels in fold order. The same draws are used for every
layer (paired permutations), which is what makes the max-statistic over layers
a valid family-wise correction.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.base import clone

from ..errors import ParameterError
from ._cv import Folds
from ._heads import blas_threads_for, make_probe_pipeline

__all__ = ["cv_predict_all", "permuted_training_labels", "ridge_predict_columns"]

#: right-hand-side columns solved per block (bounds memory for many classes x permutations)
_BLOCK_COLUMNS = 2048


def permuted_training_labels(y: np.ndarray, folds: Folds, seed: int,
                             n_permutations: int) -> list[np.ndarray]:
    """Per fold, an array (n_permutations, n_train) of permuted training labels.

    Permutation ``p`` uses ``default_rng([seed, 1 + p])`` and permutes the folds'
    training labels in fold order, exactly like a per-permutation refit loop.
    """
    splits = list(folds.splits())
    out = [np.empty((n_permutations, len(tr)), y.dtype) for tr, _ in splits]
    for p in range(n_permutations):
        rng = np.random.default_rng([seed, 1 + p])
        for k, (train, _) in enumerate(splits):
            out[k][p] = rng.permutation(y[train])
    return out


def ridge_predict_columns(X_train: np.ndarray, labels: np.ndarray, X_test: np.ndarray,
                          n_classes: int, alpha: float) -> np.ndarray:
    """Class predictions of a ridge classifier for many label vectors at once.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
    labels : ndarray of shape (n_sets, n_train)
        Class codes ``0..n_classes-1``; each row is one training label vector.
    X_test : ndarray of shape (n_test, n_features)
    n_classes : int
    alpha : float
        Ridge penalty (> 0), as ``RidgeClassifier(alpha=...)``.

    Returns
    -------
    ndarray of shape (n_sets, n_test)
        Predicted class codes: the argmax of ``Xc_test W + mean(Y)`` with ``W`` the
        ridge solution for one-hot targets (RidgeClassifier's decision up to an
        affine map that keeps the argmax).
    """
    X_train = np.asarray(X_train, np.float64)
    X_test = np.asarray(X_test, np.float64)
    n, d = X_train.shape
    mean = X_train.mean(axis=0)
    Xc = X_train - mean
    Tc = X_test - mean
    if n <= d:  # kernel form: factor the n x n Gram once
        G = Xc @ Xc.T
        G.flat[:: n + 1] += alpha
        factor = linalg.cho_factor(G, lower=False, check_finite=False)
        cross = Tc @ Xc.T                                     # (n_test, n_train)

        def decision(Yc):
            return cross @ linalg.cho_solve(factor, Yc, check_finite=False)
    else:  # primal form: factor the d x d covariance once
        C = Xc.T @ Xc
        C.flat[:: d + 1] += alpha
        factor = linalg.cho_factor(C, lower=False, check_finite=False)

        def decision(Yc):
            return Tc @ linalg.cho_solve(factor, Xc.T @ Yc, check_finite=False)

    n_sets = labels.shape[0]
    per_block = max(1, _BLOCK_COLUMNS // n_classes)
    pred = np.empty((n_sets, len(X_test)), np.int64)
    rows = np.arange(n)
    for a in range(0, n_sets, per_block):
        lab = labels[a:a + per_block]
        m = len(lab)
        Y = np.zeros((n, m, n_classes))
        Y[rows[:, None], np.arange(m)[None, :], lab.T] = 1.0
        Y = Y.reshape(n, m * n_classes)
        ymean = Y.mean(axis=0)
        dec = decision(Y - ymean) + ymean
        pred[a:a + m] = dec.reshape(len(X_test), m, n_classes).argmax(axis=2).T
    return pred


class _StandardizedGram:
    """Per-fold ridge systems of z-scored features from one Gram matrix of all stimuli.

    With ``X0 = X - mean(X)`` and ``G = X0' X0`` computed once, a training fold's
    z-scored, centred covariance is ``D^-1 (G - X0_te' X0_te - n mu mu') D^-1``
    (``mu``: the fold's training mean of ``X0``; ``D``: its StandardScaler scales),
    so each fold costs a rank-``n_test`` downdate instead of a fresh ``n_train x d^2``
    product. Only used when the scaler is the sole label-free step and the fold
    has more training stimuli than features (the primal form).
    """

    def __init__(self, X: np.ndarray) -> None:
        X = np.asarray(X, np.float64)
        self.offset = X.mean(axis=0)
        self.X0 = X - self.offset
        self.G = self.X0.T @ self.X0

    def predict(self, train, test, labels, n_classes, alpha) -> np.ndarray | None:
        """Predictions (n_sets, n_test), or None when the fold must be refitted directly."""
        X0te = self.X0[test]
        n_all, d = self.X0.shape
        n = len(train)
        mu = (self.X0.sum(axis=0) - X0te.sum(axis=0)) / n      # training mean of X0
        C = self.G - X0te.T @ X0te - n * np.outer(mu, mu)       # centred training scatter
        var = np.diag(C) / n
        if np.any(var * n <= 1e-6 * np.diag(self.G)):
            return None  # a unit (nearly) constant in this training fold: the downdate lost
            # too many digits to reproduce StandardScaler's scale; refit the fold directly
        mean = mu + self.offset
        scale = np.sqrt(np.maximum(var, 0))
        scale[_constant(var, mean, n)] = 1.0                    # StandardScaler's zero handling
        C /= scale[:, None]
        C /= scale[None, :]
        C.flat[:: d + 1] += alpha
        try:
            factor = linalg.cho_factor(C, lower=False, check_finite=False)
        except linalg.LinAlgError:
            return None
        Tc = (X0te - mu) / scale
        n_sets = labels.shape[0]
        per_block = max(1, _BLOCK_COLUMNS // n_classes)
        pred = np.empty((n_sets, len(test)), np.int64)
        for a in range(0, n_sets, per_block):
            lab = labels[a:a + per_block]
            m = len(lab)
            Y = np.zeros((n_all, m, n_classes))                 # test rows stay zero
            Y[train[:, None], np.arange(m)[None, :], lab.T] = 1.0
            Y = Y.reshape(n_all, m * n_classes)
            ymean = Y.sum(axis=0) / n
            rhs = self.X0.T @ Y - n * np.outer(mu, ymean)      # Xc' Yc, before scaling
            rhs /= scale[:, None]
            dec = Tc @ linalg.cho_solve(factor, rhs, check_finite=False) + ymean
            pred[a:a + m] = dec.reshape(len(test), m, n_classes).argmax(axis=2).T
        return pred


def _constant(var, mean, n) -> np.ndarray:
    """Features StandardScaler treats as constant (its scale is set to 1)."""
    try:
        from sklearn.preprocessing._data import _is_constant_feature
    except ImportError:  # pragma: no cover - older scikit-learn
        return var == 0
    return _is_constant_feature(var, mean, n)


def _ridge_alpha(head_kw: dict | None) -> float:
    kw = dict(head_kw or {})
    alpha = kw.pop("alpha", 1.0)
    if kw:
        raise ParameterError(
            f"head='ridge' takes only head_kw={{'alpha': ...}}; got extra keys {sorted(kw)}"
        )
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ParameterError(f"head_kw alpha must be a number > 0; got {alpha!r}") from None
    if not alpha > 0:
        raise ParameterError(f"head_kw alpha must be > 0 for head='ridge'; got {alpha!r}")
    return alpha


def cv_predict_all(X: np.ndarray, y: np.ndarray, folds: Folds, *, head, standardize: bool,
                   reduce, seed: int, head_kw, perm_labels: list[np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions for the true labels and for every permutation.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_units)
    y : ndarray of shape (n_stimuli,)
        Class codes.
    folds : Folds
    head, standardize, reduce, seed, head_kw
        As in :func:`facebrain.transfer.probe`.
    perm_labels : list of ndarray, optional
        From :func:`permuted_training_labels` (None: no permutations).

    Returns
    -------
    pred : ndarray of shape (n_stimuli,)
        Predictions of the heads trained on the true labels.
    null_pred : ndarray of shape (n_permutations, n_stimuli)
        Predictions of the heads trained on permuted labels (tested on every stimulus
        of its test fold).
    """
    n_perm = 0 if perm_labels is None else perm_labels[0].shape[0]
    n_classes = int(y.max()) + 1
    pred = np.empty(len(y), np.int64)
    null_pred = np.empty((n_perm, len(y)), np.int64)
    ridge = isinstance(head, str) and head == "ridge"
    alpha = _ridge_alpha(head_kw) if ridge else None
    n_train_min = min(len(tr) for tr, _ in folds.splits())
    gram = (_StandardizedGram(X) if ridge and standardize and reduce is None
            and n_train_min > X.shape[1] and folds.n_folds > 2 else None)
    with blas_threads_for(X):
        for k, (train, test) in enumerate(folds.splits()):
            if gram is not None:
                labels = y[train][None, :]
                if n_perm:
                    labels = np.concatenate([labels, perm_labels[k]])
                out = gram.predict(train, test, labels, n_classes, alpha)
                if out is not None:
                    pred[test] = out[0]
                    null_pred[:, test] = out[1:]
                    continue
            pipe = make_probe_pipeline(head, standardize=standardize, reduce=reduce, seed=seed,
                                 head_kw=head_kw)
            if len(pipe) > 1:
                prep = pipe[:-1]
                Xtr = prep.fit_transform(X[train])
                Xte = prep.transform(X[test])
            else:
                Xtr, Xte = X[train], X[test]
            if ridge:
                labels = y[train][None, :]
                if n_perm:
                    labels = np.concatenate([labels, perm_labels[k]])
                out = ridge_predict_columns(Xtr, labels, Xte, n_classes, alpha)
                pred[test] = out[0]
                null_pred[:, test] = out[1:]
                continue
            head_est = pipe[-1]
            pred[test] = clone(head_est).fit(Xtr, y[train]).predict(Xte)
            for p in range(n_perm):
                null_pred[p, test] = clone(head_est).fit(Xtr, perm_labels[k][p]).predict(Xte)
    return pred, null_pred
