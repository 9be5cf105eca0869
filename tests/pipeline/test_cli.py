"""The ``facebrain`` command line: run / validate / show-config / list-models."""

from __future__ import annotations

import json

import pytest
import yaml

from facebrain import cli
from facebrain.pipeline import Stage, load_config

CONFIG = {
    "name": "cli",
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
    "models": [{"name": "net", "arch": "small_resnet"}],
    "brain": {"source": "none"},
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_list_models(capsys):
    assert cli.main(["list-models", "small*"]) == 0
    assert capsys.readouterr().out.split() == ["small_resnet"]


def test_validate_ok_and_bad(config_file, tmp_path, capsys):
    assert cli.main(["validate", str(config_file)]) == 0
    assert "valid (1 stimulus sets, 1 models" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**CONFIG, "transfer": {"directions": [
        {"target": "expression", "n_permutations": "ten"}]}}))
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "transfer.directions[0].n_permutations: expected int, got 'ten'" in err
    assert cli.main(["validate", str(config_file), "--set", "models[0].weights=/nope.pt"]) == 2
    assert "models[0].weights: file not found: /nope.pt" in capsys.readouterr().err


def test_show_config_prints_defaults(config_file, capsys):
    assert cli.main(["show-config", str(config_file), "--set", "seed=4"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["seed"] == 4 and shown["rsa"]["method"] == "spearman"
    assert load_config(shown).to_dict() == load_config(CONFIG, overrides={"seed": 4}).to_dict()


def test_run_uses_stages_and_flags(config_file, tmp_path, monkeypatch, capsys):
    calls = []

    def one(ctx):
        calls.append(ctx.config.seed)
        (ctx.dir / "report.html").write_text("<html></html>")

    monkeypatch.setattr("facebrain.pipeline._stages.default_stages",
                        lambda: [Stage("report", one, (), lambda c: c.seed)])
    out = tmp_path / "out"
    assert cli.main(["run", str(config_file), "--out", str(out), "--set", "seed=3"]) == 0
    captured = capsys.readouterr()
    assert "[report]" in captured.err and f"report: {out / 'report.html'}" in captured.out
    assert cli.main(["run", str(config_file), "--out", str(out), "--set", "seed=3"]) == 0
    assert "(cached)" in capsys.readouterr().err and calls == [3]
    assert cli.main(["run", str(config_file), "--out", str(out), "--set", "seed=3",
                     "--from", "report"]) == 0
    assert calls == [3, 3]
    assert json.loads((out / "run.json").read_text())["statuses"] == {"report": "computed"}
    assert (out / "report.html").read_text() == "<html></html>"


def test_run_rejects_unknown_stage_name(config_file):
    with pytest.raises(SystemExit) as err:
        cli.main(["run", str(config_file), "--from", "nowhere"])
    assert err.value.code == 2


def test_stage_failure_exit_status(config_file, tmp_path, monkeypatch, capsys):
    from facebrain.errors import StageError

    def boom(ctx):
        raise StageError("facebrain.encoding.evaluate is not available yet")

    monkeypatch.setattr("facebrain.pipeline._stages.default_stages",
                        lambda: [Stage("encoding", boom)])
    assert cli.main(["run", str(config_file), "--out", str(tmp_path / "o")]) == 1
    assert "not available yet" in capsys.readouterr().err


@pytest.mark.parametrize("given, busy, expected", [
    ({}, 0.0, "unset"),                       # idle: libgomp's default (spin, then sleep)
    ({}, 1.0, "PASSIVE"),                     # one of 2 CPUs taken: sleep at barriers
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 1.0, "ACTIVE"),  # the user's choice is kept
    ({"GOMP_SPINCOUNT": "100"}, 1.0, "unset"),       # ... whichever variable they set
])
def test_cli_run_sets_omp_wait_policy_before_torch_loads(given, busy, expected):
    # libgomp reads OMP_WAIT_POLICY once, when torch loads: `facebrain run` must decide
    # before anything imports torch, from how busy the CPUs are (measured; planted here)
    import os
    import subprocess
    import sys

    code = ("import os, sys, types\n"
            "import facebrain.cli as c, facebrain.pipeline._openmp as om, facebrain.pipeline as p\n"
            "import facebrain.pipeline._workers as w\n"
            "assert 'torch' not in sys.modules\n"
            f"om.busy_cpus = lambda: {busy}\n"
            "w.available_cpus = lambda: 2\n"
            "def run(*a, **k):\n"
            "    assert 'torch' not in sys.modules\n"
            "    import torch\n"
            "    print(os.environ.get('OMP_WAIT_POLICY', 'unset'))\n"
            "    return types.SimpleNamespace(written=[])\n"
            "p.run = run\n"
            "assert c.main(['run']) == 0\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == expected


def test_console_script_skips_the_exit_collection(tmp_path):
    # `facebrain` (argv from the command line) freezes the collector at exit, after its
    # files are closed: an atexit hook registered before main() runs after main's own
    # (last in, first out) and sees the frozen generation. A file written and closed by the
    # command is whole.
    import subprocess
    import sys

    out = tmp_path / "config.yaml"
    code = ("import atexit, gc, os, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"
            "import facebrain.cli as c\n"
            "sys.argv = ['facebrain', 'show-config', '--set', 'name=exitgc']\n"
            f"stdout = open({str(out)!r}, 'w')\n"
            "sys.stdout = stdout\n"
            "rc = c.main()\n"
            "stdout.close(); sys.stdout = sys.__stdout__\n"
            "print('rc', rc, flush=True)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert res == ["rc", "0", "frozen", "True"]
    assert yaml.safe_load(out.read_text())["name"] == "exitgc"


def test_main_called_with_argv_keeps_the_collector(monkeypatch, capsys):
    # a caller passing argv (tests, notebooks) registers nothing at exit
    import atexit

    registered = []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **k: registered.append(fn))
    assert cli.main(["list-models", "small*"]) == 0
    assert registered == []
    monkeypatch.setattr("sys.argv", ["facebrain", "list-models", "small*"])
    monkeypatch.setattr("facebrain._allocator.keep_freed_memory", lambda: False)
    assert cli.main() == 0  # the console path registers the freeze (not run here)
    import gc

    assert registered == [gc.freeze]
    capsys.readouterr()
