"""One run per folder, only this run's results, names that stay inside --out (issue 12, 5, 7, 9)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import warnings

import pytest
import yaml

from facebrain import cli
from facebrain.errors import ConfigError, RunLockedError
from facebrain.pipeline import Stage, run
from facebrain.pipeline._lock import LOCK_NAME, RunLock

CONFIG = {
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
    "models": [{"name": "net", "arch": "small_resnet"}],
    "brain": {"source": "none"},
}


def one_stage(calls):
    def a(ctx):
        calls.append("a")
        (ctx.dir / "a.json").write_text("{}")

    return [Stage("a", a, (), lambda c: None)]


# ------------------------------------------------------------------ 7. the lock
def test_second_run_on_the_same_folder_names_the_holder(tmp_path):
    holder = RunLock(tmp_path).acquire()  # another run, mid-way
    try:
        with pytest.raises(RunLockedError) as info:
            run(CONFIG, out=tmp_path, stages=one_stage([]), log=lambda s: None)
        msg = str(info.value)
        assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert "started 20" in msg and "another facebrain run is using this output folder" in msg
        assert not (tmp_path / "a").exists()  # nothing of the second run was written
    finally:
        holder.release()
    calls = []
    run(CONFIG, out=tmp_path, stages=one_stage(calls), log=lambda s: None)
    assert calls == ["a"]


def test_lock_held_by_another_process_then_its_stale_lock_is_taken_over(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.path.join(os.getcwd(), "src"))!r})
        from facebrain.pipeline._lock import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {proc.pid} on host"):
            run(CONFIG, out=tmp_path, stages=one_stage([]), log=lambda s: None)
    finally:
        proc.kill()  # dies holding the lock: the file still names it
        proc.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == proc.pid
    lines, calls = [], []
    run(CONFIG, out=tmp_path, stages=one_stage(calls), log=lines.append)
    assert calls == ["a"]
    assert any("taking over the lock" in ln and f"pid {proc.pid}" in ln for ln in lines)
    assert json.loads((tmp_path / LOCK_NAME).read_text()).get("released")


# ---------------------------------------------------- 9. --out and names are checked
@pytest.mark.parametrize("out", ["", "  "])
def test_empty_out_is_refused(out, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--out: empty path"):
        run(CONFIG, out=out, stages=one_stage([]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    assert cli.main(["run", str(cfg), "--out", out]) == 2
    assert "--out: empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [cfg]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    with pytest.raises(ConfigError, match="notes.txt is a file, not a folder"):
        run(CONFIG, out=f, stages=one_stage([]))
    with pytest.raises(ConfigError, match="is a file"):
        run(CONFIG, out=f / "sub", stages=one_stage([]))
    assert f.read_text() == "keep me"


@pytest.mark.parametrize("key,value", [
    ("models[0].name", "../escape"), ("models[0].name", "/tmp/abs"),
    ("models[0].name", "a/b"), ("models[0].name", ".."), ("name", "../up"),
])
def test_model_names_are_names_not_paths(key, value, tmp_path):
    with pytest.raises(ConfigError, match=rf"{key.replace('[', '.').replace(']', '.')}: "
                                          r".* is not a valid name"):
        run(CONFIG, out=tmp_path / "run", overrides={key: value}, stages=one_stage([]))
    assert not (tmp_path / "run").exists() and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("name", ["../x", "/abs/x", "a\\b", "."])
def test_stimulus_set_keys_are_names_not_paths(name, tmp_path):
    cfg = {**CONFIG, "stimuli": {name: {"source": "synthetic_kdef"}},
           "extract": {"stimuli": name}}
    with pytest.raises(ConfigError, match=r"stimuli\..*is not a valid name"):
        run(cfg, out=tmp_path / "run", stages=one_stage([]))


def test_transfer_direction_names_are_names(tmp_path):
    cfg = {**CONFIG, "transfer": {"directions": [{"target": "expression", "name": "a/../b"}]}}
    with pytest.raises(ConfigError, match=r"transfer.directions\[0\].name: 'a/../b'"):
        run(cfg, out=tmp_path, stages=one_stage([]))


# ----------------------------------- 5. results.nc without a report; nothing stale shown
TINY = {
    "name": "tiny", "threads": 1,
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32, "identities": 4,
                         "views": ["S"], "sessions": ["A"]}},
    "models": [{"name": "net", "arch": "small_resnet", "layers": ["layer3", "layer4"]}],
    "extract": {"batch_size": 16},
    "transfer": {"directions": [], "disentangle": False},
    "brain": {"source": "simulate", "subjects": 1, "runs": 1, "repeats": 2,
              "rois": ["rFFA", "EVC"]},
    "rsa": {"n_bootstrap": 0, "ceiling": False},
    "encoding": {"enabled": False},
}


@pytest.fixture
def fake_report(monkeypatch):
    """A quick report stage: the real results.nc, a one-line report.html."""
    from facebrain import report
    from facebrain._runfolder import write_results
    from facebrain.report._build import collect_run, result_groups

    state = {"fail": False}

    def build(ctx, **kw):
        if state["fail"]:
            raise RuntimeError("figure failed")
        write_results(result_groups(collect_run(ctx, figures=False)), ctx.dir / "results.nc")
        (ctx.dir / "report.html").write_text(f"<html>{ctx.config.report.title}</html>")
        return {}

    monkeypatch.setattr(report, "build_report", build)
    return state


def test_results_written_without_or_despite_the_report(tmp_path, fake_report, capsys):
    from facebrain.report import read_results

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed == [f"report: {out / 'report.html'}", f"results: {out / 'results.nc'}"]
        first = read_results(out / "results.nc")

        # the report fails: its old file is gone, results.nc comes from the finished stages
        fake_report["fail"] = True
        assert cli.main(["run", str(cfg), "--out", str(out), "--set", "report.title=new"]) == 1
        captured = capsys.readouterr()
        assert "figure failed" in captured.err and "report:" not in captured.out
        assert not (out / "report.html").exists()
        assert sorted(read_results(out / "results.nc")) == sorted(first)
        run_json = json.loads((out / "run.json").read_text())
        assert run_json["statuses"]["report"] == "failed" and run_json["finished"] is False

        # the report is disabled: only results.nc, and the CLI prints only that
        fake_report["fail"] = False
        assert cli.main(["run", str(cfg), "--out", str(out), "--set",
                         "report.enabled=false"]) == 0
        assert capsys.readouterr().out.splitlines() == [f"results: {out / 'results.nc'}"]
    assert not (out / "report.html").exists()
    groups = read_results(out / "results.nc")
    # the network, the reference features, the default baselines (pixels; net is untrained,
    # so it has no twin) and the pooled selection / contrasts
    assert sorted(groups) == ["brain/responses", "rsa/contrasts", "rsa/net", "rsa/pixels",
                              "rsa/reference", "rsa/selection"]
    # the groups are the stage outputs themselves
    import xarray as xr

    rsa_dir = json.loads((out / "run.json").read_text())["dirs"]["rsa"]
    stage = xr.load_dataset(os.path.join(rsa_dir, "rsa__net.nc"))
    xr.testing.assert_allclose(groups["rsa/net"]["score_mean"], stage["score_mean"])


def test_a_failed_first_stage_leaves_no_old_artefacts(tmp_path):
    for name in ("report.html", "results.nc", "report.png"):
        (tmp_path / name).write_text("old")

    def boom(ctx):
        raise ValueError("bad input")

    with pytest.raises(Exception, match="bad input"):
        run(CONFIG, out=tmp_path, stages=[Stage("a", boom, (), lambda c: None)],
            log=lambda s: None)
    assert not any((tmp_path / n).exists() for n in ("report.html", "results.nc", "report.png"))


def test_full_disk_in_extraction_then_rerun_continues(tmp_path, monkeypatch):
    import errno

    import zarr.storage._local as local

    from facebrain.errors import DiskFullError

    real, count = local._put, {"n": 0}

    def put(path, value, *args, **kwargs):  # zarr < 3.1 also passes start=
        count["n"] += 1
        if count["n"] >= 6:  # the disk fills while the store's skeleton is written
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, value, *args, **kwargs)

    cfg = {**TINY, "report": {"enabled": False}}
    monkeypatch.setattr(local, "_put", put)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DiskFullError, match="no space left on device") as info:
            run(cfg, out=tmp_path, log=lambda s: None)
        assert info.value.errno == errno.ENOSPC and "net.zarr" in str(info.value)
        assert json.loads((tmp_path / "run.json").read_text())["statuses"]["extract"] == "failed"
        monkeypatch.undo()  # space freed: the rerun continues (was: KeyError '_batches_done')
        res = run(cfg, out=tmp_path, log=lambda s: None)
    assert res.statuses["stimuli"] == "cached" and res.statuses["extract"] == "resumed"
    assert res.statuses["rsa"] == "computed" and (tmp_path / "results.nc").is_file()
