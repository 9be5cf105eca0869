"""Model registry: ``@register_model``, ``create(name, ...)``, ``list_models(pattern)``."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable

from .._boundary import public
from ..errors import MissingKeyError, ModelImportError, ParameterError, ParameterTypeError
from ._base import FaceNet

__all__ = ["ENTRY_POINT_GROUP", "create", "find_builder", "list_models", "register_model"]

_MODELS: dict[str, Callable[..., FaceNet]] = {}

#: Entry-point group through which installed packages add networks
#: (``[project.entry-points."facebrain.models"] mynet = "mypkg.nets:build"``).
ENTRY_POINT_GROUP = "facebrain.models"



@public
def register_model(fn: Callable[..., FaceNet]) -> Callable[..., FaceNet]:
    """Register a builder under its function name.

    The builder takes keyword arguments only (``num_classes`` and its own
    options) and returns a randomly initialised :class:`FaceNet`.
    """
    name = fn.__name__
    if name in _MODELS:
        raise ParameterError(f"a model named {name!r} is already registered")
    _MODELS[name] = fn
    return fn


@public
def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a shell-style pattern."""
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _entry_point(name: str):
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _import_builder(target: str, what: str) -> Callable[..., FaceNet]:
    import importlib

    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ModelImportError(
            f"{what} {target!r} is not of the form 'package.module:builder'.")
    try:
        obj = importlib.import_module(module)
    except Exception as err:  # the user's module may fail in any way
        raise ModelImportError(
            f"{what} {target!r}: cannot import module {module!r} ({type(err).__name__}: "
            f"{err}). Install the package or put it on PYTHONPATH."
        ) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelImportError(f"{what} {target!r}: module {module!r} has no attribute "
                                   f"{attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelImportError(f"{what} {target!r} is not callable; name a function or class "
                               "that builds a facebrain.models.FaceNet.")
    return obj


@public
def find_builder(name: str) -> Callable[..., FaceNet]:
    """The builder of ``name``: a registered model, ``"module:attr"``, or an entry point.

    ``"mypkg.nets:build"`` imports ``mypkg.nets`` and takes its ``build``;
    a name registered by an installed package under the ``facebrain.models``
    entry-point group is loaded on first use. Import failures raise
    ``ModelImportError`` (an ``ImportError``) naming the target and the cause.

    Examples
    --------
    >>> find_builder("small_resnet").__name__
    'small_resnet'
    """
    _check_name(name)
    if name in _MODELS:
        return _MODELS[name]
    if ":" in name:
        return _checked(name, _import_builder(name, "model"))
    ep = _entry_point(name)
    if ep is not None:
        return _checked(name, _import_builder(
            ep.value, f"model {name!r} (entry point {ENTRY_POINT_GROUP!r})"))
    return _builder(name)


def _checked(name: str, fn: Callable) -> Callable[..., FaceNet]:
    """Wrap a user builder so that anything but a FaceNet is a clear TypeError."""
    import functools

    @functools.wraps(fn)
    def build(**kwargs) -> FaceNet:
        model = fn(**kwargs)
        if not isinstance(model, FaceNet):
            raise ParameterTypeError(
                f"model {name!r}: its builder returned {type(model).__name__}, not a "
                "facebrain.models.FaceNet (an nn.Module with ordered .stages and .preprocess)."
            )
        return model

    return build


def _check_name(name) -> None:
    if not isinstance(name, str) or not name:
        raise ParameterTypeError(
            f"model name must be a non-empty str (see facebrain.models.list_models(), or "
            f"'package.module:builder'); got {type(name).__name__} {name!r:.60}")


def _builder(name: str) -> Callable[..., FaceNet]:
    _check_name(name)
    if name not in _MODELS and (":" in name or _entry_point(name) is not None):
        return find_builder(name)  # the user's own network (see find_builder)
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise MissingKeyError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(list_models())}"
        )
    return _MODELS[name]


@public
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
        raise ParameterTypeError(f"{sorted(load_kw)} only apply when weights= is given")
    return model
