"""What ``fit_classifier`` and ``fit_siamese`` share: argument checks, set-up, docs, config.

Both fits take the same run options (``epochs`` ... ``callback``; only the
defaults of ``epochs`` and ``lr`` differ, and stay in each signature). Their
documentation is :data:`RUN_PARAMETERS_DOC`, put into each docstring by
:func:`fill_doc`; their checks and set-up are :func:`check_run_args` and
:func:`prepare`; the settings both record (and check on resume) are
:func:`common_config`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from ._augment import LightAugment, describe_augment
from ._data import ImagePipeline

__all__ = [
    "RUN_PARAMETERS_DOC", "check_run_args", "common_config", "fill_doc", "light_augment",
    "prepare",
]

#: numpydoc entries of the run options shared by the fits (indented for a docstring).
RUN_PARAMETERS_DOC = """\
    epochs, batch_size, lr : int, int, float
        Length of the run, images (pairs) per step, peak learning rate.
    optimizer : {"adamw", "sgd"}
        AdamW (weight decay 0.05) or SGD with Nesterov momentum 0.9 (5e-4);
        biases and norm parameters are not decayed. ``weight_decay`` overrides.
    schedule : {"onecycle", "cosine", "step", None}
        One-cycle (25% warm-up) and cosine step every batch; ``"step"`` divides
        the rate by 10 after 1/2 and 3/4 of the epochs; None keeps it constant.
    augment : bool, dict or callable
        True: :class:`LightAugment` (shift up to 4 px, flip, brightness +-20%);
        False: none; a dict: :class:`LightAugment`'s parameters (``{"max_shift":
        0}`` keeps flips and brightness, no shifts); or ``augment(batch,
        generator) -> batch`` on float pixel batches (N, C, H, W) in 0..255
        using only ``generator`` for randomness.
    out_dir : path, optional
        Folder for ``last.pt`` and ``best.pt`` (written atomically after every
        epoch) and ``metrics.jsonl``.
    seed : int
        Seeds batch order, augmentation, the validation split and any torch
        randomness inside the model (dropout); the caller's global torch RNG is
        left untouched.
    device : str or torch.device
        Where to train.
    resume : bool
        Continue from ``out_dir/last.pt``. The settings must match the
        checkpoint's (the differing keys are named otherwise); with
        ``schedule=None`` only, ``epochs`` may grow. On CPU the final weights
        are bitwise those of an uninterrupted run.
    num_workers : int
        DataLoader processes for decoding images.
    cache : {"auto", True, False}
        Keep the decoded (resized, uint8) images in memory for the whole fit;
        ``"auto"`` does so when they need at most 2 GiB. False decodes every
        image again every epoch.
    progress : bool
        Show a tqdm bar with running loss and accuracy.
    callback : callable, optional
        Called with each epoch's metrics dict after its checkpoint is written."""


def fill_doc(fn: Callable) -> Callable:
    """Put :data:`RUN_PARAMETERS_DOC` where ``fn``'s docstring says ``{run_parameters}``."""
    if fn.__doc__:
        fn.__doc__ = fn.__doc__.replace("    {run_parameters}", RUN_PARAMETERS_DOC)
    return fn


def check_run_args(epochs, batch_size, stimuli) -> None:
    """Raise ValueError for a non-positive ``epochs`` / ``batch_size`` or an empty set."""
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs!r}, {batch_size!r}")
    if len(stimuli) == 0:
        raise ValueError(
            "the stimulus set is empty: there is nothing to train on. Check the loader's "
            "path and filters (and its .rejected table)."
        )


def resolve_augment(augment, pipeline: ImagePipeline) -> Callable | None:
    """``True`` -> :class:`LightAugment` (spatial only for unstructured preprocessing).

    A dict gives :class:`LightAugment`'s parameters; brightness needs raw
    pixels (0..255), so a network whose preprocessing is a custom callable
    gets an error for ``brightness > 0`` rather than a silently wrong clip.
    """
    if augment is True:
        return LightAugment() if pipeline.structured else LightAugment(brightness=0.0)
    if augment is False or augment is None:
        return None
    if isinstance(augment, Mapping):
        try:
            augment = light_augment(augment)
        except ValueError as err:
            raise ValueError(f"augment={dict(augment)!r}: {err}") from None
        if augment.brightness > 0 and not pipeline.structured:
            raise ValueError(
                f"augment={dict(augment.to_dict())!r}: brightness scales raw pixel values "
                "(0..255), but this model's preprocess is a custom callable whose output is "
                "not raw pixels. Give brightness 0 (flips and shifts still apply)."
            )
        return augment
    if not callable(augment):
        raise TypeError(f"augment must be True, False or a callable; got {augment!r}")
    return augment


def light_augment(params: Mapping) -> LightAugment:
    """:class:`LightAugment` from a dict of its parameters; unknown keys are named."""
    import dataclasses

    known = [f.name for f in dataclasses.fields(LightAugment)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; LightAugment takes {known}")
    return LightAugment(**params)


def prepare(model: nn.Module, augment, device) -> tuple[ImagePipeline, Callable | None]:
    """The model's image pipeline and the resolved augmentation; ``model`` moves to ``device``."""
    pipeline = ImagePipeline(getattr(model, "preprocess", None))
    augment = resolve_augment(augment, pipeline)
    model.to(device)
    return pipeline, augment


def common_config(model: nn.Module, pipeline: ImagePipeline, augment, *, epochs, batch_size,
                  lr, optimizer, schedule, weight_decay, val_fraction, seed) -> dict:
    """The settings both fits record in checkpoints and compare on resume."""
    from .._utils import stable_hash

    return {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "optimizer": optimizer,
        "schedule": schedule,
        "weight_decay": weight_decay,
        "augment": describe_augment(augment),
        "val_fraction": float(val_fraction),
        "seed": int(seed),
        "model": {"name": getattr(model, "name", type(model).__name__),
                  "parameters": stable_hash({k: list(v.shape)
                                             for k, v in model.state_dict().items()})},
        "preprocess": (pipeline.preprocess.to_dict() if pipeline.structured
                       else repr(pipeline.preprocess)),
    }
