"""best.pt never disagrees with last.pt; a full disk gives a named error (issue 12, items 6, 8)."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
import torch

import facebrain.training._checkpoint as ckpt
import facebrain.training._loop as loop
from facebrain.errors import DataFormatError, DiskFullError
from facebrain.training import fit_classifier, load_checkpoint

from .conftest import tiny_net

# no validation split: the score is the training loss, which improves every early epoch
FAST = {"batch_size": 16, "progress": False, "lr": 1e-2, "augment": False,
        "val_fraction": 0.0, "schedule": None}


class Killed(BaseException):
    pass


def _kill_between_last_and_best(monkeypatch, at_epoch: int):
    real = loop.save_checkpoint

    def save(path, state):
        if Path(path).name == "best.pt" and state["epoch"] >= at_epoch:
            raise Killed  # last.pt of this epoch is written, best.pt is not
        return real(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", save)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kill_between_last_and_best_is_repaired_on_resume(faces8, tmp_path, monkeypatch):
    whole = fit_classifier(tiny_net(8), faces8, epochs=3, out_dir=tmp_path / "a", **FAST)
    best_whole = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best_whole["epoch"] == whole.best_epoch >= 2

    out = tmp_path / "b"
    _kill_between_last_and_best(monkeypatch, whole.best_epoch)
    with pytest.raises(Killed):
        fit_classifier(tiny_net(8), faces8, epochs=3, out_dir=out, **FAST)
    monkeypatch.undo()
    last = load_checkpoint(out / "last.pt")
    # the failure: last.pt names this epoch as the best, best.pt still holds an older one
    assert last["best"]["epoch"] == last["epoch"] == whole.best_epoch
    assert load_checkpoint(out / "best.pt")["epoch"] < whole.best_epoch

    resumed = fit_classifier(tiny_net(8, seed=4), faces8, epochs=3, out_dir=out, resume=True,
                             **FAST)
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == resumed.best_epoch == whole.best_epoch
    assert _same(best["model"], best_whole["model"])


def test_reconcile_repairs_after_the_last_epoch(faces8, tmp_path, monkeypatch):
    # killed between the writes of the final epoch: nothing left to train, still repaired
    _kill_between_last_and_best(monkeypatch, 2)
    with pytest.raises(Killed):
        fit_classifier(tiny_net(8), faces8, epochs=2, out_dir=tmp_path, **FAST)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    path = ckpt.reconcile_best(tmp_path)
    best, last = load_checkpoint(path), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == last["best"]["epoch"] == 2
    assert _same(best["model"], last["model"])
    assert not list(tmp_path.glob(".*"))


def test_best_from_another_run_is_refused(tmp_path):
    ckpt.save_checkpoint(tmp_path / "last.pt", {"epoch": 5, "best": {"epoch": 3}})
    ckpt.save_checkpoint(tmp_path / "best.pt", {"epoch": 4, "best": {"epoch": 4}})
    with pytest.raises(DataFormatError, match=r"holds epoch 4, but .*records epoch 3"):
        ckpt.reconcile_best(tmp_path)


class _FullDisk(io.FileIO):
    """A file whose writes fail with ENOSPC once ``limit`` bytes are written."""

    limit = 200

    def write(self, b):
        if self.tell() + len(b) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(b)


def test_full_disk_while_saving_is_a_named_error(tmp_path, monkeypatch):
    state = {"model": {"w": torch.arange(10_000, dtype=torch.float32)}, "epoch": 1}
    ckpt.save_checkpoint(tmp_path / "last.pt", state)
    before = (tmp_path / "last.pt").read_bytes()
    monkeypatch.setattr(ckpt, "open", lambda p, mode="r": _FullDisk(p, mode.replace("b", "")),
                        raising=False)
    with pytest.raises(DiskFullError, match="no space left on device while writing the "
                                            "checkpoint .*last.pt") as info:
        ckpt.save_checkpoint(tmp_path / "last.pt", {**state, "epoch": 2})
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert (tmp_path / "last.pt").read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_torch_writer_error_on_a_full_disk_is_named(tmp_path, monkeypatch):
    # torch's own writer reports ENOSPC as "enforce fail ... unexpected pos"
    def save(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(ckpt.torch, "save", save)
    monkeypatch.setattr(ckpt, "_disk_full", lambda folder: True)
    with pytest.raises(DiskFullError, match="unexpected pos"):
        ckpt.save_checkpoint(tmp_path / "best.pt", {"epoch": 1})
    monkeypatch.setattr(ckpt, "_disk_full", lambda folder: False)
    with pytest.raises(RuntimeError, match="enforce fail") as info:
        ckpt.save_checkpoint(tmp_path / "best.pt", {"epoch": 1})
    assert not isinstance(info.value, DiskFullError)
