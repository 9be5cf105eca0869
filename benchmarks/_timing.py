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


def allocator(default_malloc: bool) -> str:
    """Set this process's malloc as the ``facebrain`` command does, unless told not to.

    glibc unmaps freed blocks over its mmap threshold and faults them in again on the
    next allocation; on virtual machines that kernel time can rival the arithmetic and
    it lands on whichever side allocates more (measured: himalaya's KernelRidgeCV took
    33.6 s with the default malloc and 17.1 s without the faults, on the same machine).
    Both sides of a benchmark run in this process, so both get the same allocator.
    Returns a description for the benchmark's header line.
    """
    from facebrain._allocator import keep_freed_memory

    if default_malloc:
        return "default malloc (--default-malloc)"
    if keep_freed_memory():
        return "malloc keeps freed memory, as the facebrain command sets it (both sides)"
    return "malloc as the environment sets it"
