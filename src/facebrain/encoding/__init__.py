"""Voxelwise encoding models: per-voxel ridge (scikit-learn compatible), identity-grouped
evaluation, prediction for new stimuli, variance partitioning.

``evaluate`` and ``variance_partition`` accept ``client=`` (a ``dask.distributed.Client``,
e.g. ``Client("tcp://scheduler-host:8786")`` for an existing cluster) and run each
(layer or feature union) x voxel batch (``batch_size``) as a task; results equal the
local run with the same ``batch_size``.
"""

from .._selection import network_contrasts, select_candidates
from ._banded import banded_ridge_cv
from ._evaluate import FittedEncoder, evaluate, fit
from ._partition import variance_partition
from ._ridge_encoder import AlphaGridWarning, RidgeEncoder
from ._solvers import RIDGE_SOLVERS

__all__ = ["RIDGE_SOLVERS", "AlphaGridWarning", "FittedEncoder", "RidgeEncoder", "banded_ridge_cv",
           "evaluate", "fit", "network_contrasts", "select_candidates", "variance_partition"]
