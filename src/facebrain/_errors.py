"""Exception types shared across facebrain.

Every error names the offending file, key or value and says how to fix it.
They subclass the builtin exception a user would expect (``ValueError``,
``FileNotFoundError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "DataFormatError",
    "FacebrainError",
    "MissingDependencyError",
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
