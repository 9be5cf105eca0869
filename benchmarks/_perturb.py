"""Deliberate breakage, to prove that a benchmark's agreement check can fail.

Set ``FACEBRAIN_BENCH_PERTURB=<eps>`` (e.g. ``0.1``, larger than every
tolerance the benchmarks use) and every benchmark that imports this module
shifts its facebrain-side result by ``eps`` times the result's largest absolute
value just before comparing it with its baseline; the benchmark must then print
its failure and exit non-zero, which stops ``make bench``.
``tests/test_benchmarks_fail.py`` runs this in a subprocess.
Unset (the default), :func:`perturb` returns its argument unchanged.
"""

from __future__ import annotations

import os

import numpy as np

ENV = "FACEBRAIN_BENCH_PERTURB"


def epsilon() -> float:
    """The requested relative perturbation (0.0 when the variable is unset)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{ENV}={raw!r} is not a number; unset it or give e.g. 0.1") from None


def perturb(x):
    """``x`` unchanged, or ``x + eps * max|x|`` (as float64) when the variable is set."""
    eps = epsilon()
    if eps == 0.0:
        return x
    arr = np.asarray(x, dtype=np.float64)
    scale = float(np.abs(arr).max()) if arr.size else 1.0
    print(f"[perturb] {ENV}={eps:g}: facebrain's result shifted by {eps * (scale or 1.0):.3g}")
    return arr + eps * (scale or 1.0)
