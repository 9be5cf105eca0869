"""Exact float64 scoring of every ridge penalty with alpha-independent GEMMs (partial fractions).

A fold is factorised as ``pred(alpha) = A diag(w) B`` with ``w_k = 1 / (s_k + alpha)``,
``B = T.T @ Yc`` (r, n_targets) and ``A`` (n_test, r). Per target, with ``G = A.T @ A``,

    SSE(alpha) = |Yt|^2 - 2 sum_k w_k B_k (A.T Yt)_k + sum_{k,l} w_k w_l B_k G_kl B_l.

For ``s_k != s_l``, ``w_k w_l = (w_k - w_l) / (s_l - s_k)``, so the off-diagonal part of the
quadratic form is ``2 sum_k w_k B_k D_k`` with ``D = H @ B`` and ``H_kl = G_kl / (s_l - s_k)``
(antisymmetric). The three large GEMMs (``T.T Yc``, ``A.T Yt``, ``H B``) do not depend on
alpha: about half the flops of forming every alpha's predictions, and each alpha then costs
O(r) per target (one small GEMM for all alphas).

Numerical safeguards:

* eigenvalues closer than ``CLUSTER_RTOL * (s + min(alpha))`` form a cluster whose internal
  pairs are not split by partial fractions (``H`` is zero inside it). A small
  non-degenerate cluster's pairs are evaluated per alpha (one term per pair, target and
  alpha); an exactly degenerate cluster (e.g. a null space of exact zeros) or a larger one
  is a block contributing ``w(mean s_c)^2 (B_c^T G_cc B_c)`` (alpha independent), exact for
  a tie and otherwise with its error bounded and added to the estimate below (e.g. a
  numerical null space, whose test columns vanish);
* ``sum_k B_k D_k = 0`` exactly (antisymmetry), so ``w`` is centred per alpha in that term
  (weighted median), which removes the leading ``1 / alpha`` part that would cancel;
* every (alpha, target) gets a rounding-error bound (``eps`` times the sum of absolute
  values of the terms, the ``H B`` GEMM bounded by Cauchy-Schwarz); scores whose bound
  exceeds ``ERR_RTOL`` of the SSE are recomputed by the direct GEMM (``STATS`` counts them);
* the caller falls back to the direct GEMM for the whole fold when :func:`pf_plan`
  returns None (too few alphas for the saving, unsorted or non-finite spectra).

Float32 variant (``score_dtype="float32"``, ``pf_plan(..., float32=True)``): the caller
computes ``B = T.T @ Yc`` in float32 and every term is then formed from that rounded
``B`` consistently, which is a perturbation of the training targets (SSE moves by
``2 <resid, dpred>``, the same first-order error as the float32 direct GEMM's inputs; the
bound's conditioning term takes float32's roundoff). ``A.T Yt`` and the per-alpha sums stay
float64 (in float32 they would lose 2e-5 to cancellation on high-R^2 voxels, measured).
``H @ B`` runs in float32 except ``H``'s diagonal blocks of ``max(SPLIT_MIN, SPLIT_BLOCK *
r)`` rows (close eigenvalues, its largest entries), which stay float64 (measured on the
benchmark profile: all of ``H @ B`` in float32 errs by 9e-6, split 9e-7, as the float32
direct GEMM's 7e-7). The bound uses float32's roundoff for those parts and is loose
(10^3 to 10^4 times the measured error), so it only guards against catastrophic
cancellation: a score whose bound exceeds ``ERR_RTOL32`` (1e-2) is recomputed by the
float64 direct GEMM; typical accuracy is measured, not certified.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLUSTER_RTOL", "COST_FRACTION", "ERR_RTOL", "ERR_RTOL32", "PAIR_MAX", "SPLIT_BLOCK",
           "SPLIT_MIN", "STATS", "pf_plan", "pf_sse"]

#: neighbouring eigenvalues closer than this times ``s + min(alpha)`` share a cluster
CLUSTER_RTOL = 1e-3
#: largest non-degenerate cluster whose pairs are evaluated exactly per alpha
PAIR_MAX = 8
#: a score whose rounding-error bound exceeds this fraction of its SSE is recomputed directly
ERR_RTOL = 1e-10
#: float32 variant: a score whose bound exceeds this fraction of its SSE is recomputed directly
ERR_RTOL32 = 1e-2
#: float32 variant: ``H``'s diagonal blocks of this fraction of ``r`` stay float64 (its
#: largest entries: neighbouring eigenvalues); the rest of ``H @ B`` runs in float32
SPLIT_BLOCK = 1 / 8
#: ... and at least this many (``H @ B`` entirely float64 below ``r`` of about twice this:
#: measured, small blocks of a small spectrum leave too much of ``H`` to float32)
SPLIT_MIN = 64
#: partial fractions are used only below this fraction of the direct GEMM's flops
COST_FRACTION = 0.8
#: counters (tests and diagnostics; not thread-safe): fold calls declined by
#: :func:`pf_plan`, scores recomputed by the direct GEMM, target blocks and scores scored
#: by partial fractions
STATS = {"declined": 0, "direct_scores": 0, "pf_blocks": 0, "pf_scores": 0}

_EPS = np.finfo(np.float64).eps / 2  # unit roundoff
_EPS32 = float(np.finfo(np.float32).eps) / 2


def _clusters(s: np.ndarray, amin: float):
    """Cluster label per eigenvalue (ascending ``s``) and the list of index ranges."""
    gap = np.diff(s)
    split = gap > CLUSTER_RTOL * (s[1:] + amin)
    labels = np.concatenate([[0], np.cumsum(split)])
    starts = np.concatenate([[0], np.flatnonzero(split) + 1])
    ends = np.concatenate([starts[1:], [s.size]])
    return labels, list(zip(starts.tolist(), ends.tolist()))


def pf_plan(s: np.ndarray, A: np.ndarray, n_train: int, alphas: np.ndarray,
            direct_flops: float, tnorm=None, float32: bool = False):
    """Alpha- and target-independent part of the scoring, or None when not worth it/unsafe.

    Parameters
    ----------
    s : ndarray (r,), ascending eigenvalues
    A : ndarray (n_test, r)
    n_train : int
    alphas : ndarray (n_alphas,), positive
    direct_flops : float
        Flops per target of the direct path (the caller's GEMMs), for the cost test.
    tnorm : ndarray (r,), optional
        Column norms of ``T`` (1 for orthonormal columns, the default).
    float32 : bool
        Plan for ``B`` rounded to float32 by the caller and the off-diagonal blocks of
        ``H @ B`` in float32 (:func:`pf_sse` takes ``B32``); the bound then uses float32's
        roundoff for those two and ``ERR_RTOL32``.
    """
    r = s.size
    n_a = alphas.size
    if (r < 2 or not np.all(np.isfinite(s)) or not np.all(np.diff(s) >= 0)
            or not np.all(alphas > 0) or not np.all(np.isfinite(alphas))):
        return None
    amin = float(alphas.min())
    labels, ranges = _clusters(s, amin)
    # small non-degenerate clusters: their pairs are evaluated per alpha (one GEMM row
    # each, within a budget of r pairs); exactly degenerate and larger clusters are
    # "blocks": one alpha-independent quadratic form times w(mean s)^2, the error of that
    # (zero for an exact tie) bounded and added to the rounding bound
    blocks, pair_list = [], []
    for a, b in ranges:
        if b - a < 2:
            continue
        npair = (b - a) * (b - a - 1) // 2
        if s[a] == s[b - 1] or b - a > PAIR_MAX or len(pair_list) + npair > r:
            blocks.append((a, b))
        else:
            pair_list += [(k, m) for k in range(a, b) for m in range(k + 1, b)]
    pairs = np.array(pair_list, dtype=np.intp).reshape(-1, 2)
    n_te = A.shape[0]
    n_extra = len(blocks) + len(pairs)
    pf_flops = 2.0 * (r * n_train + r * n_te + r * r + sum((b - a) ** 2 for a, b in blocks)
                      + 2 * n_a * (3 * r + n_extra))
    if pf_flops > COST_FRACTION * direct_flops:
        return None
    G = A.T @ A
    G = 0.5 * (G + G.T)  # exactly symmetric, so H below is exactly antisymmetric
    same = labels[:, None] == labels[None, :]
    ds = s[None, :] - s[:, None]
    H = np.where(same, 0.0, G / np.where(same, 1.0, ds))
    g = np.diag(G).copy()
    tn = np.ones(r) if tnorm is None else np.asarray(tnorm, dtype=float)
    w = 1.0 / (s[None, :] + alphas[:, None])  # (n_a, r), descending along k
    # coefficients of the extra rows: w(mean s_c)^2 (blocks), 2 w_k w_l (cluster pairs)
    wb = 1.0 / (np.array([s[a:b].mean() for a, b in blocks]) + alphas[:, None])
    wx = np.concatenate([wb * wb, 2.0 * w[:, pairs[:, 0]] * w[:, pairs[:, 1]]], axis=1)
    # |w_k w_l - wb^2| <= w(s_min)^2 - w(s_max)^2 on a block (w positive, decreasing in s)
    wdev = np.stack([w[:, a] ** 2 - w[:, b - 1] ** 2 for a, b in blocks], axis=1) \
        if blocks else np.zeros((n_a, 0))
    gb = np.array([np.sqrt(((G[a:b, a:b] - np.diag(g[a:b])) ** 2).sum()) for a, b in blocks])
    hn = np.sqrt(np.einsum("kl,kl->k", H, H))
    split = {"float32": bool(float32), "hn_err": hn, "eps_b": _EPS32 if float32 else _EPS,
             "rtol": ERR_RTOL32 if float32 else ERR_RTOL}
    bs = max(SPLIT_MIN, int(np.ceil(SPLIT_BLOCK * r)))
    if float32 and bs < r:  # diagonal blocks (close eigenvalues, H's largest entries) float64
        diag = [(a, min(a + bs, r)) for a in range(0, r, bs)]
        off = H.copy()
        for a, b in diag:
            off[a:b, a:b] = 0.0
        hoff = np.sqrt(np.einsum("kl,kl->k", off, off))
        hin = np.sqrt(np.clip(hn * hn - hoff * hoff, 0.0, None))
        split.update(H32=off.astype(np.float32), Hd=[(a, b, H[a:b, a:b].copy()) for a, b in diag],
                     hn_err=hin + (_EPS32 / _EPS) * hoff)
    return {**split, "H": H, "hn": hn, "g": g, "G": G, "w": w,
            "wx": wx, "wdev": wdev, "gb": gb, "blocks": blocks, "pairs": pairs,
            # rounding of B = T.T Yc moves the predictions by about
            # eps sqrt(n_train) |Yc| sqrt(sum_k g_k w_k^2 |T_k|^2) (ill-conditioned fits)
            "nu": np.sqrt(n_train) * np.sqrt((g * (w * tn) ** 2).sum(1)),
            "sqrt_g": np.sqrt(np.clip(g, 0.0, None))}


def _centre(w: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-alpha weighted median of ``w`` (weights ``q`` >= 0 over the spectrum)."""
    tot = q.sum()
    if not tot > 0:
        return np.median(w, axis=1)
    k = int(np.searchsorted(np.cumsum(q), 0.5 * tot))
    return w[:, min(k, w.shape[1] - 1)]


def pf_sse(plan: dict, B: np.ndarray, Cy: np.ndarray, yy: np.ndarray, ycn: np.ndarray,
           B32=None):
    """Every alpha's SSE for a block of targets, and a boolean mask of untrusted entries.

    Parameters
    ----------
    plan : dict from :func:`pf_plan`
    B : ndarray (r, n_targets), ``T.T @ Yc``
    Cy : ndarray (r, n_targets), ``A.T @ Yt``
    yy : ndarray (n_targets,), ``sum(Yt ** 2, 0)``
    ycn : ndarray (n_targets,), ``|Yc|`` per target
    B32 : ndarray (r, n_targets) of float32, optional
        With a ``float32`` plan: ``B`` as computed in float32 (``B`` is its float64 copy).

    Returns
    -------
    sse : ndarray (n_alphas, n_targets)
    bad : ndarray of bool (n_alphas, n_targets), rounding-error bound above ``ERR_RTOL``
    """
    H, hn, g, G, w, wx = plan["H"], plan["hn"], plan["g"], plan["G"], plan["w"], plan["wx"]
    blocks, pairs = plan["blocks"], plan["pairs"]
    r, nv = B.shape
    if "H32" in plan:  # B exact in float32: off-diagonal blocks float32, diagonal float64
        D = (plan["H32"] @ B32).astype(np.float64)
        for a, b, Hd in plan["Hd"]:
            D[a:b] += Hd @ B[a:b]
    else:
        D = H @ B
    bb = np.einsum("kv,kv->k", B, B)
    c = _centre(w, hn * np.sqrt(bb))
    # signed terms (rows of M) and their coefficients per alpha (columns of W): one GEMM
    ne = len(blocks)
    M = np.empty((3 * r + wx.shape[1], nv))
    np.multiply(B, Cy, out=M[:r])
    np.multiply(B, B, out=M[r:2 * r])
    M[r:2 * r] *= g[:, None]
    np.multiply(B, D, out=M[2 * r:3 * r])
    for i, (a, b) in enumerate(blocks):  # alpha-independent quadratic forms
        Bc = B[a:b]
        Gc = G[a:b, a:b] - np.diag(g[a:b])
        M[3 * r + i] = np.einsum("kv,kv->v", Bc, Gc @ Bc)
    if len(pairs):
        np.multiply(B[pairs[:, 0]], B[pairs[:, 1]], out=M[3 * r + ne:])
        M[3 * r + ne:] *= G[pairs[:, 0], pairs[:, 1]][:, None]
    W = np.concatenate([-2.0 * w, w * w, 2.0 * (w - c[:, None]), wx], axis=1)
    sse = yy[None, :] + W @ M
    # bound: the same sums in absolute values (float32 GEMMs of non-negative terms in the
    # float32 variant, inflated by their worst-case relative rounding), plus
    # * A.T Yt's rounding, about eps |A_k| |Yt| (times the length factor below) in B_k Cy_k,
    # * the H @ B GEMM's by Cauchy-Schwarz: |B_k| |H_k| |B| (float32 rows at float32 eps)
    f32 = plan["float32"]
    bd = np.float32 if f32 else np.float64
    R = np.empty((2 * r, nv), dtype=bd)
    np.abs(M[:r], out=R[:r], casting="same_kind")
    R[r:] = M[r:2 * r]  # g B^2 >= 0
    absB = np.abs(B32) if f32 else np.abs(B)
    sqrt_yy = np.sqrt(np.abs(yy))
    E = np.concatenate([2.0 * np.abs(w - c[:, None]) * plan["hn_err"],
                        2.0 * w * plan["sqrt_g"]]).astype(bd) @ absB
    n_a = w.shape[0]
    bound = np.concatenate([2.0 * w, w * w], axis=1).astype(bd) @ R
    bound = bound.astype(np.float64)
    bound += E[:n_a] * np.sqrt(np.einsum("kv,kv->v", B, B))[None, :]
    bound += E[n_a:] * sqrt_yy[None, :]
    if wx.shape[1]:
        # sum |B_k G_kl B_l| <= |G_cc|_F |B_c|^2 on each block; cluster pairs as they are
        qb = np.array([np.einsum("kv,kv->v", B[a:b], B[a:b]) for a, b in blocks])
        qb = qb.reshape(ne, nv) * plan["gb"][:, None]
        bound += np.abs(wx) @ np.concatenate([qb, np.abs(M[3 * r + ne:])])
    if f32:  # non-negative float32 sums of at most 2r + 2 terms
        bound *= 1.0 + 2.0 * (2 * r + 2) * _EPS32
    bound += yy[None, :]
    # GEMM/sum rounding: a few units of roundoff per sqrt(length) of the reductions
    err = (2.0 * np.sqrt(r) + 4.0) * _EPS * bound
    # conditioning: the rounding of B, as the direct path's, moves SSE by 2 |resid| |dpred|
    err += 8.0 * plan["eps_b"] * plan["nu"][:, None] * (ycn * sqrt_yy)[None, :] \
        * np.sqrt(np.abs(sse) / np.where(yy > 0, yy, 1.0))
    if ne:  # blocks that are not exact ties: w(mean s)^2 for w_k w_l
        err += plan["wdev"] @ qb
    bad = ~(err <= plan["rtol"] * np.abs(sse))  # NaN or inf: bad too
    STATS["pf_blocks"] += 1
    STATS["pf_scores"] += sse.size
    return sse, bad
