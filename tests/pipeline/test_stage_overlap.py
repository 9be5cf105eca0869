"""Work beside a stage's own: the transfer stage's second process, the report's results.nc.

The rule under test: where a job runs never changes what it writes. The transfer stage
shares its candidates with a second process (both single-threaded) when a core is free;
its probe files, summary and log must be those of probing everything one after another
at the config's thread count. The report's ``results.nc`` written beside its figures is
tested in ``tests/report/test_report.py``.
"""

from __future__ import annotations

import math
import operator
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from facebrain.errors import StageError
from facebrain.pipeline import _workers, run
from facebrain.pipeline._stages import default_stages
from facebrain.pipeline._transfer_stage import _split

from . import _fakes

_UPTO_EXTRACT = ("stimuli", "train", "extract")


def _stages(names):
    return [s for s in default_stages() if s.name in names]


def _run(out, monkeypatch, processes: str, names, log, **kw):
    monkeypatch.setattr(_workers, "available_cpus", lambda: 4)
    monkeypatch.setenv(_workers.ENV_PROCESSES, processes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # threads: 2 as in the demo: one after another probes at 2 threads, the split at 1
        return run(None, out=out, overrides={**_fakes.DEMO_TINY, "threads": 2},
                   stages=_stages(names), log=log, **kw)


def _assert_same_netcdf(a: Path, b: Path) -> None:
    x, y = xr.load_dataset(a, engine="h5netcdf"), xr.load_dataset(b, engine="h5netcdf")
    assert x.attrs == y.attrs, a.name
    assert sorted(x.variables) == sorted(y.variables), a.name
    for v in x.variables:
        xv, yv = x[v].values, y[v].values
        assert x[v].dims == y[v].dims and x[v].attrs == y[v].attrs, (a.name, v)
        if xv.dtype.kind == "f":  # bitwise, NaNs in the same places
            np.testing.assert_array_equal(xv.view(f"u{xv.dtype.itemsize}"),
                                          yv.view(f"u{yv.dtype.itemsize}"), err_msg=f"{a.name}:{v}")
        else:
            np.testing.assert_array_equal(xv, yv, err_msg=f"{a.name}:{v}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A tiny demo run up to the extract stage (copied by each test that goes on)."""
    out = tmp_path_factory.mktemp("upto_extract")
    mp = pytest.MonkeyPatch()
    try:
        _run(out, mp, "1", _UPTO_EXTRACT, lambda _m: None)
    finally:
        mp.undo()
    return out


def test_transfer_split_between_processes_writes_the_sequential_files(extracted, tmp_path,
                                                                      monkeypatch):
    names = _UPTO_EXTRACT + ("transfer",)
    seq_out, par_out = tmp_path / "seq", tmp_path / "par"
    shutil.copytree(extracted, seq_out)
    shutil.copytree(extracted, par_out)
    seq_log: list[str] = []
    par_log: list[str] = []
    seq = _run(seq_out, monkeypatch, "1", names, seq_log.append)
    par = _run(par_out, monkeypatch, "2", names, par_log.append)
    assert seq.statuses["transfer"] == par.statuses["transfer"] == "computed"
    assert par.keys["transfer"] == seq.keys["transfer"]
    assert par.summaries["transfer"] == seq.summaries["transfer"]
    assert list(par.summaries["transfer"]) == list(seq.summaries["transfer"])  # config order
    probes = [ln for ln in seq_log if ln.startswith("[transfer]") and "<-" in ln]
    assert len(probes) == len(seq.summaries["transfer"]) >= 4
    # the same lines; the split logs each process's share as it finishes
    assert sorted(ln for ln in par_log if ln.startswith("[transfer]") and "<-" in ln) == sorted(
        probes)
    files = sorted(p.name for p in seq.dirs["transfer"].glob("*.nc"))
    assert files == sorted(p.name for p in par.dirs["transfer"].glob("*.nc"))
    assert sum(f.startswith("probe__") for f in files) == len(probes)
    for f in files:
        _assert_same_netcdf(seq.dirs["transfer"] / f, par.dirs["transfer"] / f)


def test_transfer_split_keeps_a_candidates_directions_together_and_balances_work():
    # runs: (direction, order, name, kind, of, layers)
    def g(name, kind, n_layers, dirs=(0,)):
        return [(d, i, name, kind, None, [f"l{k}" for k in range(n_layers)])
                for i, d in enumerate(dirs)]

    groups = [g("a", "network", 4, (0, 1)), g("b", "network", 4, (0, 1)),
              g("u", "untrained", 4, (0, 1)), g("px", "pixels", 1, (0, 1))]
    mine, theirs = _split(groups)
    assert sorted(mine + theirs) == sorted(r for grp in groups for r in grp)
    for grp in groups:  # a candidate's directions share its features: one process
        assert all(r in mine for r in grp) or all(r in theirs for r in grp)
    cost = {"a": 9, "b": 9, "u": 9, "px": 2}
    here = sum(cost[r[2]] for r in mine) / 2
    there = sum(cost[r[2]] for r in theirs) / 2
    assert mine and theirs and abs(here - there) <= 9  # no side idles with everything
    assert mine == sorted(mine) and theirs == sorted(theirs)  # config order within a side


# ------------------------------------------------------------------- BesideJob itself
# (stdlib functions as jobs: the spawned process imports nothing of the test suite)
def test_beside_job_returns_its_value_and_raises_its_error():
    with _workers.BesideJob(math.sqrt, (49.0,), name="sqrt", threads=None) as job:
        assert job.result() == 7.0
    job = _workers.BesideJob(operator.truediv, (1, 0), name="failing", threads=None)
    with pytest.raises(ZeroDivisionError) as info:
        job.result()
    assert "in a parallel stage process" in "".join(getattr(info.value, "__notes__", []))
    with pytest.raises(StageError, match=r"died with exit code 3.*FACEBRAIN_STAGE_PROCESSES"):
        _workers.BesideJob(os._exit, (3,), name="dying", threads=None).result()


def test_job_process_skips_the_exit_collection_and_writes_whole_files(tmp_path):
    # after sending its result the job freezes the collector (the parent's join waited
    # 1.1-1.3 s for the collection of torch's objects); an atexit hook registered by the
    # job runs after that and sees it, and a file the job wrote and closed is whole
    seen, data = tmp_path / "seen.txt", tmp_path / "data.txt"
    code = ("import atexit, gc\n"
            f"atexit.register(lambda: open({str(seen)!r}, 'w').write("
            "str(gc.get_freeze_count() > 0)))\n"
            f"with open({str(data)!r}, 'w') as f:\n"
            "    f.write('x' * 100000)\n")
    with _workers.BesideJob(exec, (code,), name="exec", threads=None) as job:
        assert job.result() is None
    assert seen.read_text() == "True"
    assert data.read_text() == "x" * 100000
    # a failing job too
    seen.unlink()
    with pytest.raises(ZeroDivisionError):
        _workers.BesideJob(exec, (code + "1 / 0\n",), name="exec", threads=None).result()
    assert seen.read_text() == "True"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_an_error_beside_the_job_ends_it():
    with (pytest.raises(RuntimeError, match="caller failed"),
          _workers.BesideJob(time.sleep, (120,), name="sleeper", threads=None) as job):
        pid = job._proc.pid
        assert _fakes.alive(pid)
        raise RuntimeError("caller failed")
    assert not _fakes.alive(pid)
    job.cancel()  # a second cancel is a no-op


def test_spare_process_follows_cores_and_the_variable(monkeypatch):
    monkeypatch.delenv(_workers.ENV_PROCESSES, raising=False)
    monkeypatch.setattr(_workers, "available_cpus", lambda: 1)
    assert not _workers.spare_process()
    monkeypatch.setattr(_workers, "available_cpus", lambda: 2)
    assert _workers.spare_process()
    monkeypatch.setenv(_workers.ENV_PROCESSES, "1")
    assert not _workers.spare_process()
