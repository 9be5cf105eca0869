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

import errno
import json
import math
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._boundary import public
from .._utils import atomic_path
from ..errors import DataFormatError, DiskFullError, enospc_in_chain

__all__ = [
    "capture_rng",
    "config_differences",
    "load_checkpoint",
    "reconcile_best",
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
    """Write ``state`` to ``path`` atomically (temp file in the same folder, then rename).

    Raises
    ------
    DiskFullError
        When the device is full (``errno.ENOSPC``); names the path. The previous file at
        ``path`` is untouched and no temp file is left behind.
    """
    path = Path(path)
    state = {"format": FORMAT, **state}
    try:
        with atomic_path(path, suffix=".pt") as tmp:
            # a Python file object, so that a failed write surfaces as the OSError it is
            # (torch's own writer reports ENOSPC as "enforce fail ... unexpected pos")
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are shared in a lab
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on device while writing the checkpoint {path}; the previous "
                f"{path.name} (if any) is intact. Free some space and resume.", path) from err
        raise
    except RuntimeError as err:  # torch's zip writer replaces the OSError ("unexpected pos")
        if enospc_in_chain(err) or _disk_full(path.parent):
            raise DiskFullError(
                f"no space left on device while writing the checkpoint {path} ({err}); the "
                f"previous {path.name} (if any) is intact. Free some space and resume.",
                path) from err
        raise
    return path




def _disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def reconcile_best(out_dir: str | os.PathLike) -> Path | None:
    """Make ``best.pt`` agree with ``last.pt``; return the verified best checkpoint path.

    Every epoch writes ``last.pt`` (which records the best epoch so far) and then, if
    the epoch improved, ``best.pt``. A kill between the two writes leaves ``best.pt``
    from an earlier epoch while ``last.pt`` names the new one; its weights are then
    exactly ``last.pt``'s, so ``best.pt`` is rewritten from it. Any other disagreement
    (a ``best.pt`` from another run) raises.

    Returns None when ``out_dir`` holds no ``last.pt``.

    Raises
    ------
    DataFormatError
        ``best.pt`` holds an epoch that ``last.pt`` does not name as the best, and
        cannot be repaired from ``last.pt``.
    """
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if not last_path.is_file():
        return best_path if best_path.is_file() else None
    last = load_checkpoint(last_path)
    wanted = int((last.get("best") or {}).get("epoch", 0))
    if wanted == 0:  # no epoch finished with a score yet
        return None
    have = _epoch_of(best_path)
    if have == wanted:
        return best_path
    if wanted == int(last["epoch"]):
        shutil.copyfile(last_path, out_dir / ".best.pt.repair")
        os.replace(out_dir / ".best.pt.repair", best_path)
        return best_path
    raise DataFormatError(
        f"{best_path}: holds epoch {have}, but {last_path} (epoch {last['epoch']}) records "
        f"epoch {wanted} as the best. The two files are from different runs; delete "
        f"{out_dir} and train again, or load last.pt."
    )


def _epoch_of(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        return int(load_checkpoint(path)["epoch"])
    except (DataFormatError, KeyError, TypeError, ValueError):
        return None


@public
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
    try:
        with atomic_path(path, suffix=".jsonl") as tmp, open(tmp, "w") as f:
            for row in history:
                clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                         for k, v in row.items()}
                f.write(json.dumps(clean, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(f"no space left on device while writing {path}; free some "
                                "space and resume.", path) from err
        raise
    return path
