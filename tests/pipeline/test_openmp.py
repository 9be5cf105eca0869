"""The facebrain command's OpenMP wait policy: CPU load from /proc/stat, threads from the config."""

from __future__ import annotations

import os
import sys

import pytest

from facebrain.pipeline._openmp import (
    busy_cpus,
    choose_wait_policy,
    config_threads,
    set_wait_policy,
)

HEAD = "cpu  1 1 1 1 1 0 0 0 0 0\n"


def _stat(rows: dict[int, tuple]) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice
    return HEAD + "\n" + "".join(f"cpu{k} " + " ".join(str(v) for v in vals) + " 0 0\n"
                          for k, vals in rows.items()) + "intr 5 6\nctxt 7\n"


def _reader(*texts):
    it = iter(texts)
    return lambda: next(it)


def test_busy_cpus_counts_other_work_on_this_process_cpus_only():
    before = _stat({0: (100, 0, 0, 900, 0, 0, 0, 0), 1: (0, 0, 0, 1000, 0, 0, 0, 0),
                    2: (0, 0, 0, 1000, 0, 0, 0, 0)})
    # cpu0: 60 of 100 jiffies busy (user 40, system 10, irq 5, softirq 5); cpu1: idle,
    # 10 jiffies in iowait (not busy); cpu2 (outside the mask): fully busy
    after = _stat({0: (140, 0, 10, 940, 0, 5, 5, 0), 1: (0, 0, 0, 1090, 10, 0, 0, 0),
                   2: (100, 0, 0, 1000, 0, 0, 0, 0)})
    got = busy_cpus(0.0, read=_reader(before, after), cpus={0, 1})
    assert got == pytest.approx(2 * 60 / 200)
    assert busy_cpus(0.0, read=_reader(before, after), cpus={1}) == 0.0
    assert busy_cpus(0.0, read=_reader(before, after), cpus={2}) == pytest.approx(1.0)


def test_stolen_time_counts_as_busy():
    before = _stat({0: (0, 0, 0, 0, 0, 0, 0, 0)})
    after = _stat({0: (10, 0, 0, 50, 0, 0, 0, 40)})  # 40 of 100 jiffies stolen by the host
    assert busy_cpus(0.0, read=_reader(before, after), cpus={0}) == pytest.approx(0.5)


def test_busy_cpus_unreadable_or_foreign_stat_is_unknown():
    def fail():
        raise OSError("no /proc")

    assert busy_cpus(0.0, read=fail, cpus={0}) is None
    assert busy_cpus(0.0, read=_reader("intr 1\n", "intr 2\n"), cpus={0}) is None
    same = _stat({0: (1, 0, 0, 1, 0, 0, 0, 0)})
    assert busy_cpus(0.0, read=_reader(same, same), cpus={0}) is None  # no time passed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_cpus_on_this_machine_is_within_its_cpus():
    n = len(os.sched_getaffinity(0))
    got = busy_cpus(0.05)
    assert got is not None and 0.0 <= got <= n


@pytest.mark.parametrize("threads, cpus, busy, expected", [
    (2, 2, 0.0, None), (2, 2, 0.4, None), (2, 2, 0.6, "PASSIVE"), (2, 2, None, "PASSIVE"),
    (1, 2, 2.0, None),                       # one thread: no barriers to wait at
    (None, 2, 0.0, None), (None, 8, 0.8, "PASSIVE"), (4, 16, 11.0, None),
    (4, 16, 12.6, "PASSIVE"), (8, 4, 0.0, None),  # more threads than CPUs: capped at 4
])
def test_passive_only_when_the_threads_do_not_fit_on_idle_cpus(threads, cpus, busy, expected):
    assert choose_wait_policy(threads, cpus, busy) == expected


def test_config_threads_reads_the_yaml_and_overrides(tmp_path):
    assert config_threads(None) == 2  # the built-in demo says threads: 2
    assert config_threads(None, ["threads=1"]) == 1
    assert config_threads(None, ["models[0].train.epochs=2", " threads = null"]) is None
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nthreads: 6\n")
    assert config_threads(cfg) == 6
    cfg.write_text("name: x\n")
    assert config_threads(cfg) is None  # absent: the default, one per CPU
    for bad in ("threads: [1, 2\n", "threads: many\n", "threads: true\n", "- a list\n"):
        cfg.write_text(bad)
        assert config_threads(cfg) == "unknown", bad
    assert config_threads(tmp_path / "missing.yaml") == "unknown"


def test_one_thread_needs_no_measurement(tmp_path, monkeypatch):
    # a private copy of the environment: set_wait_policy writes into os.environ
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    monkeypatch.setattr(os, "environ", env)
    monkeypatch.setattr("facebrain.pipeline._workers.available_cpus", lambda: 2)

    def measure():
        raise AssertionError("measured although one thread never waits at a barrier")

    assert set_wait_policy(None, ["threads=1"], measure=measure) is None
    assert "OMP_WAIT_POLICY" not in os.environ
    assert set_wait_policy(None, [], measure=lambda: 1.5) == "PASSIVE"  # 2 threads, 1 busy
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
