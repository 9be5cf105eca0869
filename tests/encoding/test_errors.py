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
    FacebrainError,
    MissingKeyError,
    ParameterError,
    ShapeError,
    StimulusMismatchError,
)


def _raises(fb_type, builtin, match, fn, *args, **kwargs):
    """``fn`` raises ``fb_type`` (a FacebrainError) that is also ``builtin``; returns it."""
    with pytest.raises(fb_type, match=match) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, builtin) and isinstance(err, FacebrainError)
    return err


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


def test_ridge_encoder_parameters(rng):
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    _raises(ParameterError, ValueError, r"alphas must be positive and finite; got \[-1\.0\]",
            RidgeEncoder(alphas=[-1.0, 1.0]).fit, X, Y)
    _raises(ParameterError, ValueError, r"non-empty 1-D sequence; got shape \(0,\)",
            RidgeEncoder(alphas=[]).fit, X, Y)
    _raises(ParameterError, ValueError, "scoring='mae'; choose one of",
            RidgeEncoder(scoring="mae").fit, X, Y)
    _raises(ParameterError, ValueError, "score_dtype='float16'",
            RidgeEncoder(score_dtype="float16").fit, X, Y)
    _raises(ParameterError, ValueError, "batch_size=0 must be a positive int",
            RidgeEncoder(batch_size=0).fit, X, Y)
    _raises(ParameterError, ValueError, "solver='qr'; choose 'auto' or one of",
            RidgeEncoder(solver="qr").fit, X, Y)
    _raises(ParameterError, ValueError, "n_samples = 3 but cv=5 folds need at least 5",
            RidgeEncoder().fit, X[:3], Y[:3])
    _raises(ParameterError, ValueError, "device='gpu7' is not a torch device", check_device,
            "gpu7")
    _raises(ParameterError, ValueError, "solver='x'", pick_solver, "x", 3, 4)


def test_unfitted_ridge_encoder_is_facebrain_and_sklearn_not_fitted(rng):
    enc = RidgeEncoder()
    for get in (lambda: enc.predict(rng.normal(size=(2, 3))), lambda: enc.coef_,
                lambda: enc.dual_coef_):
        err = _raises(errors.NotFittedError, ValueError, "RidgeEncoder instance is not fitted "
                      "yet. Call 'fit'", get)
        assert isinstance(err, sklearn.exceptions.NotFittedError)
        assert isinstance(err, AttributeError)
    assert not hasattr(enc, "coef_")  # the properties read as absent before fit
    X = rng.normal(size=(10, 3))
    enc.fit(X, X @ rng.normal(size=(3, 2)) + rng.normal(size=(10, 2)))
    assert enc.coef_.shape == (2, 3)


def test_evaluate_errors(data):
    acts, brain = data
    kw = {"n_folds": 3, "inner_cv": 2, "alphas": [1.0]}
    err = _raises(MissingKeyError, KeyError, r"layer 'C' is not in the Activations; available "
                  r"layers: \['A'\]", evaluate, acts, brain, layers=["C"], **kw)
    assert str(err).startswith("layer 'C'")
    _raises(ParameterError, ValueError, r"ci=1\.5 must lie in \(0, 1\)", evaluate, acts, brain,
            ci=1.5, **kw)
    _raises(ParameterError, ValueError, "bootstrap=-1 must be >= 0", evaluate, acts, brain,
            bootstrap=-1, **kw)
    _raises(ParameterError, ValueError, "cv='loo'; choose one of", evaluate, acts, brain,
            cv="loo", **kw)
    _raises(ParameterError, ValueError, "needs >= 2 identities; found 1.*cv='kfold'", evaluate,
            acts, brain, groups=np.zeros(18), **kw)
    _raises(ShapeError, ValueError, r"groups has shape \(5,\); expected \(18,\)", evaluate,
            acts, brain, groups=np.arange(5), **kw)
    _raises(MissingKeyError, KeyError, "groups='session' is not a stimulus coordinate",
            evaluate, acts, brain, groups="session", **kw)
    nan = brain.copy()
    nan[0, 0] = np.nan
    _raises(DataFormatError, ValueError, r"contain NaN \(1 values\)", evaluate, acts, nan, **kw)
    _raises(StimulusMismatchError, ValueError, "only 2 stimuli are shared", evaluate,
            acts.isel(stimulus=[0, 1]), brain.isel(stimulus=[0, 1]), **kw)


def test_variance_partition_and_banded_errors(data, rng):
    acts, brain = data
    _raises(ParameterError, ValueError, "feature_sets has 1 spaces", variance_partition,
            {"A": (acts, "A")}, brain)
    _raises(ParameterError, ValueError, "may not contain '&' or '\\+'", variance_partition,
            {"A&B": (acts, "A"), "C": (acts, "A")}, brain)
    _raises(ShapeError, ValueError, r"feature set 'pix' has shape \(5, 2\)", variance_partition,
            {"A": (acts, "A"), "pix": np.zeros((5, 2))}, brain)
    _raises(StimulusMismatchError, ValueError, r"feature set 'A' lacks stimuli \['s00'\]",
            variance_partition, {"A": (acts.isel(stimulus=slice(1, None)), "A"),
                                 "B": (acts, "A")}, brain)
    Xs, Y = [rng.normal(size=(12, 2)), rng.normal(size=(12, 3))], rng.normal(size=(12, 2))
    folds = [(np.arange(6, 12), np.arange(6)), (np.arange(6), np.arange(6, 12))]
    _raises(ShapeError, ValueError, "gammas has 3 columns but there are 2 feature spaces",
            banded_ridge_cv, Xs, Y, folds, [1.0], np.full((1, 3), 1 / 3))
    _raises(ParameterError, ValueError, r"gammas must be positive .*got \[-0\.5\]",
            banded_ridge_cv, Xs, Y, folds, [1.0], [[1.5, -0.5]])
    _raises(ParameterError, ValueError, "n_spaces=0 must be >= 1", default_gammas, 0)
