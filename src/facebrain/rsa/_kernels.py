"""Vectorised RDM comparison kernels: pure functions on arrays.

Every kernel takes two stacks of RDM vectors ``v1 (m, n_pairs)`` and
``v2 (k, n_pairs)`` without NaN and returns the ``(m, k)`` matrix of
similarities, matching ``rsatoolbox.rdm.compare`` on the same vectors.
Optional integer ``weights (n_pairs,)`` mean "entry p appears ``weights[p]``
times", which is how a bootstrap sample with repeated stimuli is expressed
without materialising the repeated vector (see :mod:`._bootstrap`).

Ranks are computed once per RDM and reused for every pair ("rank once,
compare many"); Kendall's tau uses Knight's O(n log n) algorithm: sort by the
first vector, then count discordant pairs by a merge-sort inversion count.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

from .._deprecation import user_stacklevel
from ..errors import ParameterError

__all__ = [
    "COMPARISONS",
    "RANK_METHODS",
    "dense_ranks",
    "inversions",
    "kendall_counts",
]

RANK_METHODS = ("kendall", "rho-a", "spearman", "tau-a", "tau-b")

try:  # compiled Fenwick-tree discordant-pair count (the one rsatoolbox uses)
    from scipy.stats._stats import _kendall_dis as _scipy_kendall_dis
except ImportError:  # pragma: no cover - depends on scipy internals
    _scipy_kendall_dis = None


_argsort = np.argsort  # module alias: tests count merge levels by patching this name only


def _constant_warning(n_bad: int, what: str) -> None:
    warnings.warn(
        f"{n_bad} comparison(s) involve a constant {what} (zero variance after "
        "centring/ranking); their score is set to NaN. Check for constant voxels, "
        "a layer of zeros or a label RDM with a single value.",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )


def _safe_ratio(num, den1, den2):
    """num / sqrt(den1 den2) with NaN (and a warning) where a norm is zero."""
    den = np.sqrt(np.multiply.outer(den1, den2)) if num.ndim == 2 else np.sqrt(den1 * den2)
    bad = ~(den > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    if np.any(bad):
        out = np.where(bad, np.nan, out)
        _constant_warning(int(bad.sum()), "RDM")
    return out


def _wsum(v, w):
    return v.sum(-1) if w is None else v @ w


def _cosine(v1, v2, weights=None):
    a = v1 if weights is None else v1 * weights
    num = a @ v2.T
    return _safe_ratio(num, _wsum(v1 * v1, weights), _wsum(v2 * v2, weights))


def _center(v, weights):
    if weights is None:
        return v - v.mean(1, keepdims=True)
    return v - (v @ weights)[:, None] / weights.sum()


def _corr(v1, v2, weights=None):
    return _cosine(_center(v1, weights), _center(v2, weights), weights)


def weighted_ranks(v, weights=None):
    """Average ranks (1-based, ties averaged) of each row, as if entry ``p`` were repeated
    ``weights[p]`` times. Entries with weight 0 get a rank that carries no weight.

    Parameters
    ----------
    v : ndarray of shape (n_rdms, n_pairs)
    weights : ndarray of shape (n_pairs,) or (n_boot, n_pairs), optional

    Returns
    -------
    ranks : ndarray of shape (n_rdms, n_pairs) or (n_boot, n_rdms, n_pairs)
    """
    v = np.asarray(v, dtype=float)
    if weights is None:
        return rankdata(v, axis=1)
    prep = RankPrep(v)
    return prep.ranks(np.atleast_2d(weights)) if np.ndim(weights) == 2 else prep.ranks(
        weights[None])[0]


class RankPrep:
    """Sort order and tie groups of each RDM vector, computed once.

    ``ranks(W)`` then gives weighted average ranks for many weight vectors at
    the cost of a gather and a cumulative sum (no sorting).
    """

    def __init__(self, v):
        v = np.asarray(v, dtype=float)
        self.order = np.argsort(v, axis=1, kind="stable")
        s = np.take_along_axis(v, self.order, axis=1)
        new = np.ones_like(s, dtype=bool)
        new[:, 1:] = s[:, 1:] != s[:, :-1]
        self.group = np.cumsum(new, axis=1) - 1  # group id along the sorted order
        self.starts = [np.flatnonzero(row) for row in new]

    def ranks(self, W):
        """W: (n_boot, n_pairs) weights -> (n_boot, n_rdms, n_pairs) average ranks."""
        return self.centered_ranks(W, center=False)

    def centered_ranks(self, W, center=True):
        """Weighted average ranks minus their weighted mean ``(N + 1) / 2``.

        W: (n_boot, n_pairs) weights -> (n_boot, n_rdms, n_pairs), original pair order.
        """
        W = np.asarray(W, dtype=float)
        n_boot, n_pairs = W.shape
        if not hasattr(self, "_inv"):
            self._inv = np.argsort(self.order, axis=1)
            self._gorig = np.take_along_axis(self.group, self._inv, axis=1)
        shift = (W.sum(1, keepdims=True) + 1.0) / 2.0 if center else 0.5 * 0.0
        out = np.empty((n_boot, self.order.shape[0], n_pairs))
        for i, (order, starts) in enumerate(zip(self.order, self.starts)):
            ws = W[:, order]
            if starts.size == n_pairs:  # no ties: rank = cumsum - (w - 1) / 2
                g = np.cumsum(ws, axis=1)
                ws *= 0.5
                g -= ws
                g += 0.5 - shift
                out[:, i] = g[:, self._inv[i]]
            else:
                tot = np.add.reduceat(ws, starts, axis=1)
                g = np.cumsum(tot, axis=1) - 0.5 * tot + 0.5 - shift
                out[:, i] = g[:, self._gorig[i]]
        return out


def _rho_a_scale(num, ss1, ss2, n):
    """rho-a = 12 num / (n^3 - n); NaN (with a warning) where a ranked RDM is constant."""
    out = num * 12.0 / (n**3 - n)
    bad = (np.asarray(ss1) == 0)[:, None] | (np.asarray(ss2) == 0)[None, :]
    if bad.any():
        out = np.where(bad, np.nan, out)
        _constant_warning(int(bad.sum()), "RDM")
    return out


def _rank_corr(r1, r2, weights, kind):
    """Pearson (spearman) or rho-a on precomputed ranks."""
    if weights is None:
        n = r1.shape[1]
        c1 = r1 - (n + 1) / 2.0
        c2 = r2 - (n + 1) / 2.0
        num = c1 @ c2.T
        if kind == "rho-a":
            return _rho_a_scale(num, (c1 * c1).sum(1), (c2 * c2).sum(1), n)
        return _safe_ratio(num, (c1 * c1).sum(1), (c2 * c2).sum(1))
    n = weights.sum()
    c1 = r1 - (n + 1) / 2.0
    c2 = r2 - (n + 1) / 2.0
    num = (c1 * weights) @ c2.T
    if kind == "rho-a":
        return _rho_a_scale(num, (c1 * c1) @ weights, (c2 * c2) @ weights, n)
    return _safe_ratio(num, (c1 * c1) @ weights, (c2 * c2) @ weights)


def _spearman(v1, v2, weights=None):
    return _rank_corr(weighted_ranks(v1, weights), weighted_ranks(v2, weights), weights,
                      "spearman")


def _rho_a(v1, v2, weights=None):
    return _rank_corr(weighted_ranks(v1, weights), weighted_ranks(v2, weights), weights, "rho-a")


# --------------------------------------------------------------------------- Kendall
def dense_ranks(v):
    """1-based dense ranks of each row (ties share a rank). ``(n, p) -> (n, p)`` intp."""
    v = np.atleast_2d(np.asarray(v, dtype=float))
    order = np.argsort(v, axis=1, kind="stable")
    s = np.take_along_axis(v, order, axis=1)
    new = np.ones_like(s, dtype=np.intp)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.cumsum(new, axis=1), axis=1)
    return out


def inversions(y, weights=None):
    """Weighted count of strict inversions (``p < q`` and ``y[p] > y[q]``) of each row.

    Bottom-up merge sort, vectorised over rows: at every level the two sorted
    halves of each block are merged with a stable sort (two runs, so linear
    time) and each right-half element counts the left-half weight above it.
    O(n log n) per row.

    Parameters
    ----------
    y : ndarray of shape (n_rows, n)
        Integer ranks.
    weights : ndarray of shape (n_rows, n), optional
        Multiplicity of each entry (default 1).

    Returns
    -------
    count : ndarray of shape (n_rows,)
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.int64))
    m, n = y.shape
    w = np.ones((m, n)) if weights is None else np.atleast_2d(np.asarray(weights, float))
    size = 1 << max(int(np.ceil(np.log2(max(n, 1)))), 0)
    if size != n:  # pad at the end with zero weight
        pad = size - n
        y = np.concatenate([y, np.full((m, pad), y.max(initial=0) + 1)], axis=1)
        w = np.concatenate([w, np.zeros((m, pad))], axis=1)
    total = np.zeros(m)
    s = 1
    side = None
    while s < size:
        nb = size // (2 * s)
        yb = y.reshape(m, nb, 2 * s)
        wb = w.reshape(m, nb, 2 * s)
        if side is None or side.shape[-1] != 2 * s:
            side = np.repeat(np.array([0, 1], dtype=np.int64), s)
        key = yb * 2 + side
        order = _argsort(key, axis=2, kind="stable")
        ys = np.take_along_axis(yb, order, axis=2)
        ws = np.take_along_axis(wb, order, axis=2)
        is_right = np.take_along_axis(np.broadcast_to(side, key.shape), order, axis=2)
        wleft = np.where(is_right == 0, ws, 0.0)
        left_le = np.cumsum(wleft, axis=2)
        left_tot = left_le[..., -1:]
        total += np.where(is_right == 1, ws * (left_tot - left_le), 0.0).sum(axis=(1, 2))
        y = ys.reshape(m, size)
        w = ws.reshape(m, size)
        s *= 2
    return total


def _tie_pairs(ranks, w):
    """Weighted number of tied pairs within groups of equal ``ranks`` (1-based ints)."""
    tot = np.bincount(ranks, weights=w)
    return 0.5 * (tot * tot - tot).sum()


def kendall_counts(x, y, weights=None, *, engine="auto"):
    """Knight's algorithm: concordant-minus-discordant and tie counts of two vectors.

    Parameters
    ----------
    x, y : ndarray of shape (n,)
        Dense integer ranks (1-based), e.g. from :func:`dense_ranks`.
    weights : ndarray of shape (n,), optional
        Integer multiplicities (a bootstrap's repeated entries).
    engine : {"auto", "numpy", "scipy"}
        ``numpy`` uses :func:`inversions`; ``scipy`` the compiled Fenwick-tree
        count ``scipy.stats._stats._kendall_dis`` on the expanded vector.

    Returns
    -------
    con_minus_dis, n_total, x_ties, y_ties : float
        ``n_total`` counts all pairs of the (expanded) vector.
    """
    x = np.asarray(x, dtype=np.intp)
    y = np.asarray(y, dtype=np.intp)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    if not keep.all():
        x, y, w = x[keep], y[keep], w[keep]
    order = np.lexsort((y, x))
    xs, ys, ws = x[order], y[order], w[order]
    if engine == "auto":
        engine = "scipy" if _scipy_kendall_dis is not None else "numpy"
    if engine == "scipy":
        if weights is None:
            dis = float(_scipy_kendall_dis(xs, ys))
        else:
            wi = ws.astype(np.intp)
            dis = float(_scipy_kendall_dis(np.repeat(xs, wi), np.repeat(ys, wi)))
    else:
        dis = float(inversions(ys[None], ws[None])[0])
    big_n = ws.sum()
    tot = big_n * (big_n - 1) / 2.0
    xtie = _tie_pairs(xs, ws)
    ytie = _tie_pairs(ys, ws)
    # joint ties: groups equal in both x and y
    joint = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    gid = np.cumsum(joint) - 1
    ntie = _tie_pairs(gid, ws)
    con_minus_dis = tot - xtie - ytie + ntie - 2.0 * dis
    return con_minus_dis, tot, xtie, ytie


def _kendall_generic(v1, v2, weights, kind):
    r1, r2 = dense_ranks(v1), dense_ranks(v2)
    out = np.empty((r1.shape[0], r2.shape[0]))
    bad = 0
    for i, x in enumerate(r1):
        for j, y in enumerate(r2):
            cmd, tot, xt, yt = kendall_counts(x, y, weights)
            if kind == "tau-a":
                if xt == tot or yt == tot:
                    out[i, j] = np.nan
                    bad += 1
                else:
                    out[i, j] = min(1.0, max(-1.0, cmd / tot))
            else:
                den = np.sqrt((tot - xt) * (tot - yt))
                if den > 0:
                    out[i, j] = cmd / den
                else:
                    out[i, j] = np.nan
                    bad += 1
    if bad:
        _constant_warning(bad, "RDM")
    return out


def _tau_a(v1, v2, weights=None):
    return _kendall_generic(v1, v2, weights, "tau-a")


def _tau_b(v1, v2, weights=None):
    return _kendall_generic(v1, v2, weights, "tau-b")


# --------------------------------------------------------------------------- cov-weighted
def _n_cond(n_pairs: int) -> int:
    n = round((1 + np.sqrt(1 + 8 * n_pairs)) / 2)
    if n * (n - 1) // 2 != n_pairs:
        raise ParameterError(f"{n_pairs} is not a number of pairs n(n-1)/2 of any n.")
    return n


def _row_col_indicator(n):
    rows, cols = np.triu_indices(n, 1)
    n_pairs = rows.size
    ri = np.zeros((n_pairs + n, n))
    ci = np.zeros((n_pairs + n, n))
    ri[np.arange(n_pairs), rows] = 1
    ci[np.arange(n_pairs), cols] = 1
    ri[n_pairs + np.arange(n), np.arange(n)] = 1
    ci[n_pairs + np.arange(n), np.arange(n)] = 1
    return ri, ci


def cov_whiten(vectors, nan_idx=None):
    """Whitened (double-centred, extended) RDM vectors as used by ``corr_cov``/``cosine_cov``.

    Same transform as rsatoolbox's ``_cov_weighting`` without ``sigma_k``.

    Parameters
    ----------
    vectors : ndarray of shape (k, n_valid)
        RDM vectors with NaN entries already removed.
    nan_idx : ndarray of bool of shape (n_pairs,), optional
        Which of the full RDM's pairs are present (default all).
    """
    vectors = np.atleast_2d(vectors)
    if nan_idx is None:
        nan_idx = np.ones(vectors.shape[1], bool)
    n_cond = _n_cond(nan_idx.size)
    n_dist = vectors.shape[1]
    vw = -0.5 * np.c_[vectors, np.zeros((vectors.shape[0], n_cond))]
    ri, ci = _row_col_indicator(n_cond)
    sum_i = ri + ci
    if nan_idx.all():
        m = vw @ sum_i / n_cond
        mm = np.sum(vw * 2, axis=1, keepdims=True) / (n_cond * n_cond)
        vw = vw - m @ sum_i.T + mm
    else:
        ext = np.concatenate((nan_idx, np.ones(n_cond, bool)))
        s = sum_i[ext]
        s[n_dist:, :] /= 2
        diag = np.concatenate((np.ones((n_dist, 1)) / 2, np.ones((n_cond, 1))))
        vw = vw - (vw @ s @ np.linalg.inv(s.T @ (diag * s)) @ (diag * s).T)
    vw[:, :n_dist] *= np.sqrt(2)
    return vw


def _cosine_cov(v1, v2, weights=None, nan_idx=None):
    if weights is not None:
        raise ParameterError("cov-weighted comparisons do not take weights; bootstrap them "
                             "through the expanded RDM (facebrain does this automatically).")
    return _cosine(cov_whiten(v1, nan_idx), cov_whiten(v2, nan_idx))


def _corr_cov(v1, v2, weights=None, nan_idx=None):
    if weights is not None:
        raise ParameterError("cov-weighted comparisons do not take weights; bootstrap them "
                             "through the expanded RDM (facebrain does this automatically).")
    v1 = v1 - v1.mean(1, keepdims=True)
    v2 = v2 - v2.mean(1, keepdims=True)
    return _cosine(cov_whiten(v1, nan_idx), cov_whiten(v2, nan_idx))


#: name -> kernel(v1 (m, p), v2 (k, p), weights=None) -> (m, k); rsatoolbox's names.
COMPARISONS = {
    "corr": _corr,
    "corr_cov": _corr_cov,
    "cosine": _cosine,
    "cosine_cov": _cosine_cov,
    "kendall": _tau_b,
    "rho-a": _rho_a,
    "spearman": _spearman,
    "tau-a": _tau_a,
    "tau-b": _tau_b,
}

COV_METHODS = ("corr_cov", "cosine_cov")
