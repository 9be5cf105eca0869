"""RidgeEncoder: ridge regression with the penalty chosen per target (voxel) by cross-validation."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import AlphaGridWarning, ParameterError
from ._solvers import cached_fold_decompositions, fold_scores, pick_solver, refit
from ._torch_ops import check_device

__all__ = ["DEFAULT_ALPHAS", "AlphaGridWarning", "RidgeEncoder", "check_alphas",
           "check_grid_edges", "cv_alpha_scores", "select_alphas"]

SCORINGS = ("neg_mse", "r2")

#: ``np.logspace(-2, 7, 19)`` as a tuple (an array default breaks scikit-learn's repr).
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 19))


def check_alphas(alphas) -> np.ndarray:
    """1-D float array of strictly positive, finite alphas (error names the bad values)."""
    a = np.atleast_1d(np.asarray(alphas, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise ParameterError(f"alphas must be a non-empty 1-D sequence; got shape {a.shape}. "
                             "Use e.g. np.logspace(-2, 7, 19).")
    bad = a[~(np.isfinite(a) & (a > 0))]
    if bad.size:
        raise ParameterError(f"alphas must be positive and finite; got {bad.tolist()} among "
                             f"{a.tolist()}. Use e.g. np.logspace(-2, 7, 19).")
    return a


def cv_alpha_scores(X, Y, folds, alphas, *, fit_intercept=True, solver="auto",
                    scoring="neg_mse", batch_size=None, decs=None, score_dtype="float64",
                    device=None):
    """Mean cross-validated score of each alpha for each target.

    Each fold is factorised once (and cached, see :mod:`._solvers`); voxel batches reuse it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    folds : list of (train_idx, test_idx)
    decs : list of dict, optional
        Precomputed :func:`~._solvers.fold_decompositions` of ``folds``.

    Returns
    -------
    scores : ndarray of shape (n_alphas, n_targets)
        Mean over folds (himalaya's ``scores.mean(0)``).
    """
    n_t = Y.shape[1]
    bs = n_t if not batch_size else int(batch_size)
    if decs is None:
        n_train = min(len(tr) for tr, _ in folds)
        decs = cached_fold_decompositions(X, folds, pick_solver(solver, n_train, X.shape[1]),
                                          fit_intercept)
    total = np.zeros((alphas.size, n_t))
    for dec, (tr, te) in zip(decs, folds):
        for a in range(0, n_t, bs):
            sl = slice(a, a + bs)
            total[:, sl] += fold_scores(dec, Y[:, sl], tr, te, alphas, fit_intercept,
                                        scoring, score_dtype, device)
    return total / len(folds)


#: relative size of the slope that breaks ties towards larger alphas
TIE_SLOPE = 1e-10


def select_alphas(scores, alphas, alpha_per_target=True):
    """Index of the best alpha per target, as himalaya's ``_select_best_alphas``, scale-free.

    himalaya adds ``1e-10 * log(alpha)`` to the scores to break exact ties towards
    larger alphas; with targets in small units (e.g. Y * 1e-5, mean squared errors of
    1e-10) that slope outweighs the scores. Here each target's scores are first divided
    by their largest magnitude over alphas, so the slope is relative: scaling Y by any
    factor picks the same alphas, and with unit-scale targets the choice equals
    himalaya's except within ~1e-10 of a tie.
    """
    scores = np.asarray(scores, dtype=float)
    slope = np.log(alphas) * TIE_SLOPE
    if not alpha_per_target:
        m = scores.mean(1)
        top = np.abs(m).max(initial=0.0)
        m = m / top if top > 0 else m
        return np.full(scores.shape[1], np.argmax(m + slope))
    mag = np.abs(scores).max(0, initial=0.0)
    mag = np.where(mag > 0, mag, 1.0)
    return np.argmax(scores / mag[None, :] + slope[:, None], axis=0)



#: fraction of targets on one edge of the grid above which fit warns
EDGE_FRACTION = 0.05


def check_grid_edges(best_idx: np.ndarray, alphas: np.ndarray, stacklevel: int = 3) -> None:
    """Warn (:class:`AlphaGridWarning`) when > 5% of targets chose the smallest or largest alpha."""
    n = best_idx.size
    if n == 0 or alphas.size < 2:
        return
    lo = float(np.mean(best_idx == int(np.argmin(alphas))))
    hi = float(np.mean(best_idx == int(np.argmax(alphas))))
    parts = []
    if lo > EDGE_FRACTION:
        parts.append(f"the smallest alpha ({alphas.min():g}) for {100 * lo:.1f}% of targets "
                     "(the best penalty may be smaller: extend the grid downwards)")
    if hi > EDGE_FRACTION:
        parts.append(f"the largest alpha ({alphas.max():g}) for {100 * hi:.1f}% of targets "
                     "(targets without predictable signal keep improving as the penalty grows;"
                     " if they should be predictable, extend the grid upwards)")
    if parts:
        import warnings

        warnings.warn("Cross-validation chose " + " and ".join(parts) + f", more than "
                      f"{100 * EDGE_FRACTION:.0f}%; e.g. alphas=np.logspace("
                      f"{np.log10(alphas.min()) - 2:.0f}, {np.log10(alphas.max()) + 2:.0f}, "
                      f"{alphas.size + 4}).", AlphaGridWarning, stacklevel=user_stacklevel())


@public
class RidgeEncoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression choosing the penalty per target by K-fold cross-validation.

    One eigendecomposition per fold (primal ``X.T X`` or the centred linear kernel
    ``X X.T``, picked by shape) serves every alpha and every target; targets are
    processed in batches. The chosen model equals scikit-learn
    ``Ridge(alpha=best_alphas_[j])`` refitted on all data, target by target, and the
    alphas equal himalaya ``KernelRidgeCV``'s (same folds, same intercept setting).

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
        Targets per batch (None: all at once; memory stays bounded either way).
    score_dtype : {"float64", "float32"}
        Precision of the inner-CV scoring only (the refit is always float64; targets
        are rescaled per voxel by a power of two). ``float64``: exact partial fractions
        certified to 1e-10 per score. ``float32``: the same partial fractions with the
        two largest GEMMs (``T.T Yc``; ``H B`` off its diagonal blocks) in float32, every
        other step float64; scores whose rounding bound exceeds 1e-2 are recomputed in
        float64 (with ``device``: the stacked prediction GEMM in float32). Measured on
        the benchmark profile (``benchmarks/bench_encoding.py``): the same alphas as
        float64 on 100% of voxels, CV scores within ~5e-7 relative.
    device : str or None
        None: numpy. ``"cuda"`` (or ``"cpu"``): the inner-CV GEMMs and the refit
        products run in torch on that device; results equal the numpy path at float32
        tolerance (``score_dtype="float32"``) or float64 rounding.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features) or (n_features,)
        In dual form formed on first access from ``dual_coef_`` (as himalaya keeps
        dual weights); ``predict`` does not need it.
    dual_coef_ : ndarray of shape (n_samples, n_targets) or None
        Kernel weights (dual form only). The fit keeps them in the kernel's eigenbasis
        (``U``, ``B``: half the refit's GEMM work) and forms ``U @ B`` on first access;
        ``predict`` uses ``(K U) B`` and does not need it.
    intercept_ : ndarray of shape (n_targets,) or float
    best_alphas_ : ndarray of shape (n_targets,)
    alpha_ : float or ndarray
        ``best_alphas_`` (a float for a 1-D ``y``).
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean inner-CV score of every alpha.
    solver_ : str

    Warns
    -----
    AlphaGridWarning
        When more than 5% of targets chose the smallest or the largest alpha.

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
                 score_dtype="float64", device=None):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.scoring = scoring
        self.batch_size = batch_size
        self.score_dtype = score_dtype
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _folds(self, X, y, groups):
        if (isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool)
                and X.shape[0] < max(2, int(self.cv))):
                raise ParameterError(
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
            raise ParameterError(f"scoring={self.scoring!r}; choose one of {SCORINGS}.")
        if self.score_dtype not in ("float64", "float32"):
            raise ParameterError(f"score_dtype={self.score_dtype!r}; choose 'float64' or "
                                 "'float32'.")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ParameterError(f"batch_size={self.batch_size!r} must be a positive int or "
                                 "None.")
        device = check_device(self.device)
        ravel = y.ndim == 1
        Y = np.asarray(y[:, None] if ravel else y, dtype=np.float64)
        folds = self._folds(X, Y, groups)
        self.solver_ = pick_solver(self.solver, *X.shape)
        scores = cv_alpha_scores(X, Y, folds, alphas, fit_intercept=self.fit_intercept,
                                 solver=self.solver, scoring=self.scoring,
                                 batch_size=self.batch_size, score_dtype=self.score_dtype,
                                 device=device)
        idx = select_alphas(scores, alphas, self.alpha_per_target)
        if self.alpha_per_target:
            check_grid_edges(idx, alphas)
        best = alphas[idx]
        sol = refit(X, Y, best, self.solver_, self.fit_intercept, device)
        self.cv_scores_ = scores
        self.best_alphas_ = best
        self._ravel = ravel
        if "coef" in sol:
            self._coef = sol["coef"].T[0] if ravel else sol["coef"].T
            self._dual = self._U = self._B = None
        else:
            self._coef = None
            self._dual, self._U, self._B = sol.get("dual_coef"), sol.get("U"), sol.get("B")
            self._X_fit = X.copy()
            self._x_mean = sol["x_mean"]
            self._y_mean = sol["y_mean"]
        self.intercept_ = float(sol["intercept"][0]) if ravel else sol["intercept"]
        self.alpha_ = float(best[0]) if ravel else best
        return self

    @property
    def dual_coef_(self):
        """Kernel weights, shape (n_samples, n_targets), or None in primal form."""
        check_is_fitted(self, "best_alphas_")
        if self._dual is None and self._U is not None:
            self._dual = self._U @ self._B
            self._U = self._B = None
        return self._dual

    @property
    def coef_(self):
        """Primal coefficients, shape (n_targets, n_features) or (n_features,)."""
        check_is_fitted(self, "best_alphas_")
        if self._coef is None:
            coef = ((self._X_fit - self._x_mean).T @ self.dual_coef_).T
            self._coef = coef[0] if self._ravel else coef
        return self._coef

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets).

        Raises :class:`facebrain.errors.NotFittedError` (also
        scikit-learn's) before ``fit``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self._coef is not None:
            return X @ self._coef.T + self.intercept_
        K = (X - self._x_mean) @ (self._X_fit - self._x_mean).T
        pred = K @ self._dual if self._U is None else (K @ self._U) @ self._B
        pred += self._y_mean
        return pred[:, 0] if self._ravel else pred
