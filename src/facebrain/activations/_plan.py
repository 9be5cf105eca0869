"""What ``extract`` checks and works out before any batch runs.

The input contract (FaceNet, StimulusSet, batch size), the output shape of
each layer (one batch-1 forward, cached per model), which stimuli a ``pca:N``
reducer is fitted on, the batches, and the model's memory format.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .._utils import stable_hash
from ..errors import MissingKeyError, ParameterError, ParameterTypeError

__all__ = ["Plan", "batch_bounds", "check_inputs", "layer_shapes", "memory_format",
           "pca_fit_mask", "probe"]

#: model -> {(layers, input shape, dtype, device, state key): layer shapes}
_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Plan:
    """What one ``extract`` call computes, worked out before any batch runs.

    Attributes
    ----------
    layers : list of str
        The requested layers, checked against the model.
    specs : dict
        ``{layer: reduce spec or None}``.
    device : torch.device
        Where the model runs.
    n, batch_size, seed : int
        Number of stimuli, images per batch, seed of ``srp:N``.
    shapes : dict
        ``{layer: output shape of one stimulus}``.
    reducers : dict
        ``{layer: Reducer}``.
    fit_mask : ndarray of bool or None
        Stimuli a ``pca:N`` reducer is fitted on (None without PCA).
    fit_desc : str
        Description of ``fit_mask`` (the ``pca_fit_on`` attr).
    batches : list of (k, start, stop)
        Every batch of the run.
    fingerprint : dict or None
        What a store must have been written by to be resumed (None without store).
    run : dict
        Keywords of :func:`~._batches.run_batches`: ``layers``, ``device``,
        ``num_workers``, ``channels_last`` and (once built) ``stages``.
    """

    layers: list[str]
    specs: dict
    device: object
    n: int
    batch_size: int
    seed: int
    shapes: dict
    reducers: dict
    fit_mask: np.ndarray | None
    fit_desc: str
    batches: list
    fingerprint: dict | None
    run: dict

    @property
    def channels_last(self) -> bool:
        """Whether inputs (and the model or its staged copy) run channels-last."""
        return self.run["channels_last"]


def check_inputs(model, stimuli, batch_size) -> None:
    """Refuse a model outside the FaceNet contract, a non-StimulusSet, an empty set
    or a batch size that is not a positive integer."""
    for attr in ("forward_layers", "check_layers", "preprocess"):
        if not hasattr(model, attr):
            raise ParameterTypeError(
                f"model must follow the FaceNet contract (facebrain.models); "
                f"{type(model).__name__} has no {attr!r}. Pass a facebrain.models.FaceNet "
                "(facebrain.models.create(name) or a FaceNet subclass)."
            )
    if model.preprocess is None:
        raise ParameterError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no preprocess; set "
            "model.preprocess to a facebrain.models.Preprocess describing its input"
        )
    if not (hasattr(stimuli, "table") and hasattr(stimuli, "to_torch")):
        raise ParameterTypeError(
            f"stimuli must be a StimulusSet; got {type(stimuli).__name__}. Build one with "
            "facebrain.stimuli (StimulusSet, load_folder, synthetic_faces...).")
    if len(stimuli) == 0:
        raise ParameterError("stimuli is empty; nothing to extract. Pass a StimulusSet with at "
                             "least one image (check the subset or loader that built it).")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer; got {batch_size!r}. "
                             "Pass e.g. batch_size=64.")


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int, int]]:
    """``[(k, start, stop)]``: batch ``k`` holds stimuli ``start:stop`` (the last may be short)."""
    return [(k, s, min(s + batch_size, n)) for k, s in enumerate(range(0, n, batch_size))]


def pca_fit_mask(stimuli, specs, pca_fit_on):
    """Which stimuli the ``pca:N`` reducers are fitted on (None without PCA) and a description."""
    has_pca = any(s is not None and s.startswith("pca:") for s in specs.values())
    if not has_pca:
        if pca_fit_on is not None:
            raise ParameterError(
                f"pca_fit_on={pca_fit_on!r} was given but no layer is reduced with 'pca:N' "
                f"(reduce: {specs}); drop pca_fit_on or use reduce='pca:N'.")
        return None, ""
    n = len(stimuli)
    if pca_fit_on is None:
        return np.ones(n, dtype=bool), "all stimuli"
    if isinstance(pca_fit_on, str):
        fit_ids = set(map(str, stimuli.subset(pca_fit_on).ids))
        desc = f"query: {pca_fit_on}"
    else:
        wanted = [str(i) for i in pca_fit_on]
        have = set(map(str, stimuli.ids))
        missing = [i for i in wanted if i not in have]
        if missing:
            raise MissingKeyError(f"pca_fit_on names {len(missing)} stimulus ids that are not in the "
                           f"StimulusSet, e.g. {missing[:5]}; give ids of these stimuli.")
        fit_ids = set(wanted)
        desc = f"{len(fit_ids)} stimulus ids (sha256 {stable_hash(sorted(fit_ids))})"
    mask = np.array([str(i) in fit_ids for i in stimuli.ids], dtype=bool)
    if not mask.any():
        raise ParameterError(f"pca_fit_on={pca_fit_on!r} selects no stimulus; the PCA needs "
                             "some. Give a query or ids that match stimuli of this set.")
    return mask, desc


def memory_format(model):
    """``torch.channels_last`` if the model's 4-D weights are stored so, else contiguous."""
    import torch

    for p in model.parameters():
        if p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) \
                and not p.is_contiguous():
            return torch.channels_last
    return torch.contiguous_format


def probe(model, stimuli, device):
    """The first stimulus, preprocessed, as a batch of one on ``device``."""
    return model.preprocess(stimuli.load(0))[None].to(device)


def layer_shapes(model, stimuli, layers, device) -> dict[str, tuple[int, ...]]:
    """Output shape of each layer for the first stimulus; cached per model, layers,
    input shape and device while the model's structure (its repr, tensor names,
    shapes and dtypes) is unchanged (a batch-1 forward of a large network takes ~0.5 s)."""
    import torch

    x = probe(model, stimuli, device)
    structure = (repr(model), tuple((k, tuple(t.shape), str(t.dtype))
                                    for k, t in model.state_dict().items()))
    key = (tuple(layers), tuple(x.shape), str(x.dtype), str(device), structure)
    cache = _SHAPES.setdefault(model, {})
    if key not in cache:
        with torch.inference_mode():
            outs = model.forward_layers(x, layers, stop_early=True)
        cache.clear()  # one entry per model: the last run
        cache[key] = {ly: tuple(int(s) for s in outs[ly].shape[1:]) for ly in layers}
    return dict(cache[key])
