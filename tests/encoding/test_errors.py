"""Bad input to RidgeEncoder, evaluate, variance_partition and banded ridge: facebrain.errors
types that are also the builtin a caller expects, with messages naming the value and fix."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.exceptions
import xarray as xr

from facebrain import errors
from facebrain.encoding import RidgeEncoder, evaluate, variance_partition
from facebrain.encoding._banded import banded_ridge_cv, default_gammas
from facebrain.encoding._solvers import pick_solver
from facebrain.encoding._torch_ops import check_device
from facebrain.errors import (
    DataFormatError,
    MissingKeyError,
    ParameterError,
    ShapeError,
    StimulusMismatchError,
)


@pytest.fixture
def data(rng):
    n = 18
    ids = [f"s{i:02d}" for i in range(n)]
    acts = xr.Dataset({"A": (("stimulus", "A_unit"), rng.normal(size=(n, 4)))},
                      coords={"stimulus": ids,
                              "identity": ("stimulus", [f"p{i % 6}" for i in range(n)])})
    brain = xr.DataArray(rng.normal(size=(n, 3)), dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "voxel": ["v0", "v1", "v2"]})
    return acts, brain


def test_ridge_encoder_parameters(rng, raises_fb):
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    raises_fb(ParameterError, ValueError, r"alphas must be positive and finite; got \[-1\.0\]",
            RidgeEncoder(alphas=[-1.0, 1.0]).fit, X, Y)
    raises_fb(ParameterError, ValueError, r"non-empty 1-D sequence; got shape \(0,\)",
            RidgeEncoder(alphas=[]).fit, X, Y)
    raises_fb(ParameterError, ValueError, "scoring='mae'; choose one of",
            RidgeEncoder(scoring="mae").fit, X, Y)
    raises_fb(ParameterError, ValueError, "score_dtype='float16'",
            RidgeEncoder(score_dtype="float16").fit, X, Y)
    raises_fb(ParameterError, ValueError, "batch_size=0 must be a positive int",
            RidgeEncoder(batch_size=0).fit, X, Y)
    raises_fb(ParameterError, ValueError, "solver='qr'; choose 'auto' or one of",
            RidgeEncoder(solver="qr").fit, X, Y)
    raises_fb(ParameterError, ValueError, "n_samples = 3 but cv=5 folds need at least 5",
            RidgeEncoder().fit, X[:3], Y[:3])
    raises_fb(ParameterError, ValueError, "device='gpu7' is not a torch device", check_device,
            "gpu7")
    raises_fb(ParameterError, ValueError, "solver='x'", pick_solver, "x", 3, 4)


def test_unfitted_ridge_encoder_is_facebrain_and_sklearn_not_fitted(rng, raises_fb):
    enc = RidgeEncoder()
    for get in (lambda: enc.predict(rng.normal(size=(2, 3))), lambda: enc.coef_,
                lambda: enc.dual_coef_):
        err = raises_fb(errors.NotFittedError, ValueError, "RidgeEncoder instance is not fitted "
                      "yet. Call 'fit'", get)
        assert isinstance(err, sklearn.exceptions.NotFittedError)
        assert isinstance(err, AttributeError)
    assert not hasattr(enc, "coef_")  # the properties read as absent before fit
    X = rng.normal(size=(10, 3))
    enc.fit(X, X @ rng.normal(size=(3, 2)) + rng.normal(size=(10, 2)))
    assert enc.coef_.shape == (2, 3)


def test_evaluate_errors(data, raises_fb):
    acts, brain = data
    kw = {"n_folds": 3, "inner_cv": 2, "alphas": [1.0]}
    err = raises_fb(MissingKeyError, KeyError, r"layer 'C' is not in the Activations; available "
                  r"layers: \['A'\]", evaluate, acts, brain, layers=["C"], **kw)
    assert str(err).startswith("layer 'C'")
    raises_fb(ParameterError, ValueError, r"ci=1\.5 must lie in \(0, 1\)", evaluate, acts, brain,
            ci=1.5, **kw)
    raises_fb(ParameterError, ValueError, "bootstrap=-1 must be >= 0", evaluate, acts, brain,
            bootstrap=-1, **kw)
    raises_fb(ParameterError, ValueError, "cv='loo'; choose one of", evaluate, acts, brain,
            cv="loo", **kw)
    raises_fb(ParameterError, ValueError, "needs >= 2 identities; found 1.*cv='kfold'", evaluate,
            acts, brain, groups=np.zeros(18), **kw)
    raises_fb(ShapeError, ValueError, r"groups has shape \(5,\); expected \(18,\)", evaluate,
            acts, brain, groups=np.arange(5), **kw)
    raises_fb(MissingKeyError, KeyError, "groups='session' is not a stimulus coordinate",
            evaluate, acts, brain, groups="session", **kw)
    nan = brain.copy()
    nan[0, 0] = np.nan
    raises_fb(DataFormatError, ValueError, r"contain NaN \(1 values\)", evaluate, acts, nan, **kw)
    raises_fb(StimulusMismatchError, ValueError, "only 2 stimuli are shared", evaluate,
            acts.isel(stimulus=[0, 1]), brain.isel(stimulus=[0, 1]), **kw)


def test_variance_partition_and_banded_errors(data, rng, raises_fb):
    acts, brain = data
    raises_fb(ParameterError, ValueError, "feature_sets has 1 spaces", variance_partition,
            {"A": (acts, "A")}, brain)
    raises_fb(ParameterError, ValueError, "may not contain '&' or '\\+'", variance_partition,
            {"A&B": (acts, "A"), "C": (acts, "A")}, brain)
    raises_fb(ShapeError, ValueError, r"feature set 'pix' has shape \(5, 2\)", variance_partition,
            {"A": (acts, "A"), "pix": np.zeros((5, 2))}, brain)
    raises_fb(StimulusMismatchError, ValueError, r"feature set 'A' lacks stimuli \['s00'\]",
            variance_partition, {"A": (acts.isel(stimulus=slice(1, None)), "A"),
                                 "B": (acts, "A")}, brain)
    Xs, Y = [rng.normal(size=(12, 2)), rng.normal(size=(12, 3))], rng.normal(size=(12, 2))
    folds = [(np.arange(6, 12), np.arange(6)), (np.arange(6), np.arange(6, 12))]
    raises_fb(ShapeError, ValueError, "gammas has 3 columns but there are 2 feature spaces",
            banded_ridge_cv, Xs, Y, folds, [1.0], np.full((1, 3), 1 / 3))
    raises_fb(ParameterError, ValueError, r"gammas must be positive .*got \[-0\.5\]",
            banded_ridge_cv, Xs, Y, folds, [1.0], [[1.5, -0.5]])
    raises_fb(ParameterError, ValueError, "n_spaces=0 must be >= 1", default_gammas, 0)
