"""facebrain's not-fitted error that scikit-learn recognises too.

Imported by :mod:`facebrain._boundary` only once scikit-learn has raised its own
``NotFittedError`` (so ``import facebrain`` never pays for importing scikit-learn).
scikit-learn's estimator checks require ``predict`` before ``fit`` to raise *its*
``NotFittedError``; this type is that and :class:`facebrain.errors.NotFittedError` at once.

Examples
--------
>>> from sklearn.exceptions import NotFittedError as SklearnNotFitted
>>> from facebrain.errors import FacebrainError
>>> issubclass(EstimatorNotFittedError, (SklearnNotFitted, FacebrainError, AttributeError))
True
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from .errors import NotFittedError

__all__ = ["EstimatorNotFittedError"]


class EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
    """A facebrain estimator was used before ``fit`` (also scikit-learn's NotFittedError)."""
