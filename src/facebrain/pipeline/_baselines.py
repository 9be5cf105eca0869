"""Baselines shown beside every network: raw pixels and the untrained twin.

Every scientific answer in a run carries two controls (issue 11, item 2):

``pixels``
    the grayscale image at a stated size, treated as ``size * size`` units and
    passed through the same reducer as the network layers (``srp:N`` projects
    them with a seeded sparse random projection, ``pca:N`` fits a PCA, ``avgpool``
    and ``None`` keep every pixel: a grayscale image has a single channel, so
    pooling it would leave only its mean luminance).
``untrained``
    the same architecture as a network, built with a seeded random
    initialisation and no weights. With the seed the train stage used for the
    network (:func:`model_seed`), the twin is exactly the network's own
    starting point before training.

The stages (transfer, RSA, encoding) use these helpers so that a baseline is
computed the same way wherever it appears.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BASELINES",
    "PIXELS",
    "baseline_kind",
    "check_baselines",
    "model_seed",
    "pixel_features",
    "twin_name",
    "untrained_twin",
]

#: baseline names accepted in ``baselines: [...]`` config lists
BASELINES = ("pixels", "untrained")

#: name of the pixel baseline's pseudo-model and of its only layer
PIXELS = "pixels"

_TWIN_PREFIX = "untrained@"


def check_baselines(values, key: str) -> list[str]:
    """Validate a ``baselines`` list from a config (``key`` names it in the error)."""
    from ._typed import ConfigError

    out = []
    for j, v in enumerate(values or []):
        if v not in BASELINES:
            raise ConfigError(
                f"{key}[{j}]: unknown baseline {v!r}; use any of {list(BASELINES)} "
                "(pixels: grayscale pixels through the same reducer; untrained: the same "
                "architecture with a seeded random initialisation)"
            )
        if v not in out:
            out.append(v)
    return out


def twin_name(model: str) -> str:
    """Result name of ``model``'s untrained twin (``"untrained@identity_net"``)."""
    return f"{_TWIN_PREFIX}{model}"


def baseline_kind(name: str) -> str:
    """``"pixels"``, ``"untrained"`` or ``"network"`` for a candidate's result name."""
    if name == PIXELS:
        return "pixels"
    if name.startswith(_TWIN_PREFIX):
        return "untrained"
    return "network"


def model_seed(config, name: str) -> int:
    """The seed the train stage initialised model ``name`` with (``seed`` or run seed + index)."""
    for i, m in enumerate(config.models):
        if m.name == name:
            return int(m.seed) if m.seed is not None else int(config.seed) + i
    from ..errors import MissingKeyError

    raise MissingKeyError(f"no model named {name!r}; models are "
                          f"{[m.name for m in config.models]}")


def untrained_twin(model_config, seed: int, *, num_classes: int | None = None):
    """The same architecture as ``model_config`` with a seeded random initialisation.

    Parameters
    ----------
    model_config : ModelConfig
        The network's config entry (its ``arch``, ``options`` and ``num_classes``
        are used; its ``weights`` and ``train`` are ignored).
    seed : int
        Seeds torch's generator around construction (the global RNG state is
        restored afterwards). Pass :func:`model_seed` to get the network's own
        initialisation.
    num_classes : int, optional
        Head size (default ``model_config.num_classes``; heads are normally not probed).

    Returns
    -------
    FaceNet
        In eval mode, ``name`` set to the architecture.

    Examples
    --------
    >>> from facebrain.pipeline import ModelConfig
    >>> net = untrained_twin(ModelConfig(name="id", arch="small_resnet"), seed=0)
    >>> net.training
    False
    """
    import torch

    from ..models import create

    kw: dict[str, Any] = dict(model_config.options or {})
    n_cls = num_classes if num_classes is not None else model_config.num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = create(model_config.arch, num_classes=n_cls, **kw)
    model.name = model_config.arch
    model.eval()
    return model


def pixel_features(stimuli, size: int = 32, reduce: str | None = None, seed: int = 0):
    """Grayscale pixels of every stimulus as an Activations Dataset (layer ``"pixels"``).

    Parameters
    ----------
    stimuli : StimulusSet
        Images, loaded at ``size`` x ``size`` (RGB averaged to gray, 0..255).
    size : int
        Side of the square image, in pixels (``size * size`` units).
    reduce : {None, "avgpool", "srp:N", "pca:N"}
        The reducer the networks' layers go through (see
        :mod:`facebrain.activations._reduce`); ``None`` and ``"avgpool"`` keep
        every pixel, ``srp:N`` is seeded by ``seed`` and the layer name ``"pixels"``.
    seed : int
        Seed of the random projection.

    Returns
    -------
    Activations : xarray.Dataset
        Variable ``pixels`` of shape (n_stimuli, n_units), dims ``stimulus`` and
        ``pixels_unit``; stimulus coords from the table; attrs ``model="pixels"``.

    Examples
    --------
    >>> from facebrain.stimuli import synthetic_identities
    >>> stim = synthetic_identities(3, 2, seed=0, image_size=32)
    >>> pixel_features(stim, size=16)["pixels"].shape
    (6, 256)
    """
    import xarray as xr

    from ..activations._reduce import Reducer, parse_reduce
    from ._typed import ConfigError

    if not isinstance(size, (int, np.integer)) or size < 2:
        raise ConfigError(f"pixel baseline size must be an integer >= 2; got {size!r}")
    spec = parse_reduce(reduce, [PIXELS])[PIXELS]
    n = len(stimuli)
    gray = np.empty((n, int(size) * int(size)), np.float32)
    for i in range(n):
        img = np.asarray(stimuli.load(i, size=int(size)), np.float32)
        gray[i] = (img.mean(axis=2) if img.ndim == 3 else img).reshape(-1)
    reducer = Reducer(None if spec == "avgpool" else spec, PIXELS, (gray.shape[1],), seed)
    if reducer.needs_fit:
        reducer.partial_fit(gray)
        reducer.finish_fit()
    data = reducer(gray)
    coords: dict[str, Any] = {"stimulus": np.asarray([str(i) for i in stimuli.ids])}
    for col in stimuli.table.columns:
        if col != "path":
            coords[col] = ("stimulus", stimuli.table[col].astype(str).to_numpy())
    ds = xr.Dataset({PIXELS: (("stimulus", f"{PIXELS}_unit"), data)}, coords=coords)
    ds[PIXELS].attrs.update(shape=[int(size), int(size)], reduce=spec or "none")
    ds.attrs.update(model=PIXELS, weights_sha256="",
                    pixels=f"grayscale at {int(size)}x{int(size)} px, reduce={spec or 'none'}")
    return ds
