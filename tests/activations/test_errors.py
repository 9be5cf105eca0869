"""Bad input to extract, the reducers and the ``.fb`` accessor: facebrain.errors types that
are also the builtin a caller expects, with messages naming the parameter, value and fix."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _nets import TinyConvNet

from facebrain.activations import Reducer, extract, parse_reduce
from facebrain.errors import (
    MissingKeyError,
    ParameterError,
    ParameterTypeError,
)
from facebrain.stimuli import ArraySource, StimulusSet


@pytest.fixture
def stim(rng):
    n = 7
    ids = [f"s{i}" for i in range(n)]
    table = pd.DataFrame({"identity": [f"p{i % 3}" for i in range(n)], "expression": "happy",
                          "view": "S", "path": ""}, index=pd.Index(ids, name="stimulus_id"))
    images = rng.integers(0, 256, size=(n, 13, 11, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="seven")


def test_extract_argument_errors(stim, raises_fb):
    model = TinyConvNet()
    raises_fb(ParameterError, ValueError, r"batch_size must be a positive integer; got 0\. Pass",
            extract, model, stim, ["conv1"], batch_size=0, progress=False)
    raises_fb(ParameterError, ValueError, "got 2.5", extract, model, stim, ["conv1"],
            batch_size=2.5, progress=False)
    raises_fb(ParameterTypeError, TypeError, "FaceNet contract.*dict has no 'forward_layers'",
            extract, {}, stim, progress=False)
    raises_fb(ParameterTypeError, TypeError, "stimuli must be a StimulusSet; got list",
            extract, model, [np.zeros((4, 4, 3))], progress=False)
    raises_fb(ParameterError, ValueError, "stimuli is empty", extract, model,
            stim.subset([]), progress=False)
    no_pre = TinyConvNet()
    no_pre.preprocess = None
    raises_fb(ParameterError, ValueError, "'tiny_conv' has no preprocess", extract, no_pre, stim,
            progress=False)


def test_extract_pca_fit_on_errors(stim, raises_fb):
    model = TinyConvNet()
    err = raises_fb(MissingKeyError, KeyError, r"names 2 stimulus ids .* e\.g\. \['x1', 'x2'\]",
                  extract, model, stim, ["pool"], reduce="pca:2", pca_fit_on=["s0", "x1", "x2"],
                  progress=False)
    assert str(err).startswith("pca_fit_on names")  # shown as written, not quoted like KeyError
    raises_fb(ParameterError, ValueError, r"pca_fit_on=\[\] selects no stimulus", extract, model,
            stim, ["pool"], reduce="pca:2", pca_fit_on=[], progress=False)
    raises_fb(ParameterError, ValueError, "no layer is reduced with 'pca:N'", extract, model,
            stim, ["pool"], pca_fit_on=["s0"], progress=False)
    # fewer fitted stimuli than components: found in the first pass, before any output
    raises_fb(ParameterError, ValueError, "'pca:3' for layer 'pool' needs at least 3 stimuli; "
            "the set has 2", extract, model, stim, ["pool"], reduce="pca:3",
            pca_fit_on=["s0", "s1"], progress=False)


def test_reduce_spec_errors(stim, raises_fb):
    raises_fb(ParameterTypeError, TypeError, "got int", parse_reduce, 3, ["a"])
    raises_fb(ParameterError, ValueError, r"unknown reduce spec 'pca' for layer 'a'",
            parse_reduce, "pca", ["a"])
    raises_fb(ParameterError, ValueError, r"needs N >= 1; use e\.g\. 'srp:100'",
            parse_reduce, {"a": "srp:0"}, ["a"])
    raises_fb(ParameterError, ValueError, r"reduce names layer\(s\) \['b'\]", parse_reduce,
            {"b": "avgpool"}, ["a"])
    raises_fb(ParameterError, ValueError, "asks for 9 components but the layer has only 5 units; "
            "use 'pca:5' or fewer", Reducer, "pca:9", "fc", (5,))
    raises_fb(ParameterError, ValueError, "asks for 500 components", extract, TinyConvNet(), stim,
            ["pool"], reduce="pca:500", progress=False)


def test_accessor_errors(stim, raises_fb):
    acts = extract(TinyConvNet(), stim, ["conv1", "fc"], progress=False)
    err = raises_fb(MissingKeyError, KeyError, r"no layer 'conv9'; available layers: "
                  r"\['conv1', 'fc'\]", acts.fb.matrix, "conv9")
    assert str(err).startswith("Activations have no layer")
    raises_fb(MissingKeyError, KeyError, "no stimulus label 'age'; available: .*'identity'",
            acts.fb.labels, "age")
