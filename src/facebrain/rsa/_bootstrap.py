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

from ._kernels import (
    COMPARISONS,
    COV_METHODS,
    RankPrep,
    _scipy_kendall_dis,
    _tie_pairs,
    boot_rank_corr,
    dense_ranks,
    inversions,
    kendall_counts,
)

__all__ = [
    "bootstrap_chunk",
    "draw_sample",
    "pair_weights",
    "prepare",
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
                    method: str, seed: int, samples, over: str, n_subjects: int, prep=None):
    """Scores of bootstrap samples ``samples`` (iterable of ints).

    Parameters
    ----------
    model : ndarray of shape (m, n_valid)
    brain : ndarray of shape (k, n_valid)
        RDM vectors restricted to the ``valid`` pairs.
    n : int
        Number of stimuli.

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
        if method in ("spearman", "rho-a"):
            pm, pb = prep if prep is not None else prepare(model, brain, method)
            out[:] = boot_rank_corr(pm, pb, W, method)
        elif method in ("tau-a", "tau-b", "kendall"):
            out[:] = _tau_boot(prep if prep is not None else prepare(model, brain, method), W,
                               method)
        else:
            for t in range(len(stim)):
                out[t] = COMPARISONS[method](model, brain, W[t])
    return out, subj


def prepare(model, brain, method):
    """Per-RDM precomputation shared by all bootstrap chunks (sort orders for rank methods)."""
    if method in ("spearman", "rho-a"):
        return RankPrep(model), RankPrep(brain)
    if method in ("tau-a", "tau-b", "kendall"):
        dm, db = dense_ranks(model), dense_ranks(brain)
        return {
            "dm": dm,
            "db": db,
            "x_unique": np.array([np.unique(r).size == r.size for r in dm]),
            "y_unique": np.array([np.unique(r).size == r.size for r in db]),
            "orders": [np.argsort(r, kind="stable") for r in dm],
        }
    return None


def _point(model, brain, method, valid):
    if method in COV_METHODS:
        return COMPARISONS[method](model, brain, nan_idx=valid)
    return COMPARISONS[method](model, brain)


def _tau_boot(prep: dict, W, method):
    """Weighted Kendall tau for many samples: x sorted once per model RDM, no per-pair sort.

    The discordant count only needs the sequence sorted by x (pairs tied in x
    are never counted), so each (sample, model, brain) triple costs one gather
    and one O(n log n) inversion count.
    """
    dm, db, orders = prep["dm"], prep["db"], prep["orders"]
    x_unique, y_unique = prep["x_unique"], prep["y_unique"]
    m, k = dm.shape[0], db.shape[0]
    out = np.empty((W.shape[0], m, k))
    for t, w in enumerate(W):
        big_n = w.sum()
        tot = big_n * (big_n - 1) / 2.0
        self_pairs = 0.5 * (w * (w - 1)).sum()
        xt = [_tie_pairs(r, w) for r in dm]
        yt = [_tie_pairs(r, w) for r in db]
        for i in range(m):
            o = orders[i]
            wo = w[o]
            keep = wo > 0
            o, wo = o[keep], wo[keep]
            xs = dm[i, o]
            if _scipy_kendall_dis is not None:
                # expanded sequence (each pair repeated by its weight), sorted by x once
                e = np.repeat(o, wo.astype(np.intp))
                xs_rep = dm[i, e]
                ys_rep = db[:, e]
            for j in range(k):
                if x_unique[i] or y_unique[j]:
                    if _scipy_kendall_dis is not None:
                        dis = float(_scipy_kendall_dis(xs_rep, ys_rep[j]))
                    else:
                        ys = db[j, o]
                        # ties in x sorted by y so they are not counted as inversions
                        o2 = np.lexsort((ys, xs))
                        dis = float(inversions(ys[o2][None], wo[o2][None])[0])
                    cmd = tot - xt[i] - yt[j] + self_pairs - 2.0 * dis
                else:
                    cmd, _, _, _ = kendall_counts(dm[i, o], db[j, o], wo)
                if method == "tau-a":
                    ok = xt[i] < tot and yt[j] < tot
                    out[t, i, j] = min(1.0, max(-1.0, cmd / tot)) if ok else np.nan
                else:
                    den = np.sqrt((tot - xt[i]) * (tot - yt[j]))
                    out[t, i, j] = cmd / den if den > 0 else np.nan
    return out
