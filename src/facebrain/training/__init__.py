"""Training: fit_classifier, fit_siamese, checkpoints and evaluation (LFW protocol)."""

from ._augment import LightAugment
from ._checkpoint import load_checkpoint
from ._classifier import fit_classifier, split_train_val
from ._evaluate import (
    AccuracyResult,
    VerificationResult,
    best_threshold,
    evaluate_accuracy,
    pair_scores,
    verification_accuracy,
)
from ._loop import FitResult, TrainingError
from ._pairs import sample_pairs
from ._siamese import fit_siamese

__all__ = [
    "AccuracyResult",
    "FitResult",
    "LightAugment",
    "TrainingError",
    "VerificationResult",
    "best_threshold",
    "evaluate_accuracy",
    "fit_classifier",
    "fit_siamese",
    "load_checkpoint",
    "pair_scores",
    "sample_pairs",
    "split_train_val",
    "verification_accuracy",
]
