"""Training: fit_classifier, fit_siamese, checkpoints and evaluation (LFW protocol)."""

from .._lazy import attach
from ._augment import LightAugment
from ._checkpoint import load_checkpoint
from ._classifier import fit_classifier
from ._evaluate import (
    AccuracyResult,
    VerificationResult,
    evaluate_accuracy,
    pair_scores,
    verification_accuracy,
)
from ._loop import FitResult
from ._pairs import sample_pairs
from ._siamese import fit_siamese

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    "TrainingError": ("..errors", "TrainingError", "use facebrain.errors.TrainingError"),
    "best_threshold": ("._evaluate", "best_threshold",
                       _INTERNAL.format("facebrain.training._evaluate")),
    "split_train_val": ("._classifier", "split_train_val",
                        _INTERNAL.format("facebrain.training._classifier")),
})[0]

__all__ = [
    "AccuracyResult",
    "FitResult",
    "LightAugment",
    "VerificationResult",
    "evaluate_accuracy",
    "fit_classifier",
    "fit_siamese",
    "load_checkpoint",
    "pair_scores",
    "sample_pairs",
    "verification_accuracy",
]
