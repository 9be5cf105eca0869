"""Importing a room stays cheap: its heavy peers load on first use (issue 13, item 5).

Timing-free: a fresh interpreter imports the room and reports which heavy packages it
pulled in. A room that imports rsatoolbox, nilearn or scikit-learn at module top fails.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("rsatoolbox", "nilearn", "sklearn", "matplotlib", "numba", "himalaya", "scipy.stats")


@pytest.mark.parametrize("room", ["facebrain.rsa", "facebrain.brain", "facebrain.encoding"])
def test_room_import_pulls_no_heavy_peer(room):
    code = (f"import sys, json; import {room} as m; "
            f"print(json.dumps([k for k in {HEAVY!r} if k in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("room", ["facebrain.rsa", "facebrain.brain", "facebrain.encoding"])
def test_lazy_names_resolve_to_their_modules(room):
    import importlib

    mod = importlib.import_module(room)
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert obj is not None
    assert sorted(dir(mod)) == sorted(mod.__all__)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        mod.not_a_name  # noqa: B018
