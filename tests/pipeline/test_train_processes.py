"""The train stage's networks in parallel processes: same weights as one after another."""

from __future__ import annotations

import errno
import json
import math
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
import torch

from facebrain.errors import StageError
from facebrain.pipeline import _workers, run
from facebrain.pipeline._stages import default_stages

from . import _fakes


def _train_only(out, monkeypatch, processes: str, log):
    monkeypatch.setattr(_workers, "available_cpus", lambda: 4)
    monkeypatch.setenv(_workers.ENV_PROCESSES, processes)
    stages = [s for s in default_stages() if s.name in ("stimuli", "train")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(None, out=out, overrides={**_fakes.DEMO_TINY, "models[1].train.epochs": 2},
                   stages=stages, log=log)


_TIMES = ("seconds", "train_seconds", "images_per_s")


def _metrics(path):
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k not in _TIMES} for r in rows]


def _untimed(summary: dict) -> dict:
    out = {}
    for name, s in summary.items():
        s = dict(s)
        if "last_epoch" in s:
            s["last_epoch"] = {k: v for k, v in s["last_epoch"].items() if k not in _TIMES}
        out[name] = s
    return out


def test_parallel_training_gives_the_sequential_weights(tmp_path, monkeypatch):
    lines: list[str] = []
    seq = _train_only(tmp_path / "seq", monkeypatch, "1", lines.append)
    assert not any("processes" in ln for ln in lines)
    par = _train_only(tmp_path / "par", monkeypatch, "2", lines.append)
    assert any("training 2 networks in 2 processes of 1 thread(s)" in ln for ln in lines)
    assert _untimed(par.summaries["train"]) == _untimed(seq.summaries["train"])
    assert par.keys["train"] == seq.keys["train"]
    for m in ("identity_net", "expression_net"):
        for name in ("best.pt", "last.pt"):
            a = torch.load(seq.dirs["train"] / m / name, weights_only=True)
            b = torch.load(par.dirs["train"] / m / name, weights_only=True)
            assert a["epoch"] == b["epoch"]
            assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
        assert _metrics(seq.dirs["train"] / m / "metrics.jsonl") == _metrics(
            par.dirs["train"] / m / "metrics.jsonl")
        assert (seq.dirs["train"] / m / "model.json").read_text() == (
            par.dirs["train"] / m / "model.json").read_text()
    assert (par.dirs["train"] / "untrained" / "weights.pt").is_file()


def test_stage_processes_respects_threads_cores_and_the_variable(monkeypatch):
    monkeypatch.setattr(_workers, "available_cpus", lambda: 4)
    monkeypatch.delenv(_workers.ENV_PROCESSES, raising=False)
    assert _workers.stage_processes(1, 2) == 2
    assert _workers.stage_processes(1, 9) == 4
    assert _workers.stage_processes(2, 3) == 2
    assert _workers.stage_processes(3, 3) == 1
    assert _workers.stage_processes(None, 3) == 1  # no cap: one job may use every core
    assert _workers.stage_processes(1, 1) == 1
    monkeypatch.setenv(_workers.ENV_PROCESSES, "1")
    assert _workers.stage_processes(1, 2) == 1
    monkeypatch.setenv(_workers.ENV_PROCESSES, "two")
    with pytest.raises(StageError, match="FACEBRAIN_STAGE_PROCESSES"):
        _workers.stage_processes(1, 2)


def test_run_in_processes_keeps_order_and_raises_a_jobs_error():
    assert _workers.run_in_processes(math.sqrt, [(9.0,), (4.0,), (1.0,)], 2, 1) == [3.0, 2.0,
                                                                                    1.0]
    with pytest.raises(ZeroDivisionError) as info:
        _workers.run_in_processes(operator.truediv, [(1, 1), (1, 0)], 2, 1)
    assert "in a parallel stage process" in "".join(getattr(info.value, "__notes__", []))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_leaves_no_job_process_behind(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from facebrain.pipeline._workers import run_in_processes

        def job(path):
            with open(path + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(path + ".tmp", path)
            time.sleep(300)

        if __name__ == "__main__":
            run_in_processes(job, [(sys.argv[1],)], 1, 1)
    """))
    flag = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, str(script), str(flag)],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        deadline = time.monotonic() + 240
        while not flag.is_file():
            assert parent.poll() is None and time.monotonic() < deadline, "job never started"
            time.sleep(0.2)
        child = int(flag.read_text())
        assert _fakes.alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60
        while _fakes.alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _fakes.alive(child), "the job process outlived its killed parent"
    finally:
        parent.kill()


def _full_disk_inside_torch():
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as err:
        raise RuntimeError("PytorchStreamWriter failed writing file data/0") from err


def test_a_full_disk_in_a_job_stays_a_full_disk():
    # the cause chain does not survive pickling; the runner must still see ENOSPC
    with pytest.raises(OSError) as info:
        _workers.run_in_processes(_full_disk_inside_torch, [(), ()], 2, 1)
    assert info.value.errno == errno.ENOSPC and "PytorchStreamWriter" in str(info.value)


def test_faces_rendered_ahead_in_processes_train_the_same_weights(tmp_path, monkeypatch):
    # threads: 2 on "4 cores" with one process for the stage: the networks train here,
    # one after another, from faces rendered ahead in 2 processes
    from facebrain.pipeline import _stages
    from facebrain.stimuli import _synthetic

    def train(out, log):
        _synthetic._RENDERED.clear()
        monkeypatch.setattr(_workers, "available_cpus", lambda: 4)
        monkeypatch.setenv(_workers.ENV_PROCESSES, "1")
        stages = [s for s in default_stages() if s.name in ("stimuli", "train")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run(None, out=out, overrides={**_fakes.DEMO_TINY, "threads": 2},
                       stages=stages, log=log)

    lines: list[str] = []
    ahead = train(tmp_path / "ahead", lines.append)
    assert any("train: 32 faces rendered in 2 processes" in ln for ln in lines), lines
    monkeypatch.setattr(_stages, "_prerender_training_faces", lambda ctx, jobs: None)
    lines.clear()
    serial = train(tmp_path / "serial", lines.append)
    assert not any("rendered in" in ln for ln in lines)
    for m in ("identity_net", "expression_net"):
        a = torch.load(ahead.dirs["train"] / m / "last.pt", weights_only=True)["model"]
        b = torch.load(serial.dirs["train"] / m / "last.pt", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
