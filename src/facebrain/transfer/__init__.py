"""Frozen-backbone transfer: probes with published CV schemes, heads, disentanglement."""

from .._lazy import attach
from ._cv import SCHEMES, Folds, kdef10_folds, make_folds
from ._disentangle import cross_decode, factor_variance, subspace_angles
from ._fit_head import FittedHead, fit_head
from ._heads import HEADS, TorchLinearClassifier, make_probe_pipeline
from ._probe import probe

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    "kdef_identity_index": ("._cv", "kdef_identity_index",
                            _INTERNAL.format("facebrain.transfer._cv")),
    "make_pipeline": ("._heads", "make_probe_pipeline",
                      ("use facebrain.transfer.make_probe_pipeline (the same function, renamed so "
                       "that it does not shadow sklearn.pipeline.make_pipeline)")),
})[0]

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
    "make_folds",
    "make_probe_pipeline",
    "probe",
    "subspace_angles",
]
