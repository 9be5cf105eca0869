"""Banded ridge equals himalaya's GroupRidgeCV (BandedRidgeCV) on a shared grid."""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.backend import set_backend
from himalaya.ridge import BandedRidgeCV
from sklearn.model_selection import KFold

from facebrain.encoding._banded import banded_ridge_cv, default_gammas, predict_banded

ALPHAS = np.logspace(-2, 4, 7)


@pytest.mark.parametrize("n_spaces", [2, 3])
def test_banded_ridge_equals_himalaya_on_a_shared_grid(rng, n_spaces):
    set_backend("numpy")
    n, sizes = 37, [5, 9, 4][:n_spaces]
    Xs = [rng.normal(size=(n, p)) * s for p, s in zip(sizes, (1.0, 10.0, 0.1))]
    # voxels driven by different spaces with different strengths
    Y = sum(X @ rng.normal(size=(X.shape[1], 13)) * w
            for X, w in zip(Xs, (1.0, 0.05, 5.0))) + 2.0 * rng.normal(size=(n, 13)) + 3.0
    gammas = default_gammas(n_spaces)
    cv = KFold(4)
    folds = list(cv.split(Xs[0]))
    ours = banded_ridge_cv(Xs, Y, folds, ALPHAS, gammas, fit_intercept=True)
    ref = BandedRidgeCV(groups="input", solver="random_search", fit_intercept=True, cv=cv,
                        solver_params={"n_iter": gammas, "alphas": ALPHAS,
                                       "progress_bar": False})
    ref.fit(Xs, Y)
    deltas = np.asarray(ref.deltas_)
    same = np.isclose(ours["deltas"], deltas, rtol=0, atol=1e-8).all(axis=0)
    assert same.mean() >= 0.99, (ours["deltas"], deltas)
    # not all voxels picked the equal-weight row: the bands matter here
    assert len(np.unique(ours["best_gammas"].T, axis=0)) > 1
    np.testing.assert_allclose(ours["cv_scores"], np.asarray(ref.cv_scores_), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(predict_banded(Xs, ours), np.asarray(ref.predict(Xs)),
                               rtol=1e-7, atol=1e-8)


def test_bad_gammas_are_named(rng):
    Xs = [rng.normal(size=(10, 2)), rng.normal(size=(10, 3))]
    folds = list(KFold(2).split(Xs[0]))
    with pytest.raises(ValueError, match="gammas has 3 columns but there are 2"):
        banded_ridge_cv(Xs, rng.normal(size=(10, 2)), folds, ALPHAS, np.ones((1, 3)) / 3)


class _Fixed:
    """A splitter returning given folds (himalaya takes any scikit-learn splitter)."""

    def __init__(self, folds):
        self.folds = folds

    def split(self, *args, **kw):
        return iter(self.folds)

    def get_n_splits(self, *args, **kw):
        return len(self.folds)


def test_variance_partition_unions_equal_himalaya_with_fold_wise_scaling(rng):
    """Every union's held-out R2 equals: per outer fold, scale each space with the training
    stimuli's statistics, fit himalaya BandedRidgeCV on identity-grouped inner folds, predict."""
    import xarray as xr
    from sklearn.model_selection import GroupKFold

    from facebrain.encoding import variance_partition
    from facebrain.encoding._evaluate import outer_folds

    set_backend("numpy")
    n_id, per = 9, 4
    n = n_id * per
    groups = np.repeat([f"p{i}" for i in range(n_id)], per)
    A = rng.normal(size=(n, 4)) * 3.0 + 1.0
    B = rng.normal(size=(n, 6)) * 0.2
    Y = A @ rng.normal(size=(4, 5)) + 20 * B @ rng.normal(size=(6, 5)) + rng.normal(size=(n, 5))
    ids = [f"s{i}" for i in range(n)]
    brain = xr.DataArray(Y, dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "identity": ("stimulus", groups)})
    res = variance_partition({"A": A, "B": B}, brain, n_folds=3, inner_cv=2, alphas=ALPHAS)
    folds = outer_folds("leave-identity-out", 3, n, groups, 0)
    for union, spaces in (("A", [A]), ("B", [B]), ("A+B", [A, B])):
        pred = np.empty_like(Y)
        for tr, te in folds:
            mu = [X[tr].mean(0) for X in spaces]
            sd = [np.sqrt(((X[tr] - m) ** 2).sum() / len(tr)) for X, m in zip(spaces, mu)]
            Xtr = [(X[tr] - m) / s for X, m, s in zip(spaces, mu, sd)]
            Xte = [(X[te] - m) / s for X, m, s in zip(spaces, mu, sd)]
            inner = list(GroupKFold(2).split(Xtr[0], groups=groups[tr]))
            ref = BandedRidgeCV(groups="input", solver="random_search", fit_intercept=True,
                                cv=_Fixed(inner),
                                solver_params={"n_iter": default_gammas(len(spaces)),
                                               "alphas": ALPHAS, "progress_bar": False})
            ref.fit(Xtr, Y[tr])
            pred[te] = np.asarray(ref.predict(Xte))
        r2 = 1 - ((Y - pred) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
        np.testing.assert_allclose(res["r2_union"].sel(union=union).values, r2, rtol=1e-7,
                                   atol=1e-9)
