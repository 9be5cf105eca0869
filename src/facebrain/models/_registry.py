"""Model registry: ``@register_model``, ``create(name, ...)``, ``list_models(pattern)``."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable

from ._base import FaceNet

__all__ = ["create", "list_models", "register_model"]

_MODELS: dict[str, Callable[..., FaceNet]] = {}


def register_model(fn: Callable[..., FaceNet]) -> Callable[..., FaceNet]:
    """Register a builder under its function name.

    The builder takes keyword arguments only (``num_classes`` and its own
    options) and returns a randomly initialised :class:`FaceNet`.
    """
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"a model named {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a shell-style pattern."""
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _builder(name: str) -> Callable[..., FaceNet]:
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(list_models())}"
        )
    return _MODELS[name]


def create(name: str, *, weights=None, num_classes: int | None = None, **kwargs) -> FaceNet:
    """Build a registered network, optionally loading weights from a path.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    weights : path or mapping, optional
        Weight file (format detected by content; see ``load_weights``) or a state
        dict. Builders with a ``pretrained`` option (networks whose weights ship in
        a PyPI package, e.g. ``dlib_resnet``) read their packaged file when
        ``weights`` is None; given ``weights``, they load those instead.
    num_classes : int, optional
        Size of the classification head; None keeps the builder's default.
    **kwargs
        Builder options, plus ``sha256=``, ``strict=`` and ``new_head=``
        which are passed to the weight loader.
    """
    builder = _builder(name)
    load_kw = {k: kwargs.pop(k) for k in ("sha256", "strict", "new_head") if k in kwargs}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if weights is not None and "pretrained" in inspect.signature(builder).parameters:
        kwargs.setdefault("pretrained", False)  # weights= replaces the packaged default
    model = builder(**kwargs)
    model.name = name
    if weights is not None:
        from ._weights import load_weights

        load_weights(model, weights, **load_kw)
    elif load_kw:
        raise TypeError(f"{sorted(load_kw)} only apply when weights= is given")
    return model
