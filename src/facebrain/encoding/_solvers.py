"""Ridge solvers as pure functions: one eigendecomposition reused for every alpha and voxel.

Every solver factorises the (centred) training design so that, for any alpha,

    coef(alpha) = M @ diag(1 / (s + alpha)) @ T.T @ Yc

with ``s`` the eigenvalues, ``T`` of shape (n_train, r) and ``M`` of shape
(n_features, r):

* ``"primal"`` (n_features <= n_samples): ``Xc.T Xc = V diag(s) V.T``, ``T = Xc V``, ``M = V``.
* ``"dual"`` (kernel form, n_features > n_samples): ``Xc Xc.T = U diag(s) U.T``,
  ``T = U``, ``M = Xc.T U``.

Held-out predictions for all alphas are then ``(Xte_c M) diag(1/(s+alpha)) (T.T Yc)``:
one decomposition per fold, one small product per alpha and voxel batch.
"""

from __future__ import annotations

import numpy as np

#: largest (n_alphas * n_test) x n_targets block of predictions held at once
_CHUNK_ELEMENTS = 4_000_000

__all__ = ["RIDGE_SOLVERS", "decompose", "fold_scores", "pick_solver", "refit_coef"]


def _primal(Xc: np.ndarray):
    s, V = np.linalg.eigh(Xc.T @ Xc)
    s = np.clip(s, 0.0, None)
    return s, Xc @ V, V


def _dual(Xc: np.ndarray):
    s, U = np.linalg.eigh(Xc @ Xc.T)
    s = np.clip(s, 0.0, None)
    return s, U, Xc.T @ U


#: name -> solver(Xc (n, p)) -> (s (r,), T (n, r), M (p, r))
RIDGE_SOLVERS = {"dual": _dual, "primal": _primal}


def pick_solver(solver: str, n_samples: int, n_features: int) -> str:
    """``"auto"`` -> ``"primal"`` if n_features <= n_samples else ``"dual"``."""
    if solver == "auto":
        return "primal" if n_features <= n_samples else "dual"
    if solver not in RIDGE_SOLVERS:
        raise ValueError(f"solver={solver!r}; choose 'auto' or one of {sorted(RIDGE_SOLVERS)}.")
    return solver


def decompose(X: np.ndarray, solver: str, fit_intercept: bool):
    """Centre ``X`` (if ``fit_intercept``) and factorise it.

    Returns
    -------
    dict with ``s``, ``T``, ``M``, ``x_mean`` (zeros without intercept).
    """
    x_mean = X.mean(0) if fit_intercept else np.zeros(X.shape[1])
    Xc = X - x_mean
    s, T, M = RIDGE_SOLVERS[pick_solver(solver, *X.shape)](Xc)
    return {"s": s, "T": T, "M": M, "x_mean": x_mean}


def fold_scores(dec: dict, X_test: np.ndarray, Y_train: np.ndarray, Y_test: np.ndarray,
                alphas: np.ndarray, fit_intercept: bool, scoring: str,
                score_dtype: str = "float64") -> np.ndarray:
    """Score every alpha on one fold for a batch of targets.

    Parameters
    ----------
    dec : dict from :func:`decompose` of the fold's training X
    X_test : ndarray of shape (n_test, n_features)
    Y_train : ndarray of shape (n_train, n_targets)
    Y_test : ndarray of shape (n_test, n_targets)
    scoring : {"neg_mse", "r2"}
        ``neg_mse`` is himalaya's default ``l2_neg_loss`` (minus the mean squared
        error of the fold); ``r2`` is himalaya's ``r2_score`` (0 where the test
        target is constant).
    score_dtype : {"float64", "float32"}
        Precision of the big product giving every alpha's held-out predictions.
        With ``"float32"`` the squared error is assembled in float64 as
        ``|y|^2 - 2 <y, pred> + |pred|^2``, so rounding is relative to the
        predictions (what differs between alphas), not to the targets.

    Returns
    -------
    scores : ndarray of shape (n_alphas, n_targets)
    """
    y_mean = Y_train.mean(0) if fit_intercept else 0.0
    A = (X_test - dec["x_mean"]) @ dec["M"]
    n_test, r = A.shape
    # all alphas in one GEMM: rows (alpha, test sample) of A diag(1 / (s + alpha))
    AD = (A[None, :, :] / (dec["s"][None, :] + alphas[:, None])[:, None, :]).reshape(-1, r)
    n_t = Y_train.shape[1]
    T = dec["T"]
    # dual form (r >= n_train): fold T into the small left factor instead of forming T.T @ Y
    fold_t = T.shape[1] >= T.shape[0]
    left = AD @ T.T if fold_t else AD
    low = score_dtype == "float32"
    if low:
        left = left.astype(np.float32)
    out = np.empty((alphas.size, n_t))
    chunk = max(1, int(_CHUNK_ELEMENTS // max(1, AD.shape[0])))
    for a in range(0, n_t, chunk):
        sl = slice(a, min(a + chunk, n_t))
        Yc = Y_train[:, sl] - (y_mean[sl] if fit_intercept else 0.0)
        Yt = Y_test[:, sl] - (y_mean[sl] if fit_intercept else 0.0)
        right = Yc if fold_t else T.T @ Yc
        if low:
            P = (left @ right.astype(np.float32)).reshape(alphas.size, n_test, -1)
            cross = np.einsum("ijk,jk->ik", P, Yt.astype(np.float32)).astype(np.float64)
            pp = np.einsum("ijk,ijk->ik", P, P).astype(np.float64)
            sse = np.einsum("jk,jk->k", Yt, Yt)[None] - 2.0 * cross + pp
        else:
            P = (left @ right).reshape(alphas.size, n_test, -1)
            P -= Yt[None]
            sse = np.einsum("ijk,ijk->ik", P, P)
        if scoring == "neg_mse":
            out[:, sl] = -sse / n_test
        else:
            yte = Y_test[:, sl]
            var = ((yte - yte.mean(0)) ** 2).sum(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, sl] = np.where(var == 0, 0.0, 1.0 - sse / var)
    return out


def refit_coef(dec: dict, Y: np.ndarray, alpha_per_target: np.ndarray, fit_intercept: bool):
    """Coefficients ``(n_features, n_targets)`` and intercepts for one alpha per target."""
    y_mean = Y.mean(0) if fit_intercept else np.zeros(Y.shape[1])
    B = dec["T"].T @ (Y - y_mean)
    B /= dec["s"][:, None] + alpha_per_target[None, :]
    coef = dec["M"] @ B
    intercept = y_mean - dec["x_mean"] @ coef
    return coef, intercept
