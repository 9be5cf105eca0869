"""fit_classifier: learning, splits, checkpoints, bitwise resume, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from facebrain.errors import TrainingError
from facebrain.stimuli import ArraySource, StimulusSet
from facebrain.training import evaluate_accuracy, fit_classifier, load_checkpoint
from facebrain.training._classifier import split_train_val

from ._fakes import fake_identities
from .conftest import tiny_net

FAST = {"batch_size": 16, "progress": False, "lr": 1e-2, "augment": False}


def _equal_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Interrupt(Exception):
    pass


def _stop_after(epoch):
    def cb(row):
        if row["epoch"] == epoch:
            raise Interrupt
    return cb


def test_learns_and_writes_outputs(faces8, tmp_path):
    net = tiny_net(8)
    state = torch.get_rng_state()
    fit = fit_classifier(net, faces8, epochs=8, out_dir=tmp_path, **FAST)
    assert torch.equal(torch.get_rng_state(), state), "caller's torch RNG was touched"
    h = fit.history_frame
    assert list(h.index) == list(range(1, 9))
    # 8 classes: chance 0.125; the fake identities are easy to learn
    assert h["train_accuracy"].iloc[-1] > 0.8
    assert h["val_accuracy"].iloc[-1] > 0.4
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert fit.model.classes_ == [f"id{k:03d}" for k in range(8)]
    assert not fit.model.training
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 9))
    np.testing.assert_allclose([r["val_accuracy"] for r in lines], h["val_accuracy"])
    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    assert last["epoch"] == 8 and last["classes"] == fit.model.classes_
    assert set(last) >= {"model", "optimizer", "scheduler", "epoch", "rng", "classes",
                         "config", "history", "best"}
    assert set(last["rng"]) == {"torch", "numpy", "python", "generators"}
    assert best["epoch"] == fit.best_epoch == int(h["val_accuracy"].idxmax())
    assert not list(tmp_path.glob(".*"))          # no temp files left behind
    # the val accuracy in the history is evaluate_accuracy on the held-out rows
    val = faces8.subset(fit.extra["val_positions"])
    assert evaluate_accuracy(fit.model, val).accuracy == pytest.approx(h["val_accuracy"].iloc[-1])


def test_checkpoint_loads_as_weights(faces8, tmp_path):
    from facebrain.models import load_weights

    fit = fit_classifier(tiny_net(8), faces8, epochs=1, out_dir=tmp_path, **FAST)
    fresh = tiny_net(8, seed=9)
    load_weights(fresh, tmp_path / "last.pt")
    assert _equal_weights(fresh, fit.model)


@pytest.mark.parametrize("schedule", ["onecycle", "step"])
def test_resume_is_bitwise_identical(faces8, tmp_path, schedule):
    # with augmentation on, so its generator's state must survive the restart
    kw = dict(epochs=2, schedule=schedule, optimizer="sgd" if schedule == "step" else "adamw",
              **{**FAST, "augment": True})
    whole = fit_classifier(tiny_net(8), faces8, out_dir=tmp_path / "a", **kw).model
    with pytest.raises(Interrupt):
        fit_classifier(tiny_net(8), faces8, out_dir=tmp_path / "b", callback=_stop_after(1),
                       **kw)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = fit_classifier(tiny_net(8, seed=5), faces8, out_dir=tmp_path / "b", resume=True,
                             **kw)
    assert _equal_weights(whole, resumed.model)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_extend_epochs_without_schedule(faces8, tmp_path):
    kw = dict(schedule=None, **FAST)
    whole = fit_classifier(tiny_net(8), faces8, epochs=2, out_dir=tmp_path / "a", **kw).model
    fit_classifier(tiny_net(8), faces8, epochs=1, out_dir=tmp_path / "b", **kw)
    resumed = fit_classifier(tiny_net(8), faces8, epochs=2, out_dir=tmp_path / "b",
                             resume=True, **kw)
    assert _equal_weights(whole, resumed.model)


def test_resume_refuses_other_settings(faces8, tmp_path):
    fit_classifier(tiny_net(8), faces8, epochs=1, out_dir=tmp_path, **FAST)
    with pytest.raises(TrainingError, match=r"\['batch_size', 'lr'\]"):
        fit_classifier(tiny_net(8), faces8, epochs=1, out_dir=tmp_path, resume=True,
                       batch_size=8, lr=1e-3, augment=False, progress=False)
    with pytest.raises(TrainingError, match="epochs.*schedule=None"):
        fit_classifier(tiny_net(8), faces8, epochs=3, out_dir=tmp_path, resume=True, **FAST)
    with pytest.raises(ValueError, match="out_dir"):
        fit_classifier(tiny_net(8), faces8, epochs=1, resume=True, **FAST)


def test_cache_does_not_change_results(faces8):
    a = fit_classifier(tiny_net(8), faces8, epochs=1, cache=True, **FAST)
    b = fit_classifier(tiny_net(8), faces8, epochs=1, cache=False, **FAST)
    assert a.extra["cached"] and not b.extra["cached"]
    assert _equal_weights(a.model, b.model)
    assert a.history[0]["val_accuracy"] == b.history[0]["val_accuracy"]


def test_seed_changes_run(faces8):
    a = fit_classifier(tiny_net(8), faces8, epochs=1, seed=0, **FAST)
    b = fit_classifier(tiny_net(8), faces8, epochs=1, seed=1, **FAST)
    assert not _equal_weights(a.model, b.model)


def test_split_identity_holds_out_images(faces8):
    train, val = split_train_val(faces8, "identity", val_fraction=0.25, seed=0)
    ident = faces8.table["identity"].to_numpy()
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(faces8)
    counts = pd.Series(ident[val]).value_counts()
    assert set(counts.index) == set(ident) and (counts == 3).all()   # round(0.25 * 12)


def test_split_expression_holds_out_identities(faces8):
    train, val = split_train_val(faces8, "expression", val_fraction=0.25, seed=0)
    ident = faces8.table["identity"].to_numpy()
    assert set(ident[train]).isdisjoint(ident[val])
    assert len(set(ident[val])) == 2


def test_split_explicit(faces8):
    table = faces8.table.copy()
    table["split"] = np.resize(["train", "train", "val", "test"], len(table))
    s = StimulusSet(table, image_source=faces8.image_source)
    train, val = split_train_val(s, "identity", val_split="split")
    assert (table["split"].iloc[train] == "train").all()
    assert (table["split"].iloc[val] == "val").all()
    assert len(train) + len(val) == len(table) - (table["split"] == "test").sum()
    mask = np.zeros(len(s), bool)
    mask[:5] = True
    train, val = split_train_val(s, "identity", val_split=mask)
    assert list(val) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="boolean mask of shape"):
        split_train_val(s, "identity", val_split=mask[:3])
    with pytest.raises(KeyError, match="nosuch"):
        split_train_val(s, "identity", val_split="nosuch")


def _const_set(labels, size=24):
    n = len(labels)
    table = pd.DataFrame({"identity": labels, "expression": "neutral", "view": "S"},
                         index=pd.Index([f"s{i}" for i in range(n)], name="stimulus_id"))
    imgs = np.zeros((n, size, size, 3), np.uint8)
    return StimulusSet(table, image_source=ArraySource(imgs))


def test_bad_inputs(faces8):
    with pytest.raises(ValueError, match=r"'expression' has a single class \('neutral'\)"):
        fit_classifier(tiny_net(2), _const_set(["a", "b"] * 3), target="expression",
                       **FAST)
    with pytest.raises(ValueError, match="empty"):
        fit_classifier(tiny_net(2), _const_set(["a", "b"]).subset([]), **FAST)
    with pytest.raises(KeyError, match=r"'gender'.*available columns"):
        fit_classifier(tiny_net(8), faces8, target="gender", **FAST)
    with pytest.raises(ValueError, match=r"8 classes.*num_classes=8"):
        fit_classifier(tiny_net(5), faces8, **FAST)
    with pytest.raises(ValueError, match="optimizer"):
        fit_classifier(tiny_net(8), faces8, optimizer="adam", epochs=1, **FAST)
    with pytest.raises(ValueError, match="only 1 identity"):
        fit_classifier(tiny_net(3), fake_identities(1, 6, size=24).subset(np.arange(6)),
                       target="expression", **FAST)


def test_diverging_loss_is_reported(faces8):
    with pytest.raises(TrainingError, match="lower lr"):
        fit_classifier(tiny_net(8), faces8, epochs=1, batch_size=16, lr=1e30,
                       optimizer="sgd", schedule=None, progress=False)


def test_expression_target_validates_on_new_people(faces8):
    fit = fit_classifier(tiny_net(4), faces8, target="expression", epochs=1,
                         val_fraction=0.25, **FAST)
    # canonical expression order, not alphabetical
    assert fit.classes == ["neutral", "happy", "sad", "surprised"] == fit.model.classes_
    ident = faces8.table["identity"].to_numpy()
    train, val = fit.extra["train_positions"], fit.extra["val_positions"]
    assert set(ident[train]).isdisjoint(ident[val]) and len(set(ident[val])) == 2
