"""Wall-clock helpers shared by the benchmarks (``benchmarks/`` is on sys.path when run)."""

from __future__ import annotations

import time


def timed(fn):
    """``(seconds, result)`` of one call of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(fn, repeats: int):
    """``(fastest seconds, last result)`` over ``repeats`` calls of ``fn()``."""
    times, out = [], None
    for _ in range(repeats):
        t, out = timed(fn)
        times.append(t)
    return min(times), out
