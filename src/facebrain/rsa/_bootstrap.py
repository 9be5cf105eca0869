"""Bootstrap over stimuli and/or subjects, as pure functions on RDM vectors.

A stimulus bootstrap sample draws ``n`` stimulus indices with replacement.
rsatoolbox (``bootstrap_sample_pattern`` + ``RDMs.subsample_pattern``) builds
the sample's RDM from the sorted indices with the diagonal set to NaN, so a
pair of two copies of the same stimulus is dropped and a pair of distinct
stimuli ``(i, j)`` appears ``c_i * c_j`` times (``c`` = how often each was
drawn). We reproduce that exactly through integer pair weights instead of
materialising the repeated vector; the cov-weighted methods, whose whitening
depends on the pattern structure, use the materialised RDM.

Sample ``b`` is drawn from ``numpy.random.default_rng([seed, b])``, so results do
not depend on how samples are split into tasks.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._kernels import COMPARISONS, COV_METHODS, dense_ranks

__all__ = [
    "RANK_BOOT",
    "bootstrap_chunk",
    "draw_sample",
    "kendall_boot",
    "pair_weights",
    "prepare",
    "rank_corr_boot",
    "sample_rdm_vectors",
]


def draw_sample(seed: int, b: int, n_stimuli: int, n_subjects: int, over: str):
    """Stimulus and subject indices of bootstrap sample ``b`` (None when not resampled)."""
    rng = np.random.default_rng([int(seed), int(b)])
    stim = rng.integers(0, n_stimuli, n_stimuli) if over in ("stimuli", "both") else None
    subj = rng.integers(0, n_subjects, n_subjects) if over in ("subjects", "both") else None
    return stim, subj


_TRIU: dict = {}


def _triu(n):
    if n not in _TRIU:
        _TRIU.clear()
        _TRIU[n] = np.triu_indices(n, 1)
    return _TRIU[n]


def pair_weights(idx: np.ndarray, n: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Multiplicity ``c_i c_j`` of every pair ``i < j`` (condensed order) in a sample."""
    c = np.bincount(idx, minlength=n).astype(float)
    iu, ju = _triu(n)
    w = c[iu] * c[ju]
    return w if valid is None else w[valid]


def sample_rdm_vectors(vectors: np.ndarray, idx: np.ndarray, n: int, valid: np.ndarray):
    """Materialised bootstrap RDM vectors exactly as ``RDMs.subsample_pattern`` builds them.

    Returns the vectors with NaN entries dropped and the boolean mask of kept pairs.
    """
    full = np.full((vectors.shape[0], n * (n - 1) // 2), np.nan)
    full[:, valid] = vectors
    iu, ju = np.triu_indices(n, 1)
    mats = np.full((vectors.shape[0], n, n), np.nan)
    mats[:, iu, ju] = full
    mats[:, ju, iu] = full
    sel = np.sort(idx)
    sub = mats[:, sel][:, :, sel]
    si, sj = np.triu_indices(sel.size, 1)
    vec = sub[:, si, sj]
    keep = ~np.isnan(vec).any(axis=0)
    return vec[:, keep], keep


def bootstrap_chunk(model: np.ndarray, brain: np.ndarray, n: int, valid: np.ndarray,
                    method: str, seed: int, samples, over: str, n_subjects: int, prep=None,
                    device=None):
    """Scores of bootstrap samples ``samples`` (iterable of ints).

    Parameters
    ----------
    model : ndarray of shape (m, n_valid)
    brain : ndarray of shape (k, n_valid)
        RDM vectors restricted to the ``valid`` pairs.
    n : int
        Number of stimuli.
    prep : dict, optional
        :func:`prepare` of ``model``/``brain`` (computed here when not given).
    device : str, optional
        ``"cuda"`` (or ``"cpu"``): run the rank-method kernels in torch on that device.

    Returns
    -------
    scores : ndarray of shape (n_samples, m, k)
        Stimulus-bootstrap scores (the point scores repeated when ``over="subjects"``).
    subjects : ndarray of shape (n_samples, n_subjects) of int, or None
    """
    samples = list(samples)
    draws = [draw_sample(seed, b, n, n_subjects, over) for b in samples]
    subj = None if over == "stimuli" else np.array([d[1] for d in draws])
    m, k = model.shape[0], brain.shape[0]
    out = np.empty((len(samples), m, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if over == "subjects":
            out[:] = _point(model, brain, method, valid)
            return out, subj
        stim = [d[0] for d in draws]
        if method in COV_METHODS:
            for t, idx in enumerate(stim):
                both = np.concatenate([model, brain])
                vec, keep = sample_rdm_vectors(both, idx, n, valid)
                out[t] = COMPARISONS[method](vec[:m], vec[m:], nan_idx=keep)
            return out, subj
        W = np.array([pair_weights(idx, n, valid) for idx in stim])
        pm = prep if prep is not None else prepare(model, brain, method)
        if device is not None and method in RANK_BOOT:
            from ._torch_boot import rank_boot_torch

            out[:] = rank_boot_torch(pm, W, method, device)
        elif method in ("spearman", "rho-a"):
            out[:] = rank_corr_boot(pm, W, method)
        elif method in ("tau-a", "tau-b", "kendall"):
            out[:] = kendall_boot(pm, W, method)
        else:
            for t in range(len(stim)):
                out[t] = COMPARISONS[method](model, brain, W[t])
    return out, subj


#: methods whose stimulus bootstrap runs through the compiled (or torch) rank kernels
RANK_BOOT = ("kendall", "rho-a", "spearman", "tau-a", "tau-b")


def prepare(model, brain, method):
    """Per-RDM precomputation shared by all bootstrap chunks (sort orders for rank methods).

    For spearman/rho-a the stable sort order and tie groups of every RDM; for Kendall's
    tau the dense ranks, tie groups and, for every (model, brain) pair, the order of the
    pairs sorted by (model rank, brain rank).
    """
    if method not in RANK_BOOT:
        return None
    from ._compiled import sort_plan  # numba loads on first use, not with facebrain.rsa

    if method in ("spearman", "rho-a"):
        order, new = sort_plan(np.concatenate([model, brain]))
        return {"method": method, "order": order, "new": new, "m": model.shape[0]}
    if method in ("tau-a", "tau-b", "kendall"):
        dm = dense_ranks(model).astype(np.int64)
        db = dense_ranks(brain).astype(np.int64)
        orders = np.empty((dm.shape[0], db.shape[0], dm.shape[1]), dtype=np.int64)
        for i, x in enumerate(dm):
            for j, y in enumerate(db):
                orders[i, j] = np.lexsort((y, x))
        om, nm = sort_plan(dm)
        ob, nb = sort_plan(db)
        return {"method": method, "dm": dm, "db": db, "orders": orders, "om": om, "nm": nm,
                "ob": ob, "nb": nb}
    return None


def _point(model, brain, method, valid):
    if method in COV_METHODS:
        return COMPARISONS[method](model, brain, nan_idx=valid)
    return COMPARISONS[method](model, brain)


def rank_corr_boot(prep: dict, W: np.ndarray, method: str) -> np.ndarray:
    """Spearman or rho-a of every (model, brain) pair for each weight vector: (n_boot, m, k).

    Equal to ``rsatoolbox.rdm.compare`` on the expanded (bootstrap) vectors: Pearson
    correlation of average ranks, or ``12 sum(d1 d2) / (N^3 - N)`` for rho-a.
    """
    from ._compiled import rank_sums

    W = np.asarray(W, dtype=np.float64)
    m = prep["m"]
    num, ss = rank_sums(prep["order"], prep["new"], m, W)
    s1, s2 = ss[:, :m, None], ss[:, None, m:]
    n = W.sum(1)[:, None, None]
    tol = 1e-12 * n**3
    bad = (s1 <= tol) | (s2 <= tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "rho-a":
            out = num * (12.0 / (n**3 - n))
        else:
            out = num / np.sqrt(s1 * s2)
    return np.where(bad, np.nan, out)


def kendall_boot(prep: dict, W: np.ndarray, method: str) -> np.ndarray:
    """Tau-a or tau-b of every (model, brain) pair for each weight vector: (n_boot, m, k).

    Exact integer counts from :func:`._compiled.kendall_boot_counts` (Knight's algorithm).
    """
    from ._compiled import group_tie_pairs, kendall_boot_counts

    WT = np.ascontiguousarray(np.rint(np.asarray(W)).T, dtype=np.int64)
    dis, joint = kendall_boot_counts(prep["dm"], prep["db"], prep["orders"], WT)
    xt = group_tie_pairs(prep["om"], prep["nm"], WT)[:, None, :]
    yt = group_tie_pairs(prep["ob"], prep["nb"], WT)[None, :, :]
    big_n = WT.sum(0)
    tot = (big_n * (big_n - 1) // 2)[None, None, :]
    cmd = (tot - xt - yt + joint - 2 * dis).astype(np.float64)
    tot = tot.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "tau-a":
            out = np.clip(cmd / tot, -1.0, 1.0)
            out = np.where((xt < tot) & (yt < tot), out, np.nan)
        else:
            den = np.sqrt((tot - xt).astype(np.float64) * (tot - yt).astype(np.float64))
            out = np.where(den > 0, cmd / den, np.nan)
    return out.transpose(2, 0, 1)
