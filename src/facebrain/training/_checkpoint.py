"""Training checkpoints: atomic writes, RNG state, config checks, ``metrics.jsonl``.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no code runs on load)::

    {"model": state_dict, "optimizer": ..., "scheduler": ... or None,
     "epoch": int (epochs completed), "rng": {...}, "classes": [str] or None,
     "config": {...}, "history": [per-epoch metrics], "best": {...},
     "facebrain_version": str, "format": "facebrain-checkpoint-1"}

``facebrain.models.load_weights`` accepts it as a weight file.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._errors import DataFormatError
from .._utils import atomic_path

__all__ = [
    "capture_rng",
    "config_differences",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
    "write_metrics",
]

FORMAT = "facebrain-checkpoint-1"


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict:
    """Global torch/numpy/python RNG states plus named generators, as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": _py_state_to_plain(random.getstate()),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    return state


def restore_rng(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    """Undo :func:`capture_rng`: set the global states and the named generators."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached"]))
    random.setstate(_py_state_from_plain(state["python"]))
    for k, g in (generators or {}).items():
        if k in state.get("generators", {}):
            g.set_state(state["generators"][k])


def _py_state_to_plain(st):
    version, internal, gauss = st
    return {"version": int(version), "internal": list(internal), "gauss": gauss}


def _py_state_from_plain(d):
    return (d["version"], tuple(d["internal"]), d["gauss"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    state = {"format": FORMAT, **state}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are shared in a lab
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise DataFormatError(
            f"{path}: not a readable facebrain checkpoint ({type(err).__name__}: {err}). "
            "It may be truncated; delete it (and resume from best.pt or start over)."
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataFormatError(
            f"{path}: not a facebrain training checkpoint (no format={FORMAT!r} key). "
            "Load plain weights with facebrain.models.load_weights instead."
        )
    return state


def config_differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> dict:
    """``{key: (saved, current)}`` for every config key whose value differs."""
    keys = sorted(set(saved) | set(current))
    out = {}
    for k in keys:
        if k in ignore:
            continue
        a, b = saved.get(k, "<absent>"), current.get(k, "<absent>")
        if _canon(a) != _canon(b):
            out[k] = (a, b)
    return out


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def write_metrics(out_dir: str | os.PathLike, history: list[dict]) -> Path:
    """Rewrite ``metrics.jsonl`` (one JSON line per epoch) atomically."""
    path = Path(out_dir) / "metrics.jsonl"
    with atomic_path(path, suffix=".jsonl") as tmp, open(tmp, "w") as f:
        for row in history:
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in row.items()}
            f.write(json.dumps(clean, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    return path
