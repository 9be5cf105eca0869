"""A full disk while creating a store leaves nothing a rerun trips over (issue 12, item 8)."""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from _nets import TinyConvNet

from facebrain.activations import extract
from facebrain.errors import DiskFullError
from facebrain.stimuli import ArraySource, StimulusSet


@pytest.fixture
def stim():
    rng = np.random.default_rng(7)
    n = 13
    table = pd.DataFrame({"identity": [f"p{i % 3}" for i in range(n)], "expression": "happy",
                          "view": "S", "path": ""}, index=pd.Index([f"s{i:02d}" for i in range(n)],
                                                                   name="stimulus_id"))
    images = rng.integers(0, 256, size=(n, 13, 11, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images))


def _fill_disk_after(monkeypatch, n_writes: int):
    """Make zarr's local store raise ENOSPC from its ``n_writes``-th file write on."""
    import zarr.storage._local as local

    real = local._put
    count = {"n": 0}

    def put(path, value, *args, **kwargs):  # zarr < 3.1 also passes start=
        count["n"] += 1
        if count["n"] >= n_writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, value, *args, **kwargs)

    monkeypatch.setattr(local, "_put", put)
    return count


def test_full_disk_during_creation_then_rerun_continues(stim, tmp_path, monkeypatch):
    ref = extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False)
    path = tmp_path / "acts.zarr"
    _fill_disk_after(monkeypatch, 4)  # a few metadata files in: the skeleton is half written
    with pytest.raises(DiskFullError, match="no space left on device while creating") as info:
        extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False,
                store=path)
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert not path.exists() and not list(tmp_path.glob(".*creating*"))
    monkeypatch.undo()  # space freed
    out = extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False,
                  store=path)
    xr.testing.assert_identical(out.compute(), ref)


def test_store_half_created_by_an_older_version_is_recreated(stim, tmp_path):
    # the old in-place creation, cut short: fingerprint and coordinates, no markers, one layer
    ref = extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False)
    path = tmp_path / "acts.zarr"
    extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False, store=path)
    for name in ("_batches_done", "pool"):
        shutil.rmtree(path / name)
    for meta in path.glob(".zmetadata"):
        meta.unlink()
    with pytest.warns(RuntimeWarning, match="only partly created"):
        out = extract(TinyConvNet(), stim, ["conv1", "pool"], batch_size=5, progress=False,
                      store=path)  # was: KeyError: '_batches_done'
    xr.testing.assert_identical(out.compute(), ref)
