"""Exception types shared across facebrain.

Every error names the offending file, key or value and says how to fix it.
They subclass the builtin exception a user would expect (``ValueError``,
``FileNotFoundError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BootstrapError",
    "DataFormatError",
    "FacebrainError",
    "LeakageError",
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


class LeakageError(FacebrainError, ValueError):
    """Test stimuli would inform what a cross-validated analysis learns (e.g. a PCA fit)."""


class BootstrapError(FacebrainError, ValueError):
    """Too many bootstrap samples are unusable (NaN) for an interval to mean anything."""
