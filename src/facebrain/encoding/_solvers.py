"""Ridge solvers as pure functions: one eigendecomposition per fold reused for every alpha
and every voxel block.

Every fold is factorised so that the held-out predictions for penalty ``alpha`` are

    pred(alpha) = A @ diag(1 / (s + alpha)) @ T.T @ Yc

with ``s`` the eigenvalues, ``T`` of shape (n_train, r) and ``A`` of shape (n_test, r):

* ``"primal"`` (n_features <= n_samples): ``Xc.T Xc = V diag(s) V.T``, ``T = Xc V``,
  ``A = Xte_c V``.
* ``"dual"`` (kernel form, n_features > n_samples): the linear kernel of the whole
  design is computed once; each fold's training kernel is centred with the training
  means (as scikit-learn's ``KernelCenterer`` and himalaya do), ``Ktr_c = U diag(s) U.T``,
  ``T = U``, ``A = Kte_c U``. Neither the features of a fold nor ``Xc.T U`` are formed.

Scoring (numpy, ``score_dtype="float64"``, the default) uses partial fractions
(:mod:`._pf`): three alpha-independent GEMMs per voxel block, about half the flops of
forming every alpha's predictions, with a per-score rounding bound; scores it cannot certify
to 1e-10, and folds where it would not save flops, take the direct path, which stacks all
alphas into one GEMM per voxel block and sums squared residuals in
float64 (a compiled kernel). ``score_dtype="float32"`` (numpy) uses the same partial
fractions with ``T.T Yc`` and the off-diagonal blocks of ``H B`` in float32 (see
:mod:`._pf`), on targets rescaled per voxel by a power of two (exact), so rounding is
relative to each voxel's own data; with a ``device`` (or where partial fractions are
declined) the direct GEMM runs in float32. The decompositions of a design are kept in a small LRU cache
keyed by the design's bytes and the folds, so voxel blocks fitted separately (e.g.
``evaluate(batch_size=...)``) factorise each fold once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from ..errors import ParameterError
from ._pf import STATS, pf_plan, pf_sse
from ._torch_ops import fold_sse_torch

__all__ = ["RIDGE_SOLVERS", "cached_fold_decompositions", "clear_cache", "decompose",
           "fold_decompositions", "fold_scores", "pick_solver", "refit", "refit_coef"]

#: largest (n_alphas * n_test) x n_targets block of predictions held at once (elements)
_CHUNK_ELEMENTS = 2_000_000

#: bytes of fold decompositions kept between fits (LRU); 0 disables the cache
CACHE_BYTES = 256 * 2**20
_CACHE: OrderedDict = OrderedDict()


def clear_cache() -> None:
    """Forget every cached fold decomposition."""
    _CACHE.clear()


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
        raise ParameterError(f"solver={solver!r}; choose 'auto' or one of {sorted(RIDGE_SOLVERS)}.")
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


def _centre_kernel(K: np.ndarray, tr: np.ndarray, te: np.ndarray, fit_intercept: bool):
    """Training and test blocks of a linear kernel, centred with the training means."""
    Ktr = K[np.ix_(tr, tr)]
    Kte = K[np.ix_(te, tr)]
    if not fit_intercept:
        return Ktr, Kte
    m = Ktr.mean(0)
    mm = m.mean()
    Ktr_c = Ktr - m[None, :] - m[:, None] + mm
    Kte_c = Kte - Kte.mean(1)[:, None] - m[None, :] + mm
    return Ktr_c, Kte_c


def fold_decompositions(X: np.ndarray, folds, solver: str, fit_intercept: bool) -> list:
    """Factorise every fold: list of dicts with ``s`` (r,), ``T`` (n_train, r), ``A`` (n_test, r).

    ``solver`` is ``"primal"`` or ``"dual"`` (already resolved for the fold sizes).
    """
    out = []
    if solver == "dual":
        X0 = X - X.mean(0) if fit_intercept else X  # fold centring is exact after this shift
        K = X0 @ X0.T
        for tr, te in folds:
            Ktr, Kte = _centre_kernel(K, tr, te, fit_intercept)
            s, U = np.linalg.eigh(Ktr)
            out.append({"s": np.clip(s, 0.0, None), "T": U, "A": Kte @ U})
        return out
    for tr, te in folds:
        Xtr = X[tr]
        x_mean = Xtr.mean(0) if fit_intercept else np.zeros(X.shape[1])
        Xc = Xtr - x_mean
        s, V = np.linalg.eigh(Xc.T @ Xc)
        out.append({"s": np.clip(s, 0.0, None), "T": Xc @ V, "A": (X[te] - x_mean) @ V})
    return out


def _key(X, folds, solver, fit_intercept):
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((X.shape, X.dtype.str, solver, bool(fit_intercept), len(folds))).encode())
    h.update(np.ascontiguousarray(X).view(np.uint8).ravel())
    for tr, te in folds:
        h.update(np.asarray(tr, dtype=np.int64).tobytes())
        h.update(b"|")
        h.update(np.asarray(te, dtype=np.int64).tobytes())
        h.update(b"#")
    return h.hexdigest()


def _nbytes(obj) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def _cached(key: str, compute):
    """LRU cache of factorisations bounded by ``CACHE_BYTES`` (0 disables it)."""
    if CACHE_BYTES <= 0:
        return compute()
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = compute()
    if _nbytes(value) <= CACHE_BYTES:
        _CACHE[key] = value
        while sum(_nbytes(v) for v in _CACHE.values()) > CACHE_BYTES:
            _CACHE.popitem(last=False)
    return value


def cached_fold_decompositions(X, folds, solver, fit_intercept) -> list:
    """:func:`fold_decompositions` through the LRU cache (``CACHE_BYTES``)."""
    return _cached(_key(X, folds, solver, fit_intercept),
                   lambda: fold_decompositions(X, folds, solver, fit_intercept))


# ----------------------------------------------------------------------------- scoring
def _sse(P, Yt, n_alphas):
    """Sum over test samples of (Yt - P_alpha)^2 in float64: (n_alphas, n_targets)."""
    from ._compiled import sse_kernel  # numba is imported on first use, not with the package

    out = np.zeros((n_alphas, Yt.shape[1]))
    sse_kernel(P, np.ascontiguousarray(Yt), n_alphas, out)
    return out


def _pow2_scale(Yc: np.ndarray) -> np.ndarray:
    """Per-target power of two near each column's RMS (1 for an all-zero column)."""
    rms = np.sqrt(np.einsum("ij,ij->j", Yc, Yc) / max(1, Yc.shape[0]))
    e = np.where(rms > 0, np.round(np.log2(np.where(rms > 0, rms, 1.0))), 0.0)
    return np.exp2(e)


def fold_scores(dec: dict, Y: np.ndarray, train: np.ndarray, test: np.ndarray,
                alphas: np.ndarray, fit_intercept: bool, scoring: str,
                score_dtype: str = "float64", device=None) -> np.ndarray:
    """Score every alpha on one fold for a batch of targets.

    Parameters
    ----------
    dec : dict from :func:`fold_decompositions`
    Y : ndarray of shape (n_samples, n_targets)
    train, test : ndarray of int
        The fold's rows of ``Y``.
    scoring : {"neg_mse", "r2"}
        ``neg_mse`` is himalaya's default ``l2_neg_loss`` (minus the mean squared
        error of the fold); ``r2`` is himalaya's ``r2_score`` (0 where the test
        target is constant).
    score_dtype : {"float64", "float32"}
        Precision of the scoring GEMMs (targets are first divided by a per-target power
        of two, so this is scale-free); squared residuals are always summed in float64.
        With ``device=None`` the sums of squares come from alpha-independent GEMMs by
        partial fractions (:func:`._pf.pf_sse`) when that saves flops; any score whose
        rounding bound exceeds ``_pf.ERR_RTOL`` (1e-10; ``"float32"``: ``ERR_RTOL32``,
        1e-2, with ``T.T Yc`` and most of ``H B`` in float32) of its value is recomputed
        by the float64 direct GEMM. Otherwise (a device, or declined) the direct GEMM
        runs in ``score_dtype``.
    device : str or None
        None: numpy, block by block of targets (no full-size temporaries);
        ``"cpu"``/``"cuda"``: the GEMM and the residual sums run in torch on that device.

    Returns
    -------
    scores : ndarray of shape (n_alphas, n_targets)
    """
    A, T, s = dec["A"], dec["T"], dec["s"]
    n_test, r = A.shape
    n_train = T.shape[0]
    n_a, n_t = alphas.size, Y.shape[1]
    dt = np.float32 if score_dtype == "float32" else np.float64
    # dual form (r >= n_train): fold T into the small left factor instead of forming T.T @ Y
    fold_t = T.shape[1] >= T.shape[0]
    plan = None
    if device is None:
        direct_flops = 2.0 * (n_a * n_test * n_train if fold_t
                              else r * n_train + n_a * n_test * r)
        plan = pf_plan(s, A, n_train, alphas, direct_flops,
                       None if fold_t else np.sqrt(np.einsum("jk,jk->k", T, T)),
                       float32=dt is np.float32)
        if plan is None:
            STATS["declined"] += 1

    def smoother(rows=None, dtype=dt):
        """Stacked (alpha, test sample) rows of the left factor, for alphas ``rows``."""
        al = alphas if rows is None else alphas[rows]
        AD = (A[None, :, :] / (s[None, :] + al[:, None])[:, None, :]).reshape(-1, r)
        return AD.astype(dtype) @ T.T.astype(dtype) if fold_t else AD.astype(dtype)

    left = smoother() if plan is None else None
    # float32 partial fractions: B = T.T Yc rounded to float32 (like the direct path's
    # float32 inputs), every other step float64 or bounded (see ._pf)
    tt32 = np.ascontiguousarray(T.T, dtype=np.float32) if plan and plan["float32"] else None
    if device is not None:
        chunk = n_t
    elif plan is None:
        chunk = max(64, int(_CHUNK_ELEMENTS // max(1, left.shape[0])))
    else:
        chunk = max(64, int(_CHUNK_ELEMENTS // (3 * r)))
    out = np.empty((n_a, n_t))
    rows = {}
    for a in range(0, n_t, chunk):
        sl = slice(a, min(a + chunk, n_t))
        Yc = np.asarray(Y[train, sl], dtype=np.float64)  # copies of this block only
        Yt = np.asarray(Y[test, sl], dtype=np.float64)
        if fit_intercept:
            m = Yc.mean(0)
            Yc -= m
            Yt -= m
        var = ((Yt - Yt.mean(0)) ** 2).sum(0) if scoring == "r2" else None
        scale = _pow2_scale(Yc)
        inv = 1.0 / scale  # a power of two: exact
        Yc *= inv
        Yt *= inv
        if plan is not None:
            right32 = None if tt32 is None else tt32 @ Yc.astype(np.float32)
            right = T.T @ Yc if right32 is None else right32.astype(np.float64)
            sse, bad = pf_sse(plan, right, A.T @ Yt, np.einsum("jv,jv->v", Yt, Yt),
                              np.sqrt(np.einsum("jv,jv->v", Yc, Yc)), right32)
            if bad.any():  # rounding bound too large: the float64 direct GEMM for those
                ai, cols = np.flatnonzero(bad.any(1)), np.flatnonzero(bad.any(0))
                rhs = Yc[:, cols] if fold_t else T.T @ Yc[:, cols]
                for i in ai:
                    if i not in rows:  # each alpha's rows formed once per call
                        rows[i] = smoother(np.array([i]), np.float64)
                L = np.concatenate([rows[i] for i in ai])
                sse[np.ix_(ai, cols)] = _sse(L @ rhs, Yt[:, cols], ai.size)
                STATS["direct_scores"] += ai.size * cols.size
        else:
            right = Yc if fold_t else T.T @ Yc
            if device is not None:
                sse = fold_sse_torch(left, right, Yt, n_a, device)
            else:
                sse = _sse(left @ right.astype(dt), Yt, n_a)
        sse *= (scale * scale)[None, :]
        if scoring == "neg_mse":
            out[:, sl] = -sse / n_test
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, sl] = np.where(var == 0, 0.0, 1.0 - sse / var)
    return out


# ----------------------------------------------------------------------------- refit
def refit_coef(dec: dict, Y: np.ndarray, alpha_per_target: np.ndarray, fit_intercept: bool):
    """Coefficients ``(n_features, n_targets)`` and intercepts for one alpha per target."""
    y_mean = Y.mean(0) if fit_intercept else np.zeros(Y.shape[1])
    B = dec["T"].T @ (Y - y_mean)
    B /= dec["s"][:, None] + alpha_per_target[None, :]
    coef = dec["M"] @ B
    intercept = y_mean - dec["x_mean"] @ coef
    return coef, intercept


def refit(X: np.ndarray, Y: np.ndarray, alpha_per_target: np.ndarray, solver: str,
          fit_intercept: bool, device=None) -> dict:
    """Refit on all samples with one alpha per target.

    Returns
    -------
    dict
        ``primal``: ``coef`` (n_features, n_targets), ``intercept``.
        ``dual``: ``U`` (n_samples, n_samples) and ``B`` (n_samples, n_targets), the dual
        weights in the kernel's eigenbasis, with ``dual_coef = U @ B`` and ``coef =
        (X - x_mean).T @ dual_coef`` (both formed on demand by the caller; with a
        ``device``, ``dual_coef`` itself instead of ``U`` and ``B``), ``x_mean``,
        ``y_mean``, ``intercept``.
    """
    y_mean = Y.mean(0) if fit_intercept else np.zeros(Y.shape[1])
    key = _key(X, [], "refit-" + solver, fit_intercept)
    if solver == "primal":
        dec = _cached(key, lambda: decompose(X, "primal", fit_intercept))
        coef, intercept = refit_coef(dec, Y, alpha_per_target, fit_intercept)
        return {"coef": coef, "intercept": intercept}
    x_mean = X.mean(0) if fit_intercept else np.zeros(X.shape[1])
    Xc = X - x_mean

    def full():
        s, U = np.linalg.eigh(Xc @ Xc.T)
        return {"s": np.clip(s, 0.0, None), "U": U}

    dec = _cached(key, full)
    s, U = dec["s"], dec["U"]
    xm = Xc @ x_mean
    if device is not None:
        from ._torch_ops import dual_refit_torch

        dual = dual_refit_torch(U, s, Y - y_mean, alpha_per_target, device)
        return {"dual_coef": dual, "x_mean": x_mean, "y_mean": y_mean,
                "intercept": y_mean - xm @ dual}
    # U.T (Y - 1 y_mean) without a centred copy of Y: the rank-one correction only
    # touches the kernel's constant null direction, which Xc.T and the centred test
    # kernel annihilate
    B = U.T @ Y
    u = U.sum(0)
    for a in range(0, B.shape[0], 64):  # row blocks: in-place, no (n, n_targets) temporaries
        rows = B[a:a + 64]
        if fit_intercept:
            rows -= u[a:a + 64, None] * y_mean[None, :]
        rows /= s[a:a + 64, None] + alpha_per_target[None, :]
    # dual_coef = U @ B is left to the caller (formed on demand: half the refit's flops)
    return {"U": U, "B": B, "x_mean": x_mean, "y_mean": y_mean,
            "intercept": y_mean - (xm @ U) @ B}
