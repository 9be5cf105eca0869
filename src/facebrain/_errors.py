"""Exception types shared across facebrain.

Every error names the offending file, key or value and says how to fix it.
They subclass the builtin exception a user would expect (``ValueError``,
``FileNotFoundError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import errno

__all__ = [
    "BootstrapError",
    "DataFormatError",
    "DiskFullError",
    "FacebrainError",
    "LeakageError",
    "MissingDependencyError",
    "RunLockedError",
    "StimulusMismatchError",
    "TimingError",
    "WeightsError",
]


class FacebrainError(Exception):
    """Base class of facebrain's own errors."""


class DataFormatError(FacebrainError, ValueError):
    """A file or table does not have the expected format."""


class MissingDependencyError(FacebrainError, ImportError):
    """An optional package (or a file it ships) is needed but not installed."""


class StimulusMismatchError(FacebrainError, ValueError):
    """Two labelled objects do not share the same ``stimulus_id`` values."""


class WeightsError(FacebrainError, ValueError):
    """A weight file cannot be loaded into the requested network."""


class TimingError(DataFormatError):
    """fMRI timing that cannot be right: a TR that disagrees with the NIfTI header or is
    not in seconds, or events outside a run's acquisition window."""


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


class LeakageError(FacebrainError, ValueError):
    """Test stimuli would inform what a cross-validated analysis learns (e.g. a PCA fit)."""


class BootstrapError(FacebrainError, ValueError):
    """Too many bootstrap samples are unusable (NaN) for an interval to mean anything."""


def enospc_in_chain(err: BaseException | None) -> bool:
    """Whether ``err`` or an exception it was raised from is ``OSError(ENOSPC)`` (disk full)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False
