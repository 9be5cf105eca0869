"""Compiled (numba) bootstrap kernels for the rank-based RDM comparisons.

A bootstrap sample is a vector of integer pair weights ``w`` (how often each pair of
distinct stimuli appears, see :mod:`._bootstrap`), so every statistic is a weighted one
on fixed RDM vectors; the sort orders are computed once per RDM (or RDM pair) and the
kernels only walk them.

* :func:`centered_ranks`: weighted average ranks minus their mean ``(N + 1) / 2`` of
  every RDM for many samples (spearman and rho-a are then weighted dot products).
* :func:`kendall_boot_counts`: Knight's O(n log n) algorithm for every (model, brain)
  pair and a block of samples at once: pairs are walked in (x, y) order and a Fenwick
  tree over y-ranks, holding one lane per sample, counts the weighted discordant pairs;
  joint ties are summed on the way. Integer arithmetic throughout, so counts are exact.

Compiled with ``cache=True``: the first call in a fresh environment compiles (about a
second or two, see ``benchmarks/bench_rsa.py``), later processes load the cache.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["centered_ranks", "group_tie_pairs", "kendall_boot_counts", "sort_plan"]


def sort_plan(v: np.ndarray):
    """Stable sort order of each row and the flag "starts a new tie group" in that order."""
    v = np.atleast_2d(np.asarray(v, dtype=float))
    order = np.argsort(v, axis=1, kind="stable")
    s = np.take_along_axis(v, order, axis=1)
    new = np.ones(s.shape, dtype=np.bool_)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    return np.ascontiguousarray(order, dtype=np.int64), new


@numba.njit(cache=True, nogil=True)
def _centered_ranks(order, new, W, out):  # pragma: no cover - compiled
    n_boot, n_pairs = W.shape
    n_rdm = order.shape[0]
    for b in range(n_boot):
        total = 0.0
        for p in range(n_pairs):
            total += W[b, p]
        mid = 0.5 * (total + 1.0)
        for r in range(n_rdm):
            cum = 0.0
            t = 0
            while t < n_pairs:
                u = t + 1
                while u < n_pairs and not new[r, u]:
                    u += 1
                wg = 0.0
                for s in range(t, u):
                    wg += W[b, order[r, s]]
                val = cum + 0.5 * (wg + 1.0) - mid
                for s in range(t, u):
                    out[b, r, order[r, s]] = val
                cum += wg
                t = u


def centered_ranks(order: np.ndarray, new: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted average ranks minus ``(sum(w) + 1) / 2``, as if entry p appeared w[p] times.

    Parameters
    ----------
    order, new : from :func:`sort_plan` of the (n_rdms, n_pairs) RDM vectors
    W : ndarray of shape (n_boot, n_pairs)
        Non-negative weights (entries of weight 0 get a value that carries no weight).

    Returns
    -------
    F : ndarray of shape (n_boot, n_rdms, n_pairs)
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    out = np.empty((W.shape[0], order.shape[0], W.shape[1]))
    _centered_ranks(order, new, W, out)
    return out


@numba.njit(cache=True, nogil=True)
def _group_tie_pairs(order, new, WT, out):  # pragma: no cover - compiled
    n_pairs, n_boot = WT.shape
    acc = np.zeros(n_boot, dtype=np.int64)
    for r in range(order.shape[0]):
        for b in range(n_boot):
            acc[b] = 0
        for t in range(n_pairs):
            if new[r, t] and t > 0:
                for b in range(n_boot):
                    out[r, b] += acc[b] * (acc[b] - 1) // 2
                    acc[b] = 0
            q = order[r, t]
            for b in range(n_boot):
                acc[b] += WT[q, b]
        for b in range(n_boot):
            out[r, b] += acc[b] * (acc[b] - 1) // 2


def group_tie_pairs(order: np.ndarray, new: np.ndarray, WT: np.ndarray) -> np.ndarray:
    """Weighted tied pairs ``sum_groups C(W_g, 2)`` of each RDM: (n_rdms, n_boot) int64.

    ``WT`` is the (n_pairs, n_boot) int64 transpose of the weights.
    """
    out = np.zeros((order.shape[0], WT.shape[1]), dtype=np.int64)
    _group_tie_pairs(order, new, WT, out)
    return out


@numba.njit(cache=True, nogil=True)
def _kendall_boot(xr, yr, orders, WT, dis, joint):  # pragma: no cover - compiled
    m, k, n_pairs = orders.shape
    n_boot = WT.shape[1]
    ymax = 0
    for j in range(k):
        for p in range(n_pairs):
            if yr[j, p] > ymax:
                ymax = yr[j, p]
    tree = np.zeros((ymax + 1, n_boot), dtype=np.int64)
    run = np.zeros(n_boot, dtype=np.int64)
    pre = np.zeros(n_boot, dtype=np.int64)
    grp = np.zeros(n_boot, dtype=np.int64)
    for i in range(m):
        for j in range(k):
            tree[:, :] = 0
            run[:] = 0
            grp[:] = 0
            px = -1
            py = -1
            for t in range(n_pairs):
                q = orders[i, j, t]
                x = xr[i, q]
                y = yr[j, q]
                if x != px or y != py:  # a new joint (x, y) group
                    for b in range(n_boot):
                        joint[i, j, b] += grp[b] * (grp[b] - 1) // 2
                        grp[b] = 0
                    px = x
                    py = y
                # pairs already seen with a strictly larger y: run - prefix(y)
                for b in range(n_boot):
                    pre[b] = 0
                idx = y
                while idx > 0:
                    for b in range(n_boot):
                        pre[b] += tree[idx, b]
                    idx -= idx & (-idx)
                for b in range(n_boot):
                    w = WT[q, b]
                    dis[i, j, b] += w * (run[b] - pre[b])
                    run[b] += w
                    grp[b] += w
                idx = y
                while idx <= ymax:
                    for b in range(n_boot):
                        tree[idx, b] += WT[q, b]
                    idx += idx & (-idx)
            for b in range(n_boot):
                joint[i, j, b] += grp[b] * (grp[b] - 1) // 2


def kendall_boot_counts(xr: np.ndarray, yr: np.ndarray, orders: np.ndarray, WT: np.ndarray):
    """Weighted discordant pairs and joint ties of every (model, brain) pair and sample.

    Parameters
    ----------
    xr : ndarray of shape (m, n_pairs) of int64
        Dense 1-based ranks of the model RDMs.
    yr : ndarray of shape (k, n_pairs) of int64
        Dense 1-based ranks of the brain RDMs.
    orders : ndarray of shape (m, k, n_pairs) of int64
        ``np.lexsort((yr[j], xr[i]))`` for every pair.
    WT : ndarray of shape (n_pairs, n_boot) of int64
        Pair multiplicities, one column per sample.

    Returns
    -------
    dis, joint : ndarray of shape (m, k, n_boot) of int64
        Discordant pairs (``x_p < x_q`` and ``y_p > y_q``) and pairs tied in both, counted
        over the expanded vectors (each entry repeated by its weight).
    """
    m, k = xr.shape[0], yr.shape[0]
    dis = np.zeros((m, k, WT.shape[1]), dtype=np.int64)
    joint = np.zeros((m, k, WT.shape[1]), dtype=np.int64)
    _kendall_boot(xr, yr, orders, np.ascontiguousarray(WT, dtype=np.int64), dis, joint)
    return dis, joint
