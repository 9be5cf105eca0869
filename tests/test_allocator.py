"""The ``facebrain`` command keeps freed memory: a batch's buffers are not faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from facebrain import _allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="glibc malloc, page faults from getrusage")

# allocate, touch and free a 200 MB block twice; report the minor page faults of the second
# (numpy asks for transparent huge pages on large arrays; torch does not, nor does the probe)
_PROBE = textwrap.dedent("""
    import json, os, resource, sys
    import numpy as np
    from facebrain._allocator import ENV
    KEYS = sorted(ENV)
    core = np._core if hasattr(np, "_core") else np.core  # numpy 1.x: numpy.core
    core.multiarray._set_madvise_hugepage(False)  # 4 KB pages, as torch's tensors
    if sys.argv[1] == "apply":
        from facebrain._allocator import keep_freed_memory
        applied = keep_freed_memory()
    else:
        applied = None
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(25_000_000); del a
    before = faults()
    b = np.ones(25_000_000); del b
    print(json.dumps({"applied": applied, "faults": faults() - before,
                      "env": {k: os.environ.get(k) for k in KEYS}}))
""")


def _probe(mode: str, **env) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in _allocator.ENV and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**base, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_freed_blocks_are_reused_without_page_faults():
    pages = 200e6 / os.sysconf("SC_PAGE_SIZE")
    plain = _probe("plain")
    kept = _probe("apply")
    assert plain["faults"] > 0.9 * pages  # glibc unmapped the block: every page again
    assert kept["applied"] is True
    assert kept["faults"] < 0.05 * pages
    assert kept["env"] == _allocator.ENV  # spawned workers start with the same settings


def test_a_users_malloc_settings_are_kept():
    pages = 200e6 / os.sysconf("SC_PAGE_SIZE")
    for env in ({"MALLOC_TRIM_THRESHOLD_": "131072"},
                {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}):
        out = _probe("apply", **env)
        assert out["applied"] is False
        assert out["faults"] > 0.9 * pages
        assert out["env"]["MALLOC_MMAP_MAX_"] is None
