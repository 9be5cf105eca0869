"""Exception types shared across facebrain.

Every error names the offending file, key or value and says how to fix it.
They subclass the builtin exception a user would expect (``ValueError``,
``FileNotFoundError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import errno

__all__ = [
    "DataFormatError",
    "DiskFullError",
    "FacebrainError",
    "RunLockedError",
    "StimulusMismatchError",
    "WeightsError",
]


class FacebrainError(Exception):
    """Base class of facebrain's own errors."""


class DataFormatError(FacebrainError, ValueError):
    """A file or table does not have the expected format."""


class StimulusMismatchError(FacebrainError, ValueError):
    """Two labelled objects do not share the same ``stimulus_id`` values."""


class WeightsError(FacebrainError, ValueError):
    """A weight file cannot be loaded into the requested network."""


class DiskFullError(FacebrainError, OSError):
    """A write failed because the device is full (``errno.ENOSPC``); names the path.

    Nothing was left half-written: free space and run again to continue.
    """

    def __init__(self, message: str, path=None) -> None:
        super().__init__(errno.ENOSPC, message, *([str(path)] if path is not None else []))

    def __str__(self) -> str:
        return str(self.strerror)


class RunLockedError(FacebrainError, RuntimeError):
    """Another facebrain run holds the output folder's lock (names its pid, host, start)."""
