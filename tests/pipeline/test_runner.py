"""Stage runner mechanics with small fake stages: keys, caching, --from, corruption, kills."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from facebrain.errors import DiskFullError, StageError
from facebrain.pipeline import Stage, load_config, run
from facebrain.pipeline._cache import MANIFEST

CONFIG = {
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
    "models": [{"name": "net", "arch": "small_resnet"}],
    "brain": {"source": "none"},
    "extract": {"batch_size": 8},
    "rsa": {"n_bootstrap": 3},
}


def fake_stages(calls: list, *, fail_in: str | None = None):
    """a -> b -> c; each writes numbers derived from its config and its input."""

    def a(ctx):
        calls.append("a")
        (ctx.dir / "a.json").write_text(json.dumps({"v": ctx.config.extract.batch_size}))
        return {"n": 1}

    def b(ctx):
        calls.append("b")
        v = json.loads((ctx.input("a") / "a.json").read_text())["v"]
        if fail_in == "b":
            (ctx.dir / "half.bin").write_bytes(b"x" * 10)
            raise KeyboardInterrupt  # killed mid-stage
        (ctx.dir / "b.json").write_text(json.dumps({"v": v * ctx.config.rsa.n_bootstrap}))

    def c(ctx):
        calls.append("c")
        v = json.loads((ctx.input("b") / "b.json").read_text())["v"]
        (ctx.dir / "sub").mkdir()
        (ctx.dir / "sub" / "c.json").write_text(json.dumps({"v": v + 1}))

    return [
        Stage("a", a, (), lambda c: c.extract),
        Stage("b", b, ("a",), lambda c: c.rsa),
        Stage("c", c, ("b",), lambda c: c.report),
    ]


def result_of(res) -> int:
    return json.loads((res.dirs["c"] / "sub" / "c.json").read_text())["v"]


def test_rerun_skips_every_stage_and_logs_one_line_each(tmp_path):
    calls, lines = [], []
    res = run(CONFIG, out=tmp_path, stages=fake_stages(calls), log=lines.append)
    assert calls == ["a", "b", "c"] and result_of(res) == 8 * 3 + 1
    assert res.statuses == {"a": "computed", "b": "computed", "c": "computed"}
    assert [ln.split("]")[0] for ln in lines] == ["[a", "[b", "[c"]
    assert all(ln.endswith(" s") for ln in lines)
    lines.clear()
    res2 = run(CONFIG, out=tmp_path, stages=fake_stages(calls), log=lines.append)
    assert calls == ["a", "b", "c"]  # nothing ran again
    assert res2.keys == res.keys and set(res2.statuses.values()) == {"cached"}
    assert all(ln.endswith("(cached)") for ln in lines)
    manifest = json.loads((res.dirs["c"] / MANIFEST).read_text())
    assert manifest["key"] == res.keys["c"] and "sub/c.json" in manifest["files"]
    assert manifest["inputs"] == {"b": res.keys["b"]}
    assert json.loads((tmp_path / "run.json").read_text())["keys"] == res.keys


def test_manifests_and_run_json_record_the_environment(tmp_path):
    """Package versions are recorded (to trace numbers that moved), not keyed."""
    import platform

    import numpy
    import torch

    res = run(CONFIG, out=tmp_path, stages=fake_stages([]))
    run_env = json.loads((tmp_path / "run.json").read_text())["environment"]
    for stage in ("a", "b", "c"):
        env = json.loads((res.dirs[stage] / MANIFEST).read_text())["environment"]
        assert env == run_env
    # the imported modules' own versions (not the metadata the code reads)
    assert run_env["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert run_env["machine"] == platform.machine()
    assert run_env["packages"]["numpy"] == numpy.__version__
    assert run_env["packages"]["torch"] == torch.__version__.split("+")[0]
    # the CPU, checked against the kernels torch's own CPU detection chose
    cpu = run_env["cpu"]
    assert 1 <= cpu["usable"] <= cpu["count"]
    capability = torch.backends.cpu.get_cpu_capability()
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        assert cpu["model"], cpu
        need = {"AVX2": "avx2", "AVX512": "avx512f"}.get(capability[:6], "sse4_2")
        assert need in cpu["simd"], (capability, cpu)


def test_changing_one_setting_recomputes_that_stage_and_later_only(tmp_path):
    calls = []
    res = run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    calls.clear()
    res2 = run(CONFIG, out=tmp_path, stages=fake_stages(calls), overrides={"rsa.n_bootstrap": 5})
    assert calls == ["b", "c"]
    assert res2.keys["a"] == res.keys["a"] and res2.keys["b"] != res.keys["b"]
    assert res2.keys["c"] != res.keys["c"]  # its input changed
    assert result_of(res2) == 8 * 5 + 1
    # the earlier variant is still cached
    calls.clear()
    run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    assert calls == []
    # a setting that only equals the default does not change any key
    calls.clear()
    run(CONFIG, out=tmp_path, stages=fake_stages(calls), overrides={"rsa.method": "spearman"})
    assert calls == []


def test_from_stage_forces_recompute(tmp_path):
    calls = []
    run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    calls.clear()
    res = run(CONFIG, out=tmp_path, stages=fake_stages(calls), from_stage="b")
    assert calls == ["b", "c"] and res.statuses["a"] == "cached"
    with pytest.raises(Exception, match="unknown stage 'bogus'; stages are a, b, c"):
        run(CONFIG, out=tmp_path, stages=fake_stages(calls), from_stage="bogus")


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest", "extra_key"])
def test_corrupted_stage_output_is_recomputed_with_a_warning(tmp_path, damage):
    calls = []
    res = run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    target = res.dirs["b"] / "b.json"
    if damage == "truncate":
        target.write_text(target.read_text()[:-2] + "99")  # same size, other content
    elif damage == "delete":
        target.unlink()
    elif damage == "manifest":
        (res.dirs["b"] / MANIFEST).write_text("{not json")
    else:
        m = json.loads((res.dirs["b"] / MANIFEST).read_text())
        m["key"] = "0" * 16
        (res.dirs["b"] / MANIFEST).write_text(json.dumps(m))
    calls.clear()
    with pytest.warns(RuntimeWarning, match="stage 'b': output in .* is not valid"):
        res2 = run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    assert calls == ["b"]  # c's key is unchanged and its output is valid
    assert result_of(res2) == result_of(res)
    assert json.loads(target.read_text()) == {"v": 24}


def test_interrupted_stage_is_never_taken_as_done(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run(CONFIG, out=tmp_path, stages=fake_stages(calls, fail_in="b"))
    key_dirs = [p.name for p in (tmp_path / "b").iterdir()]
    assert len(key_dirs) == 1 and key_dirs[0].endswith(".partial")
    assert not (tmp_path / "c").exists()
    calls.clear()
    res = run(CONFIG, out=tmp_path, stages=fake_stages(calls))
    assert calls == ["b", "c"] and result_of(res) == 25
    assert not (res.dirs["b"] / "half.bin").exists()  # non-resumable partial was cleared
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "b").iterdir())


def test_resumable_stage_keeps_its_partial_folder(tmp_path):
    seen = []

    def work(ctx):
        seen.append(ctx.resumed)
        ck = ctx.dir / "checkpoint.txt"
        done = int(ck.read_text()) if ck.exists() else 0
        for step in range(done, 4):
            ck.write_text(str(step + 1))
            if step == 1 and not ctx.resumed:
                raise KeyboardInterrupt
        return {"started_at": done}

    stages = [Stage("train", work, (), lambda c: c.seed, resumable=True)]
    with pytest.raises(KeyboardInterrupt):
        run(CONFIG, out=tmp_path, stages=stages)
    lines = []
    res = run(CONFIG, out=tmp_path, stages=stages, log=lines.append)
    assert seen == [False, True] and res.summaries["train"] == {"started_at": 2}
    assert res.statuses["train"] == "resumed" and "resuming" in lines[0]


def test_full_disk_stops_with_a_clear_error_and_nothing_marked_done(tmp_path):
    def full(ctx):
        raise OSError(errno.ENOSPC, "No space left on device")

    stages = [Stage("a", full, (), lambda c: None)]
    with pytest.raises(DiskFullError, match="no space left on device while writing .*run again"
                       ) as info:
        run(CONFIG, out=tmp_path, stages=stages)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert not any((tmp_path / "a").glob("*/" + MANIFEST))


def test_full_disk_hidden_in_a_runtime_error_is_named(tmp_path):
    def torch_like(ctx):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # torch's zip writer replaces it with this
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    stages = [Stage("a", torch_like, (), lambda c: None)]
    with pytest.raises(DiskFullError, match="unexpected pos"):
        run(CONFIG, out=tmp_path, stages=stages, log=lambda s: None)


def test_disabled_stage_passes_none_and_dependents_say_so(tmp_path):
    def needs(ctx):
        ctx.input("a")

    stages = [Stage("a", lambda ctx: None, (), enabled=lambda c: False),
              Stage("b", needs, ("a",))]
    lines = []
    with pytest.raises(StageError, match="needs the output of stage 'a', which is disabled"):
        run(CONFIG, out=tmp_path, stages=stages, log=lines.append)
    assert lines[0] == "[a] disabled"


def test_config_objects_and_paths_are_accepted(tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    calls = []
    r1 = run(path, out=tmp_path / "r", stages=fake_stages(calls))
    r2 = run(load_config(path), out=tmp_path / "r", stages=fake_stages(calls))
    assert r1.keys == r2.keys and calls == ["a", "b", "c"]


KILL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from facebrain.pipeline import Stage, run
    out, mode = sys.argv[1], sys.argv[2]
    cfg = {"stimuli": {"t": {"source": "synthetic_kdef"}}, "models": [{"name": "n",
           "arch": "small_resnet"}], "brain": {"source": "none"}, "extract": {"stimuli": "t"}}
    def slow(ctx):
        for i in range(6):
            with open(ctx.dir / f"part{i}.txt", "w") as f:
                f.write(str(i * i))
            if mode == "kill" and i == 2:
                Path(out, "ready").write_text("1")
                time.sleep(60)
    def total(ctx):
        s = sum(int((ctx.input("slow") / f"part{i}.txt").read_text()) for i in range(6))
        (ctx.dir / "total.txt").write_text(str(s))
    res = run(cfg, out=out, stages=[Stage("slow", slow, (), lambda c: c.seed),
                                    Stage("total", total, ("slow",), lambda c: None)])
    print((res.dirs["total"] / "total.txt").read_text())
""")


def test_killed_process_mid_stage_then_rerun_completes_with_same_result(tmp_path, monkeypatch,
                                                                      capsys):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(out), "kill"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (out / "ready").exists():
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(proc.communicate())
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(out.glob("slow/*/" + MANIFEST))
    # rerun (in this process, to save an interpreter start-up) and compare with the answer
    import runpy

    monkeypatch.setattr(sys, "argv", ["kill.py", str(out), "ok"])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip() == str(sum(i * i for i in range(6)))
    assert len(list(out.glob("slow/*/" + MANIFEST))) == 1
    assert not list(out.glob("slow/*.partial"))


@pytest.mark.distributed
def test_scheduler_gives_heavy_stages_a_dask_client(tmp_path):
    seen = {}

    def light(ctx):
        seen["light"] = ctx.client

    def heavy(ctx):
        seen["heavy"] = ctx.client
        seen["sum"] = ctx.client.submit(sum, [1, 2, 3]).result()
        seen["workers"] = len(ctx.client.scheduler_info()["workers"])

    stages = [Stage("a", light, (), lambda c: None),
              Stage("b", heavy, ("a",), lambda c: None, heavy=True)]
    lines = []
    run(CONFIG, out=tmp_path, stages=stages, scheduler="local:2", log=lines.append)
    assert seen["light"] is None and seen["heavy"] is not None
    assert seen["sum"] == 6 and seen["workers"] == 2
    assert lines[0].startswith("[scheduler] connected to tcp://")
    assert seen["heavy"].status == "closed"  # the run closes the client it opened


def test_unreachable_scheduler_names_the_address(tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(StageError, match="could not connect to dask scheduler at "
                                            "'tcp://127.0.0.1:1'"):
        run(CONFIG, out=tmp_path, stages=fake_stages([]), scheduler="tcp://127.0.0.1:1")


def test_synthetic_sets_are_built_once_per_run_and_handed_out_as_copies(tmp_path):
    import numpy as np
    import pandas as pd

    from facebrain.pipeline import _stages

    cfg = load_config({**CONFIG, "stimuli": {
        "test": {"source": "synthetic_kdef", "image_size": 32, "sessions": ["A"],
                 "views": ["S"], "identities": 3},
        "other": {"source": "synthetic_kdef", "image_size": 32, "sessions": ["B"]}}})
    spec = cfg.stimuli["test"]
    _stages.clear_stimuli_memo()
    a, b = _stages._generated_set(spec, 0), _stages._generated_set(spec, 0)
    ref = _stages.build_stimulus_set(spec, 0)  # built afresh
    assert len(_stages._GENERATED_MEMO) == 1
    pd.testing.assert_frame_equal(a.table, ref.table)
    np.testing.assert_array_equal(a.load(5), ref.load(5))
    a.table.loc[a.table.index[0], "expression"] = "changed"  # a caller's own copy
    pd.testing.assert_frame_equal(b.table, ref.table)
    # another entry or seed: another set
    assert len(_stages._generated_set(cfg.stimuli["other"], 0)) != len(ref)
    other_seed = _stages._generated_set(spec, 1)
    assert not np.array_equal(other_seed.load(5), ref.load(5))
    assert len(_stages._GENERATED_MEMO) == 3
    run(cfg, out=tmp_path, stages=fake_stages([]), log=lambda line: None)
    assert not _stages._GENERATED_MEMO  # every run starts without them
