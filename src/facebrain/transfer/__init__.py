"""Frozen-backbone transfer: probes with published CV schemes, heads, disentanglement."""

from .. import activations as _activations  # noqa: F401  (registers the acts.fb accessor)
from ._cv import SCHEMES, Folds, kdef10_folds, kdef_identity_index, make_folds
from ._disentangle import cross_decode, factor_variance, subspace_angles
from ._fit_head import FittedHead, fit_head
from ._heads import HEADS, TorchLinearClassifier, make_pipeline
from ._probe import probe

__all__ = [
    "HEADS",
    "SCHEMES",
    "FittedHead",
    "Folds",
    "TorchLinearClassifier",
    "cross_decode",
    "factor_variance",
    "fit_head",
    "kdef10_folds",
    "kdef_identity_index",
    "make_folds",
    "make_pipeline",
    "probe",
    "subspace_angles",
]
