"""Benchmarks can fail: a deliberately broken agreement check exits non-zero and stops `make bench`.

``FACEBRAIN_BENCH_PERTURB`` (benchmarks/_perturb.py) shifts a benchmark's
facebrain-side result just before it is compared with the baseline. The
loaders benchmark runs in a subprocess at its smallest size (a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--fer-rows", "20", "--kdef-persons", "1"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FACEBRAIN_BENCH_PERTURB"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _bench(**extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/bench_loaders.py", *TINY], check=False,
                          cwd=REPO,
                          env=_env(**extra), capture_output=True, text=True, timeout=300)


def test_benchmark_passes_unperturbed_and_fails_perturbed():
    ok = _bench()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "images identical" in ok.stdout
    bad = _bench(FACEBRAIN_BENCH_PERTURB="0.1")
    assert bad.returncode != 0, bad.stdout
    assert "FER2013: images differ from the pandas baseline" in bad.stderr


def test_bad_perturbation_value_is_an_error():
    bad = _bench(FACEBRAIN_BENCH_PERTURB="lots")
    assert bad.returncode != 0 and "is not a number" in bad.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_bench_stops_at_a_failing_benchmark():
    # -o: take the virtualenv stamp as up to date (this interpreter runs the benchmark)
    cmd = ["make", "-s", "-o", ".venv/.installed", "bench", f"PY={sys.executable}",
           "BENCHES=benchmarks/bench_loaders.py benchmarks/bench_synthetic.py",
           "BENCH_ARGS=" + " ".join(TINY)]
    res = subprocess.run(cmd, check=False, cwd=REPO, env=_env(FACEBRAIN_BENCH_PERTURB="0.1"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "== benchmarks/bench_loaders.py" in res.stdout
    # the loop stops at the first failure: the next benchmark never starts
    assert "== benchmarks/bench_synthetic.py" not in res.stdout


def _gpu_check(*argv: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--quick", "--repeats",
                           "1", *argv], check=False, cwd=REPO, env=_env(**extra),
                          capture_output=True, text=True, timeout=300)


def test_gpu_check_runs_on_the_cpu_and_can_fail():
    # the device check (goal 7) runs its torch path on the CPU here, against numpy
    ok = _gpu_check("--device", "cpu")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("-> AGREE") == 4 and "all parts AGREE" in ok.stdout
    bad = _gpu_check("--device", "cpu", "--parts", "ridge", FACEBRAIN_BENCH_PERTURB="0.1")
    assert bad.returncode == 1 and "[ridge]" in bad.stdout and "-> DISAGREE" in bad.stdout


def test_gpu_check_without_the_device_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = _gpu_check("--device", "cuda")
    assert res.returncode == 2 and "nothing was checked" in res.stderr
    assert "AGREE" not in res.stdout
