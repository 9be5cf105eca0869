"""Banded ridge: one penalty per feature space, chosen per voxel by cross-validation.

The model is himalaya's group ("banded") ridge::

    b* = argmin_b ||Z b - Y||^2 + ||b||^2,   Z_i = exp(delta_i / 2) X_i

searched on a grid: every weight vector ``gamma`` on the simplex (rows of
``gammas``) scales space ``i`` by ``sqrt(gamma_i)``, a plain ridge over
``alphas`` is cross-validated on the scaled union, and each voxel keeps the
(gamma, alpha) with the best mean inner-CV score (a later gamma wins only by
more than float64 epsilon, as himalaya's ``solve_group_ridge_random_search``);
``delta_i = log(gamma_i / alpha)``. With the same ``gammas`` (its ``n_iter``
array) and ``alphas`` the solution equals himalaya's ``GroupRidgeCV``
(``tests/encoding/test_banded.py``).

The per-gamma ridge reuses the ridge room's public solver functions
(``cv_alpha_scores``, ``select_alphas``, ``decompose``, ``refit_coef``).
"""

from __future__ import annotations

import itertools

import numpy as np

from .._boundary import public
from ..errors import ParameterError, ShapeError
from ._ridge_encoder import cv_alpha_scores, select_alphas
from ._solvers import decompose, refit_coef

__all__ = ["banded_ridge_cv", "default_gammas", "predict_banded"]


def default_gammas(n_spaces: int, exponents=(-1.0, -0.5, 0.0, 0.5, 1.0)) -> np.ndarray:
    """A grid on the simplex: relative weights ``10 ** e`` of each space against the last.

    Returns
    -------
    ndarray of shape (len(exponents) ** (n_spaces - 1), n_spaces)
        Rows sum to 1; the equal-weight row (plain ridge on the union) comes first.

    Examples
    --------
    >>> default_gammas(2, exponents=(-1.0, 0.0, 1.0)).round(3).tolist()
    [[0.5, 0.5], [0.091, 0.909], [0.909, 0.091]]
    """
    if n_spaces < 1:
        raise ParameterError(f"n_spaces={n_spaces!r} must be >= 1 (one per feature space).")
    rows = [np.r_[10.0 ** np.asarray(e, float), 1.0]
            for e in itertools.product(exponents, repeat=n_spaces - 1)]
    g = np.array(rows) / np.sum(rows, axis=1, keepdims=True) if rows else np.ones((1, 1))
    first = np.argmin(np.abs(g - 1.0 / n_spaces).sum(1))
    return np.concatenate([g[first:first + 1], np.delete(g, first, axis=0)])


def _scaled(Xs, gamma):
    return np.concatenate([np.sqrt(g) * X for g, X in zip(gamma, Xs)], axis=1)


@public
def banded_ridge_cv(Xs: list, Y: np.ndarray, folds, alphas, gammas=None, *,
                    fit_intercept: bool = True, scoring: str = "neg_mse") -> dict:
    """Fit banded ridge, choosing (gamma, alpha) per target by cross-validation.

    Parameters
    ----------
    Xs : list of ndarray of shape (n_samples, n_features_i)
    Y : ndarray of shape (n_samples, n_targets)
    folds : list of (train, test)
        Inner folds (e.g. grouped by identity).
    alphas : ndarray of shape (n_alphas,)
    gammas : ndarray of shape (n_gammas, n_spaces), optional
        Space weights to try (default :func:`default_gammas`).

    Returns
    -------
    dict
        ``coef`` (n_features, n_targets) on the unscaled spaces, ``intercept``
        (n_targets,), ``deltas`` (n_spaces, n_targets), ``best_alphas``,
        ``best_gammas`` (n_spaces, n_targets), ``cv_scores`` (n_gammas, n_targets).
    """
    Y = np.asarray(Y, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=np.float64)
    gammas = default_gammas(len(Xs)) if gammas is None else np.atleast_2d(
        np.asarray(gammas, dtype=np.float64))
    if gammas.shape[1] != len(Xs):
        raise ShapeError(f"gammas has {gammas.shape[1]} columns but there are {len(Xs)} "
                         "feature spaces; give one weight per space.")
    if (gammas <= 0).any():
        bad = gammas[gammas <= 0].tolist()
        raise ParameterError(f"gammas must be positive (weights on the simplex); got {bad[:5]}. "
                             "Pass positive weights or None (default_gammas).")
    n_t = Y.shape[1]
    best = np.full(n_t, -np.inf)
    best_g = np.tile(gammas[0][:, None], (1, n_t))
    best_a = np.ones(n_t)
    cv_scores = np.empty((len(gammas), n_t))
    eps = np.finfo(np.float64).eps
    for ii, gamma in enumerate(gammas):
        Z = _scaled(Xs, gamma)
        scores = cv_alpha_scores(Z, Y, folds, alphas, fit_intercept=fit_intercept,
                                 scoring=scoring)
        arg = select_alphas(scores, alphas)
        s = scores[arg, np.arange(n_t)]
        cv_scores[ii] = s
        mask = s > best + eps
        best[mask] = s[mask]
        best_g[:, mask] = gamma[:, None]
        best_a[mask] = alphas[arg[mask]]
    sizes = [X.shape[1] for X in Xs]
    coef = np.empty((sum(sizes), n_t))
    intercept = np.empty(n_t)
    for gamma in np.unique(best_g.T, axis=0):
        cols = np.flatnonzero((best_g.T == gamma).all(axis=1))
        Z = _scaled(Xs, gamma)
        dec = decompose(Z, "auto", fit_intercept)
        c, b = refit_coef(dec, Y[:, cols], best_a[cols], fit_intercept)
        coef[:, cols] = np.repeat(np.sqrt(gamma), sizes)[:, None] * c
        intercept[cols] = b
    return {"coef": coef, "intercept": intercept, "deltas": np.log(best_g / best_a[None]),
            "best_alphas": best_a, "best_gammas": best_g, "cv_scores": cv_scores}


def predict_banded(Xs: list, fit: dict) -> np.ndarray:
    """Predictions ``concat(Xs) @ coef + intercept`` of a :func:`banded_ridge_cv` fit."""
    return np.concatenate(Xs, axis=1) @ fit["coef"] + fit["intercept"]
