"""Exceptions and warnings raised by facebrain (the public home of every error type).

Every error names the offending file, key or value and says how to fix it. Each
subclasses :class:`FacebrainError` *and* the builtin a user would expect
(``ValueError``, ``TypeError``, ``KeyError``, ``FileNotFoundError``...), so both
``except facebrain.errors.FacebrainError`` and ``except ValueError`` keep working,
the way :mod:`sklearn.exceptions` pairs ``NotFittedError`` with ``ValueError``.

Examples
--------
>>> from facebrain.errors import FacebrainError, ParameterError
>>> issubclass(ParameterError, FacebrainError) and issubclass(ParameterError, ValueError)
True
"""

from __future__ import annotations

import errno

__all__ = [
    "AlphaGridWarning",
    "BootstrapError",
    "ConfigError",
    "DataFormatError",
    "DiskFullError",
    "FacebrainError",
    "FacebrainWarning",
    "IndexOutOfRangeError",
    "IsAFolderError",
    "LeakageError",
    "MissingDependencyError",
    "MissingFileError",
    "MissingKeyError",
    "ModelImportError",
    "NonFiniteActivationError",
    "NotAFolderError",
    "NotFittedError",
    "OutputExistsError",
    "ParameterAttributeError",
    "ParameterError",
    "ParameterTypeError",
    "RunLockedError",
    "ShapeError",
    "StageError",
    "StimulusMismatchError",
    "StoreMismatchError",
    "TimingError",
    "TrainingError",
    "WeightsError",
]


class FacebrainError(Exception):
    """Base class of facebrain's own errors."""


# -- bad arguments ------------------------------------------------------------------------


class ParameterError(FacebrainError, ValueError):
    """An argument has a value facebrain cannot use (unknown name, out of range, empty...).

    The message names the parameter, the value given and what is allowed.
    """


class ParameterTypeError(FacebrainError, TypeError):
    """An argument has the wrong type (a list where a StimulusSet is needed, ...)."""


class ParameterAttributeError(ParameterTypeError, AttributeError):
    """An argument lacks an attribute facebrain needs (almost always: the wrong type of object).

    Also a :class:`TypeError`; raised mostly by the public-boundary safety net when a
    library deep inside reports ``'list' object has no attribute 'dims'``.
    """


class IndexOutOfRangeError(FacebrainError, IndexError):
    """A position is outside the object it indexes (a stimulus row, a fold, a layer...)."""


class ShapeError(FacebrainError, ValueError):
    """Arrays or labelled objects have dimensions or shapes that do not fit together."""


class MissingKeyError(FacebrainError, KeyError):
    """A named layer, coordinate, ROI, model or variable does not exist.

    Unlike a plain ``KeyError`` the message is shown as written, not quoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingFileError(FacebrainError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class NotAFolderError(FacebrainError, NotADirectoryError):
    """A path that must be a folder (a dataset root, an output folder) is a file."""


class IsAFolderError(FacebrainError, IsADirectoryError):
    """A path that must be a file (an image, a table, weights) is a folder."""


class OutputExistsError(FacebrainError, FileExistsError):
    """An output path already exists and overwriting it was not asked for."""


class NotFittedError(FacebrainError, ValueError, AttributeError):
    """An estimator was used before ``fit`` (as :class:`sklearn.exceptions.NotFittedError`)."""


class ConfigError(FacebrainError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or points nowhere."""


# -- bad data -----------------------------------------------------------------------------


class DataFormatError(FacebrainError, ValueError):
    """A file or table does not have the expected format."""


class TimingError(DataFormatError):
    """fMRI timing that cannot be right: a TR that disagrees with the NIfTI header or is
    not in seconds, or events outside a run's acquisition window."""


class StimulusMismatchError(FacebrainError, ValueError):
    """Two labelled objects do not share the same ``stimulus_id`` values."""


class WeightsError(FacebrainError, ValueError):
    """A weight file cannot be loaded into the requested network."""


class StoreMismatchError(FacebrainError, ValueError):
    """An existing activation store was written by a different model / layer list / reduction."""


class NonFiniteActivationError(FacebrainError, ValueError):
    """A layer produced NaN or infinite values."""


class LeakageError(FacebrainError, ValueError):
    """Test stimuli would inform what a cross-validated analysis learns (e.g. a PCA fit)."""


class BootstrapError(FacebrainError, ValueError):
    """Too many bootstrap samples are unusable (NaN) for an interval to mean anything."""


# -- environment and runs -----------------------------------------------------------------


class MissingDependencyError(FacebrainError, ImportError):
    """An optional package (or a file it ships) is needed but not installed."""


class ModelImportError(FacebrainError, ImportError):
    """A user network named ``"module:attr"`` or by entry point cannot be imported."""


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


class StageError(FacebrainError, RuntimeError):
    """A pipeline stage could not run (missing capability, bad input data, full disk...)."""


class TrainingError(FacebrainError, RuntimeError):
    """Training cannot continue (diverged loss, inconsistent checkpoint...)."""


# -- warnings -----------------------------------------------------------------------------


class FacebrainWarning(UserWarning):
    """Base class of facebrain's warnings."""


class AlphaGridWarning(FacebrainWarning):
    """The chosen ridge penalties sit on the edge of the alpha grid for many targets."""


def enospc_in_chain(err: BaseException | None) -> bool:
    """Whether ``err`` or an exception it was raised from is ``OSError(ENOSPC)`` (disk full)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False
