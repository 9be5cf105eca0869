"""RidgeEncoder: ridge regression with the penalty chosen per target (voxel) by cross-validation."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from ._solvers import decompose, fold_scores, pick_solver, refit_coef

__all__ = ["DEFAULT_ALPHAS", "RidgeEncoder", "check_alphas", "cv_alpha_scores", "select_alphas"]

SCORINGS = ("neg_mse", "r2")

#: ``np.logspace(-2, 7, 19)`` as a tuple (an array default breaks scikit-learn's repr).
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 19))


def check_alphas(alphas) -> np.ndarray:
    """1-D float array of strictly positive, finite alphas (error names the bad values)."""
    a = np.atleast_1d(np.asarray(alphas, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence; got shape {a.shape}.")
    bad = a[~(np.isfinite(a) & (a > 0))]
    if bad.size:
        raise ValueError(f"alphas must be positive and finite; got {bad.tolist()} among "
                         f"{a.tolist()}. Use e.g. np.logspace(-2, 7, 19).")
    return a


def cv_alpha_scores(X, Y, folds, alphas, *, fit_intercept=True, solver="auto",
                    scoring="neg_mse", batch_size=None, decs=None, score_dtype="float64"):
    """Mean cross-validated score of each alpha for each target.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    folds : list of (train_idx, test_idx)
    decs : list of dict, optional
        Precomputed :func:`decompose` of each fold's training X.

    Returns
    -------
    scores : ndarray of shape (n_alphas, n_targets)
        Mean over folds (himalaya's ``scores.mean(0)``).
    """
    n_t = Y.shape[1]
    bs = n_t if not batch_size else int(batch_size)
    total = np.zeros((alphas.size, n_t))
    for k, (tr, te) in enumerate(folds):
        dec = decs[k] if decs is not None else decompose(X[tr], solver, fit_intercept)
        for a in range(0, n_t, bs):
            sl = slice(a, a + bs)
            total[:, sl] += fold_scores(dec, X[te], Y[tr, sl], Y[te, sl], alphas, fit_intercept,
                                        scoring, score_dtype)
    return total / len(folds)


def select_alphas(scores, alphas, alpha_per_target=True):
    """Index of the best alpha per target, as himalaya's ``_select_best_alphas``.

    A slope of ``1e-10 * log(alpha)`` breaks exact ties towards larger alphas.
    """
    s = scores + (np.log(alphas) * 1e-10)[:, None]
    if alpha_per_target:
        return np.argmax(s, axis=0)
    return np.full(scores.shape[1], np.argmax(s.mean(1)))


class RidgeEncoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression choosing the penalty per target by K-fold cross-validation.

    One eigendecomposition per fold (primal ``X.T X`` or dual ``X X.T``, picked by
    shape) serves every alpha and every target; targets are processed in
    batches. The chosen model equals scikit-learn ``Ridge(alpha=best_alphas_[j])``
    refitted on all data, target by target.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        Positive penalties to try (default ``np.logspace(-2, 7, 19)``).
    cv : int, cross-validation splitter or iterable of (train, test)
        Inner folds for choosing alpha (an int means ``KFold(cv)``, no shuffling,
        as in himalaya).
    alpha_per_target : bool
        One alpha per target (True) or one shared alpha maximising the mean score.
    fit_intercept : bool
        Centre X and y on each training set (as himalaya's kernel centring).
    solver : {"auto", "primal", "dual"}
    scoring : {"neg_mse", "r2"}
        Inner-CV score; ``neg_mse`` is himalaya's default.
    batch_size : int or None
        Targets per batch (None: all at once).
    score_dtype : {"float64", "float32"}
        Precision of the inner-CV prediction product only (``float32`` is about 2-3x
        faster; the squared error is assembled in float64 relative to the predictions,
        and the refit is always float64).

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features) or (n_features,)
    intercept_ : ndarray of shape (n_targets,) or float
    best_alphas_ : ndarray of shape (n_targets,)
    alpha_ : float or ndarray
        ``best_alphas_`` (a float for a 1-D ``y``).
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean inner-CV score of every alpha.
    solver_ : str

    Examples
    --------
    >>> import numpy as np
    >>> from facebrain.encoding import RidgeEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> Y = X @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(40, 3))
    >>> RidgeEncoder().fit(X, Y).best_alphas_.shape
    (3,)
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, *, cv=5, alpha_per_target=True,
                 fit_intercept=True, solver="auto", scoring="neg_mse", batch_size=None,
                 score_dtype="float64"):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.scoring = scoring
        self.batch_size = batch_size
        self.score_dtype = score_dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _folds(self, X, y, groups):
        if (isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool)
                and X.shape[0] < max(2, int(self.cv))):
                raise ValueError(
                    f"RidgeEncoder got n_samples = {X.shape[0]} but cv={self.cv} folds need at "
                    f"least {max(2, int(self.cv))} samples; pass more samples or a smaller cv."
                )
        cv = check_cv(self.cv)
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]

    def fit(self, X, y, groups=None):
        """Choose alphas by inner CV and refit on all samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Passed to the CV splitter (e.g. identities for ``GroupKFold``).
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=np.float64, ensure_min_samples=2)
        alphas = check_alphas(self.alphas)
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring={self.scoring!r}; choose one of {SCORINGS}.")
        if self.score_dtype not in ("float64", "float32"):
            raise ValueError(f"score_dtype={self.score_dtype!r}; choose 'float64' or 'float32'.")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be a positive int or None.")
        ravel = y.ndim == 1
        Y = y[:, None] if ravel else y
        folds = self._folds(X, Y, groups)
        self.solver_ = pick_solver(self.solver, *X.shape)
        scores = cv_alpha_scores(X, Y, folds, alphas, fit_intercept=self.fit_intercept,
                                 solver=self.solver, scoring=self.scoring,
                                 batch_size=self.batch_size, score_dtype=self.score_dtype)
        best = alphas[select_alphas(scores, alphas, self.alpha_per_target)]
        dec = decompose(X, self.solver, self.fit_intercept)
        coef, intercept = refit_coef(dec, Y, best, self.fit_intercept)
        self.cv_scores_ = scores
        self.best_alphas_ = best
        self.coef_ = coef.T[0] if ravel else coef.T
        self.intercept_ = float(intercept[0]) if ravel else intercept
        self.alpha_ = float(best[0]) if ravel else best
        return self

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_
