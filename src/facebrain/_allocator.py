"""Keep freed memory in the ``facebrain`` process instead of handing it back to the OS.

glibc's malloc serves large blocks (above a threshold of at most 32 MB) with fresh
``mmap`` pages and unmaps them on free; it also trims the heap's free top. A network's
activations and gradients are exactly such blocks, allocated and freed every batch, so
each batch faults in (and zeroes) its memory again. On virtual machines a page fault is
expensive: extracting ResNet-50 activations spent as much time in the kernel as in
convolutions. With mmap off and trimming above 2 GB only, freed blocks are reused from
the heap. What is computed does not change, only where the bytes live; the price is
that the process's peak memory is not given back until it ends (and some fragmentation:
+2% peak for a training step, +18% for the ResNet-50 extraction benchmark).

``facebrain`` (the command) applies this to itself and, through the environment, to the
processes it spawns. A Python session is left as it is: set the two variables below in
the shell before starting Python to get the same. A value already in the environment
(either variable, or a ``glibc.malloc`` tunable) is kept and nothing is changed.
"""

from __future__ import annotations

import ctypes
import os

#: the settings (glibc's environment variables, read when a process starts)
ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}

_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


def _user_chose() -> bool:
    return (any(k in os.environ for k in ENV)
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""))


def keep_freed_memory() -> bool:
    """Apply :data:`ENV` to this process (``mallopt``) and its future children.

    Returns whether it was applied: False off glibc, or when the environment already
    sets how malloc returns memory (the user's choice is kept).
    """
    if _user_chose():
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (mallopt(_M_MMAP_MAX, int(ENV["MALLOC_MMAP_MAX_"]))
            and mallopt(_M_TRIM_THRESHOLD, int(ENV["MALLOC_TRIM_THRESHOLD_"]))):
        return False  # pragma: no cover - glibc refused a documented value
    os.environ.update(ENV)  # spawned workers read them when they start
    return True
