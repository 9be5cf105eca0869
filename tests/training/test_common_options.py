"""fit_classifier and fit_siamese share their run options: same names, docs and checks."""

from __future__ import annotations

import inspect

import pytest

from facebrain.models import create
from facebrain.stimuli import synthetic_identities
from facebrain.training import fit_classifier, fit_siamese, sample_pairs
from facebrain.training._common import RUN_PARAMETERS_DOC

RUN_OPTIONS = ["epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "augment",
               "val_fraction", "out_dir", "seed", "device", "resume", "num_workers", "cache",
               "progress", "callback"]


def test_signatures_keep_their_names_and_defaults():
    cls = inspect.signature(fit_classifier).parameters
    sia = inspect.signature(fit_siamese).parameters
    assert list(cls) == ["model", "stimuli", "target", "epochs", "batch_size", "lr", "optimizer",
                         "schedule", "weight_decay", "label_smoothing", "augment", "val_fraction",
                         "val_split", "out_dir", "seed", "device", "resume", "num_workers",
                         "cache", "progress", "callback"]
    assert list(sia) == ["model", "pairs", "stimuli", "epochs", "batch_size", "lr", "optimizer",
                         "schedule", "weight_decay", "augment", "val_fraction", "val_pairs",
                         "out_dir", "seed", "device", "resume", "num_workers", "cache",
                         "progress", "callback"]
    assert (cls["epochs"].default, cls["lr"].default) == (15, 3e-3)
    assert (sia["epochs"].default, sia["lr"].default) == (10, 1e-3)
    for name in RUN_OPTIONS:
        if name not in ("epochs", "lr"):
            assert cls[name].default == sia[name].default, name


@pytest.mark.parametrize("fn", [fit_classifier, fit_siamese])
def test_both_docstrings_carry_the_shared_entries(fn):
    doc = fn.__doc__
    assert "{run_parameters}" not in doc
    assert RUN_PARAMETERS_DOC in doc
    for name in ("optimizer", "schedule", "augment", "out_dir", "seed", "device", "resume",
                 "num_workers", "cache", "progress", "callback"):
        assert f"\n    {name} :" in doc, name


def test_both_fits_check_their_run_options_alike():
    faces = synthetic_identities(3, 4, image_size=72)
    pairs = sample_pairs(faces, 12, seed=0)
    empty = faces.subset([])
    cls_net = create("small_resnet", num_classes=3, width=8)
    sia_net = create("siamese_lfw", input_size=72, width=8, hidden=16, embedding_dim=8)
    calls = [lambda **kw: fit_classifier(cls_net, faces, progress=False, **kw),
             lambda **kw: fit_siamese(sia_net, pairs, faces, progress=False, **kw)]
    for call in calls:
        with pytest.raises(ValueError, match=r"epochs and batch_size must be >= 1; got 0, 64"):
            call(epochs=0)
        with pytest.raises(TypeError, match="augment must be True, False or a callable"):
            call(augment="yes")
    with pytest.raises(ValueError, match="nothing to train on. Check the loader"):
        fit_classifier(cls_net, empty, progress=False)
    with pytest.raises(ValueError, match="nothing to train on. Check the loader"):
        fit_siamese(sia_net, pairs.iloc[:0], empty, progress=False)
