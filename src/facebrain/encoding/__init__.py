"""Voxelwise encoding models: per-voxel ridge (scikit-learn compatible), identity-grouped
evaluation, prediction for new stimuli, variance partitioning.

``evaluate`` and ``variance_partition`` accept ``client=`` (a ``dask.distributed.Client``,
e.g. ``Client("tcp://scheduler-host:8786")`` for an existing cluster) and run each
(layer or feature union) x voxel batch (``batch_size``) as a task; results equal the
local run with the same ``batch_size``.
"""

from typing import TYPE_CHECKING

from .._lazy import attach

# public name -> defining module; imported on first access (import time stays small)
__getattr__, __dir__, __all__ = attach(__name__, {
    ".._selection": ["network_contrasts", "select_candidates"],
    "._banded": ["banded_ridge_cv"],
    "._evaluate": ["FittedEncoder", "evaluate", "fit"],
    "._partition": ["variance_partition"],
    "._ridge_encoder": ["RidgeEncoder"],
    "._solvers": ["RIDGE_SOLVERS"],
}, deprecated={
    "AlphaGridWarning": ("..errors", "AlphaGridWarning", "use facebrain.errors.AlphaGridWarning"),
})

if TYPE_CHECKING:  # eager imports for static analysis
    from .._selection import network_contrasts, select_candidates
    from ._banded import banded_ridge_cv
    from ._evaluate import FittedEncoder, evaluate, fit
    from ._partition import variance_partition
    from ._ridge_encoder import RidgeEncoder
    from ._solvers import RIDGE_SOLVERS
