"""The rank-method stimulus bootstrap in torch, for ``device="cuda"`` (``"cpu"`` runs the same
code and is what the tests compare with the compiled kernels and rsatoolbox).

Everything is float64 on the device; every count is an integer below 2**53, so the
Kendall counts are exact and spearman/rho-a agree with the CPU kernels to rounding.
Weighted ranks come from a gather, a per-tie-group ``index_add`` and a cumulative sum;
Kendall's discordant pairs from a bottom-up merge sort vectorised over (brain RDM,
sample) rows (O(n log^2 n) work, all in parallel). torch is imported only here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["inversions_torch", "rank_boot_torch"]


def _group_ids(new):
    """Tie-group index along the sorted order from the "starts a group" flags."""
    import torch

    return torch.cumsum(new.to(torch.int64), dim=-1) - 1


def _centred_ranks(order, gid, W):
    """(B, P) weights -> (B, P) weighted average rank minus (N + 1) / 2, original order."""
    import torch

    ws = W[:, order]
    tot = torch.zeros(W.shape[0], int(gid[-1]) + 1, dtype=W.dtype, device=W.device)
    tot.index_add_(1, gid, ws)
    before = torch.cumsum(tot, dim=1) - tot
    val = before + 0.5 * tot - 0.5 * W.sum(1, keepdim=True)
    out = torch.empty_like(W)
    out[:, order] = val[:, gid]
    return out


def _tie_pairs(order, gid, W):
    """sum over tie groups of C(W_g, 2): (B,)."""
    import torch

    tot = torch.zeros(W.shape[0], int(gid[-1]) + 1, dtype=W.dtype, device=W.device)
    tot.index_add_(1, gid, W[:, order])
    return (tot * (tot - 1)).sum(1) / 2


def inversions_torch(y, w):
    """Weighted strict inversions of each row (``p < q`` and ``y[p] > y[q]``).

    Parameters
    ----------
    y : tensor of shape (n_rows, n) of int64
    w : tensor of shape (n_rows, n) of float64

    Returns
    -------
    tensor of shape (n_rows,)
    """
    import torch

    rows, n = y.shape
    size = 1 << max(int(np.ceil(np.log2(max(n, 1)))), 0)
    if size != n:
        pad = size - n
        y = torch.cat([y, torch.full((rows, pad), int(y.max()) + 1, dtype=y.dtype,
                                     device=y.device)], 1)
        w = torch.cat([w, torch.zeros((rows, pad), dtype=w.dtype, device=w.device)], 1)
    total = torch.zeros(rows, dtype=w.dtype, device=w.device)
    s = 1
    while s < size:
        nb = size // (2 * s)
        yb = y.reshape(rows, nb, 2 * s)
        wb = w.reshape(rows, nb, 2 * s)
        side = (torch.arange(2 * s, device=y.device) >= s).to(torch.int64)
        order = torch.argsort(yb * 2 + side, dim=2, stable=True)
        ys = torch.gather(yb, 2, order)
        ws = torch.gather(wb, 2, order)
        right = torch.gather(side.expand(rows, nb, 2 * s), 2, order) == 1
        left_le = torch.cumsum(torch.where(right, 0.0, ws), dim=2)
        total += torch.where(right, ws * (left_le[..., -1:] - left_le), 0.0).sum((1, 2))
        y = ys.reshape(rows, size)
        w = ws.reshape(rows, size)
        s *= 2
    return total


def rank_boot_torch(prep: dict, W: np.ndarray, method: str, device: str) -> np.ndarray:
    """Bootstrap scores (n_boot, m, k) of a rank method for weight rows ``W`` on ``device``.

    ``prep`` is :func:`._bootstrap.prepare`'s dict for ``method``.
    """
    import torch

    dev = torch.device(device)
    Wt = torch.as_tensor(np.asarray(W, dtype=np.float64), device=dev)
    n = Wt.sum(1)
    if method in ("spearman", "rho-a"):
        order = torch.as_tensor(prep["order"], device=dev)
        gids = _group_ids(torch.as_tensor(prep["new"], device=dev))
        m = prep["m"]
        F = torch.stack([_centred_ranks(order[r], gids[r], Wt) for r in range(order.shape[0])],
                        dim=1)  # (B, R, P)
        Fm, Fb = F[:, :m], F[:, m:]
        num = (Fm * Wt[:, None, :]) @ Fb.transpose(1, 2)
        ss = (F * F * Wt[:, None, :]).sum(-1)
        s1, s2 = ss[:, :m, None], ss[:, None, m:]
        tol = 1e-12 * n[:, None, None] ** 3
        if method == "rho-a":
            out = num * (12.0 / (n**3 - n))[:, None, None]
        else:
            out = num / torch.sqrt(s1 * s2)
        out = torch.where((s1 <= tol) | (s2 <= tol), torch.nan, out)
        return out.cpu().numpy()
    dm = torch.as_tensor(prep["dm"], device=dev)
    db = torch.as_tensor(prep["db"], device=dev)
    orders = torch.as_tensor(prep["orders"], device=dev)
    om, ob = torch.as_tensor(prep["om"], device=dev), torch.as_tensor(prep["ob"], device=dev)
    gm = _group_ids(torch.as_tensor(prep["nm"], device=dev))
    gb = _group_ids(torch.as_tensor(prep["nb"], device=dev))
    B, P = Wt.shape
    m, k = dm.shape[0], db.shape[0]
    xt = torch.stack([_tie_pairs(om[i], gm[i], Wt) for i in range(m)], 1)  # (B, m)
    yt = torch.stack([_tie_pairs(ob[j], gb[j], Wt) for j in range(k)], 1)  # (B, k)
    tot = n * (n - 1) / 2
    out = torch.empty(B, m, k, dtype=torch.float64, device=dev)
    offs = (torch.arange(k, device=dev) * P)[:, None]
    for i in range(m):
        o = orders[i]  # (k, P)
        ys = torch.gather(db, 1, o)
        xs = dm[i][o]
        ws = Wt[:, o.reshape(-1)].reshape(B, k, P)
        dis = inversions_torch(ys[None].expand(B, k, P).reshape(B * k, P),
                               ws.reshape(B * k, P)).reshape(B, k)
        change = torch.ones(k, P, dtype=torch.bool, device=dev)
        change[:, 1:] = (xs[:, 1:] != xs[:, :-1]) | (ys[:, 1:] != ys[:, :-1])
        gid = (torch.cumsum(change.to(torch.int64), 1) - 1 + offs).reshape(-1)
        g = torch.zeros(B, k * P, dtype=torch.float64, device=dev)
        g.index_add_(1, gid, ws.reshape(B, -1))
        joint = (g * (g - 1) / 2).reshape(B, k, P).sum(-1)
        cmd = tot[:, None] - xt[:, i:i + 1] - yt + joint - 2 * dis
        if method == "tau-a":
            val = torch.clamp(cmd / tot[:, None], -1.0, 1.0)
            ok = (xt[:, i:i + 1] < tot[:, None]) & (yt < tot[:, None])
        else:
            den = torch.sqrt((tot[:, None] - xt[:, i:i + 1]) * (tot[:, None] - yt))
            val = cmd / den
            ok = den > 0
        out[:, i] = torch.where(ok, val, torch.nan)
    return out.cpu().numpy()
