"""Zarr store for activations, written batch by batch and resumable.

Layout (zarr format 2, readable by any zarr library):

- one array per layer, shape ``(n_stimuli, n_units)``, chunked ``(batch_size, k)``
  so a batch owns whole chunks (workers never write the same chunk);
- stimulus and unit coordinates written by xarray when the store is created;
- ``attrs["facebrain_fingerprint"]``: what produced the store (model, weights
  hash, layers, reducers, batch size, stimulus ids). A store is only resumed
  when the fingerprint matches;
- ``_batches_done`` (dim ``_batch``, one uint8 per batch, chunked by 1 so each
  marker is its own file): set to 1 after all of a batch's layers are written,
  so an interrupted run recomputes exactly the batches without a marker. It is
  dropped when the store is opened as Activations.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .._utils import STORE_FINGERPRINT, in_written_order
from ..errors import DiskFullError, StoreMismatchError

__all__ = ["ActivationStore", "StoreMismatchError"]

MARKER_VAR = "_batches_done"
FINGERPRINT_KEY = STORE_FINGERPRINT



def _remove_until_gone(path: Path, attempts: int = 100, pause: float = 0.02) -> None:
    """Remove ``path`` and keep removing it until it stays gone.

    When one of zarr's concurrent metadata writes fails, ``to_zarr`` raises at once while
    its sibling writes still run on zarr's event loop and may re-create folders under
    ``path`` after a single ``rmtree``. Retry until two checks a pause apart find nothing.
    """
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        time.sleep(pause)
        if not path.exists():
            time.sleep(pause)
            if not path.exists():
                return


class ActivationStore:
    """Handle on one on-disk activation store (a local directory path)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------ state
    def exists(self) -> bool:
        return self.path.exists()

    def read_fingerprint(self) -> dict | None:
        import zarr

        try:
            group = zarr.open_group(str(self.path), mode="r", zarr_format=2)
        except (ValueError, OSError, KeyError):  # zarr errors subclass ValueError
            return None
        text = group.attrs.get(FINGERPRINT_KEY)
        return json.loads(text) if isinstance(text, str) else None

    def done_batches(self) -> set[int]:
        import zarr

        group = zarr.open_group(str(self.path), mode="r", zarr_format=2)
        if MARKER_VAR not in group:
            return set()
        return set(np.flatnonzero(group[MARKER_VAR][:] == 1).tolist())

    # --------------------------------------------------------- creation
    def check_resumable(self, fingerprint: dict, stimulus_ids=None) -> None:
        """Raise :class:`StoreMismatchError` naming the fields that differ."""
        old = self.read_fingerprint()
        if old is None:
            raise StoreMismatchError(
                f"{self.path} exists but is not a facebrain activation store (no "
                f"'{FINGERPRINT_KEY}' attribute); refusing to write into it. Pass a new "
                "store path, or delete the directory yourself."
            )
        diff = [k for k in sorted(set(old) | set(fingerprint)) if old.get(k) != fingerprint.get(k)]
        if "stimulus_ids" in diff and stimulus_ids is not None:
            import zarr

            from .._utils import check_same_stimuli

            group = zarr.open_group(str(self.path), mode="r", zarr_format=2)
            stored = np.asarray(group["stimulus"][:]).astype(str).tolist()
            try:
                check_same_stimuli(stored, stimulus_ids, left_name="the store",
                                   right_name="this StimulusSet")
            except ValueError as err:
                raise StoreMismatchError(
                    f"refusing to resume {self.path}: {err} Pass a new store path, or "
                    "resume=False to overwrite it."
                ) from None
        if diff:
            details = "; ".join(
                f"{k}: store has {_short(old.get(k))}, this run has {_short(fingerprint.get(k))}"
                for k in diff
            )
            raise StoreMismatchError(
                f"refusing to resume {self.path}: it was written by a different run ({details}). "
                "Pass a new store path, or resume=False to overwrite it."
            )

    def remove(self) -> None:
        """Delete an existing facebrain store (refuses anything else)."""
        if not self.path.exists():
            return
        if self.read_fingerprint() is None:
            raise StoreMismatchError(
                f"{self.path} exists but is not a facebrain activation store; refusing to "
                "overwrite it with resume=False. Choose another store path."
            )
        shutil.rmtree(self.path)

    def is_complete(self) -> bool:
        """True when the store's skeleton (coordinates, every layer, markers) was fully created.

        A store whose creation was cut short (full disk, kill) by an older version that
        wrote in place has the fingerprint but lacks arrays; it holds no data yet.
        """
        import zarr

        fingerprint = self.read_fingerprint()
        if fingerprint is None:
            return False
        try:
            group = zarr.open_group(str(self.path), mode="r", zarr_format=2)
            names = set(group.array_keys())
        except (ValueError, OSError, KeyError):
            return False
        needed = {MARKER_VAR, "stimulus", *fingerprint.get("layers", [])}
        return needed <= names

    def create(self, template, fingerprint: dict, chunks: dict[str, tuple[int, int]],
               n_batches: int) -> None:
        """Write metadata and coordinates of ``template`` (a lazy Dataset); no data.

        The skeleton is written into a hidden sibling folder and renamed onto ``path``
        when complete, so a full disk or a kill never leaves a half-created store.

        Raises
        ------
        DiskFullError
            The device filled up while creating the store (nothing is left behind).
        """
        import dask.array as da

        encoding = {name: {"chunks": chunks[name]} for name in template.data_vars}
        template = template.copy()
        template[MARKER_VAR] = ("_batch", da.zeros(n_batches, dtype=np.uint8, chunks=1))
        encoding[MARKER_VAR] = {"chunks": (1,), "_FillValue": 0}
        template.attrs[FINGERPRINT_KEY] = json.dumps(fingerprint, sort_keys=True)
        for old in self.path.parent.glob(f".{self.path.name}.creating-*"):
            shutil.rmtree(old, ignore_errors=True)  # left by a killed creation
        tmp = self.path.with_name(f".{self.path.name}.creating-{os.getpid()}")
        try:
            template.to_zarr(
                str(tmp), mode="w", compute=False, zarr_format=2, consolidated=False,
                encoding=encoding,
            )
            os.replace(tmp, self.path)
        except OSError as err:
            _remove_until_gone(tmp)
            if err.errno == errno.ENOSPC:
                raise DiskFullError(
                    f"no space left on device while creating the activation store {self.path};"
                    " nothing was left half-created. Free some space and run again.",
                    self.path) from err
            raise
        except BaseException:
            _remove_until_gone(tmp)
            raise

    def write_batch(self, k: int, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Write every layer of batch ``k`` and then its completion marker."""
        import zarr

        group = zarr.open_group(str(self.path), mode="r+", zarr_format=2)
        for layer, values in arrays.items():
            group[layer][start:start + len(values)] = values
        group[MARKER_VAR][k] = 1

    def finalize(self) -> None:
        import zarr

        zarr.consolidate_metadata(str(self.path), zarr_format=2)

    def open(self):
        import xarray as xr

        ds = in_written_order(xr.open_zarr(str(self.path), consolidated=None,
                                           drop_variables=[MARKER_VAR]))
        ds.attrs.pop(FINGERPRINT_KEY, None)
        return ds


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
