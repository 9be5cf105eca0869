"""Compiled (numba) bootstrap kernels for the rank-based RDM comparisons.

A bootstrap sample is a vector of integer pair weights ``w`` (how often each pair of
distinct stimuli appears, see :mod:`._bootstrap`), so every statistic is a weighted one
on fixed RDM vectors; the sort orders are computed once per RDM (or RDM pair) and the
kernels only walk them.

* :func:`rank_sums`: weighted average ranks minus their mean ``(N + 1) / 2`` of every
  RDM, one sample at a time (so they stay in cache), then one BLAS product per sample
  for the model x brain cross-products (spearman and rho-a follow).
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

from ..errors import ParameterError

__all__ = ["group_tie_pairs", "kendall_boot_counts", "rank_sums", "sort_plan"]


def sort_plan(v: np.ndarray):
    """Stable sort order of each row and the flag "starts a new tie group" in that order."""
    v = np.atleast_2d(np.asarray(v, dtype=float))
    order = np.argsort(v, axis=1, kind="stable")
    s = np.take_along_axis(v, order, axis=1)
    new = np.ones(s.shape, dtype=np.bool_)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    return np.ascontiguousarray(order, dtype=np.int64), new


@numba.njit(cache=True, nogil=True)
def _ranks_one(order, new, notie, w, F, ss):  # pragma: no cover - compiled
    n_rdm, n_pairs = order.shape
    tot = 0.0
    for p in range(n_pairs):
        tot += w[p]
    for r in range(n_rdm):
        cum = -0.5 * tot  # average rank minus (N + 1) / 2, built up along the sort order
        acc = 0.0
        if notie[r]:
            for t in range(n_pairs):
                q = order[r, t]
                wq = w[q]
                v = cum + 0.5 * wq
                F[r, q] = v
                acc += wq * v * v
                cum += wq
        else:
            t = 0
            while t < n_pairs:
                u = t + 1
                while u < n_pairs and not new[r, u]:
                    u += 1
                wg = 0.0
                for s in range(t, u):
                    wg += w[order[r, s]]
                v = cum + 0.5 * wg
                for s in range(t, u):
                    F[r, order[r, s]] = v
                acc += wg * v * v
                cum += wg
                t = u
        ss[r] = acc


def rank_sums(order: np.ndarray, new: np.ndarray, n_model: int, W: np.ndarray):
    """Weighted centred-rank cross-products of model x brain RDMs for each sample.

    Parameters
    ----------
    order, new : from :func:`sort_plan` of the stacked (model then brain) RDM vectors
    n_model : int
        How many of the stacked rows are model RDMs.
    W : ndarray of shape (n_boot, n_pairs)
        Pair weights, one row per sample.

    Returns
    -------
    num : ndarray of shape (n_boot, n_model, n_brain)
        ``sum_p w_p F_i[p] F_j[p]`` with ``F`` the average rank minus ``(N + 1) / 2``
        (a BLAS product per sample; ``F`` of one sample stays in cache).
    ss : ndarray of shape (n_boot, n_rdms)
        ``sum_p w_p F_r[p]^2``.
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    n_boot, n_pairs = W.shape
    n_rdm = order.shape[0]
    notie = new.all(1)
    F = np.empty((n_rdm, n_pairs))
    num = np.empty((n_boot, n_model, n_rdm - n_model))
    ss = np.empty((n_boot, n_rdm))
    for b in range(n_boot):
        _ranks_one(order, new, notie, W[b], F, ss[b])
        np.dot(F[:n_model] * W[b], F[n_model:].T, out=num[b])
    return num, ss


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
    ymax = yr.max()
    # int32 lanes (twice the SIMD width): every partial sum is at most sum(w) < 2**31
    tree = np.zeros((ymax + 1, n_boot), dtype=np.int32)
    run = np.zeros(n_boot, dtype=np.int32)
    pre = np.zeros(n_boot, dtype=np.int32)
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
                    dis[i, j, b] += np.int64(w) * (run[b] - pre[b])
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
    WT : ndarray of shape (n_pairs, n_boot) of int
        Pair multiplicities, one column per sample (summing to < 2**31 per sample).

    Returns
    -------
    dis, joint : ndarray of shape (m, k, n_boot) of int64
        Discordant pairs (``x_p < x_q`` and ``y_p > y_q``) and pairs tied in both, counted
        over the expanded vectors (each entry repeated by its weight).
    """
    m, k = xr.shape[0], yr.shape[0]
    dis = np.zeros((m, k, WT.shape[1]), dtype=np.int64)
    joint = np.zeros((m, k, WT.shape[1]), dtype=np.int64)
    if WT.sum(0).max(initial=0) >= 2**31:
        raise ParameterError("bootstrap weights sum to more than 2**31 pairs; use fewer stimuli.")
    _kendall_boot(xr, yr, orders, np.ascontiguousarray(WT, dtype=np.int32), dis, joint)
    return dis, joint
