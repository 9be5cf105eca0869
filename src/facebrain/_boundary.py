"""The public boundary: builtin errors that escape a public function become facebrain errors.

facebrain validates user input at each public entry and raises :mod:`facebrain.errors`
types. What validation misses (a list where numpy wanted an array, an xarray dim that is
not there, scikit-learn's ``check_is_fitted``) surfaces from deep inside a library as a
bare ``ValueError``/``TypeError``/``KeyError``... :func:`public` is the one safety net for
those: written as ``@public`` on the definition of every public function, class or method,
it re-raises such an error as the facebrain type that subclasses the *same* builtin, with
the public name prefixed to the library's message and the original chained (``raise ... from err``),
so ``except ValueError`` keeps working, nothing is swallowed and the traceback still shows
where the library failed. Errors that already are :class:`~facebrain.errors.FacebrainError`
pass through untouched (the innermost public function names itself).

Examples
--------
>>> import numpy as np
>>> from facebrain._boundary import public
>>> @public
... def centre(values):
...     return np.asarray(values, dtype=float) - np.mean(values)
>>> try:
...     centre(["a", "b"])
... except ValueError as err:
...     print(type(err).__name__, "|", err, "|", type(err.__cause__).__name__)
ParameterError | centre: could not convert string to float: 'a' | ValueError
"""

from __future__ import annotations

import dis
import functools
import inspect

from .errors import (
    FacebrainError,
    IndexOutOfRangeError,
    IsAFolderError,
    MissingFileError,
    MissingKeyError,
    NotAFolderError,
    NotFittedError,
    OutputExistsError,
    ParameterAttributeError,
    ParameterError,
    ParameterTypeError,
)

__all__ = ["CAUGHT", "public", "translate"]

#: builtin -> facebrain counterpart, most specific first (the path errors are OSErrors,
#: KeyError and IndexError are LookupErrors; a ValueError that is also an AttributeError is
#: scikit-learn's NotFittedError and is handled before both).
_COUNTERPARTS = (
    (FileNotFoundError, MissingFileError),
    (NotADirectoryError, NotAFolderError),
    (IsADirectoryError, IsAFolderError),
    (FileExistsError, OutputExistsError),
    (KeyError, MissingKeyError),
    (IndexError, IndexOutOfRangeError),
    (AttributeError, ParameterAttributeError),
    (TypeError, ParameterTypeError),
    (ValueError, ParameterError),
)

#: The builtins the boundary translates; anything else (RuntimeError, other OSErrors such as
#: PermissionError or a full disk, ImportError,
#: MemoryError, KeyboardInterrupt...) is not a statement about the input and passes through.
CAUGHT = tuple(builtin for builtin, _ in _COUNTERPARTS)

#: Dunder methods of a public class that users call directly (constructor, call, indexing).
_DUNDERS = ("__init__", "__call__", "__getitem__")

#: Code objects of the wrappers (an error raised there is a bad call of the public function).
_WRAPPER_CODES: set = set()

#: Public method names never wrapped: ``forward`` is torch's hot path (traced and compiled).
_SKIP = ("forward",)


def translate(err: BaseException, where: str) -> BaseException:
    """The facebrain counterpart of builtin ``err`` raised inside public ``where``.

    Parameters
    ----------
    err : BaseException
        The error that escaped; returned unchanged when it already is a
        :class:`~facebrain.errors.FacebrainError` or not one of :data:`CAUGHT`.
    where : str
        The public name (``"compare"``, ``"StimulusSet.load"``) prefixed to the message
        when a library raised ``err`` (facebrain's own messages are kept as written).

    Returns
    -------
    BaseException
        A new error (the caller raises it ``from err``) or ``err`` itself.

    Examples
    --------
    >>> e = translate(KeyError("layer9"), "rdm")
    >>> type(e).__name__, isinstance(e, KeyError), str(e)
    ('MissingKeyError', True, "rdm: key 'layer9' not found")
    """
    if isinstance(err, FacebrainError) or not isinstance(err, CAUGHT):
        return err
    if isinstance(err, ValueError) and isinstance(err, AttributeError):
        counterpart = NotFittedError  # what sklearn.exceptions.NotFittedError is made of
        if type(err).__module__.split(".")[0] == "sklearn":  # sklearn is imported already
            from ._sklearn_errors import EstimatorNotFittedError as counterpart
    else:
        counterpart = next(fb for builtin, fb in _COUNTERPARTS if isinstance(err, builtin))
    if isinstance(err, KeyError) and len(err.args) == 1 and not (
            isinstance(err.args[0], str) and " " in err.args[0]):
        message = f"key {err.args[0]!r} not found"  # a bare key, as pandas/xarray raise it
    else:
        message = str(err) or type(err).__name__
    prefix = "" if _raised_by_facebrain(err) else f"{where}: "
    if isinstance(err, OSError) and err.errno is not None and err.strerror:
        # keep errno and filename: str() reads "[Errno 2] where: No such file...: 'x.csv'"
        extra = [err.filename] if err.filename is not None else []
        return counterpart(err.errno, f"{prefix}{err.strerror}", *extra)
    return counterpart(f"{prefix}{message}")


def _raised_by_facebrain(err: BaseException) -> bool:
    """Whether a ``raise`` statement in facebrain wrote ``err`` (its message names the argument).

    The public name is prefixed only to messages facebrain did not write: those of numpy,
    xarray, pandas, torch or scikit-learn, and of C calls such as ``float("abc")`` inside
    facebrain, which cannot know what the user called. A builtin raised by facebrain's own
    ``raise`` (rooms not yet converted), or by Python when the public function itself is
    called with wrong arguments (``create() missing 1 required positional argument``),
    keeps its message as written.
    """
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    if frame.f_globals.get("__name__", "").split(".")[0] != "facebrain":
        return False
    if frame.f_code in _WRAPPER_CODES:
        return True  # the call of the public function itself failed: Python names it
    code = frame.f_code.co_code
    return 0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] == _RAISE


_RAISE = dis.opmap["RAISE_VARARGS"]


def _wrap(fn, where: str):
    """``fn`` with its builtin errors translated (generators: while they are iterated)."""
    if getattr(fn, "__facebrain_public__", False):
        return fn
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return (yield from fn(*args, **kwargs))
            except CAUGHT as err:
                new = translate(err, where)
                if new is err:
                    raise
                raise new from err
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except CAUGHT as err:
                new = translate(err, where)
                if new is err:
                    raise
                raise new from err
    wrapper.__facebrain_public__ = True
    _WRAPPER_CODES.add(wrapper.__code__)
    return wrapper


def _framework(klass: type) -> bool:
    """Bases whose methods stay as they are: ``object`` and torch (``nn.Module.to``,
    ``load_state_dict``... are framework calls, raise RuntimeError and sit on hot paths)."""
    return klass is object or klass.__module__.split(".")[0] == "torch"


def _wrap_class(cls: type) -> type:
    seen = set()
    for klass in cls.__mro__:  # most derived first: each name's effective definition
        for name, attr in list(vars(klass).items()):
            if name in seen:
                continue
            seen.add(name)
            if (name.startswith("_") and name not in _DUNDERS) or name in _SKIP or _framework(klass):
                continue
            owner = cls.__qualname__.rsplit("<locals>.", 1)[-1]
            where = f"{owner}.{name}" if name != "__init__" else owner
            if inspect.isfunction(attr):
                new = _wrap(attr, where)
            elif (isinstance(attr, (staticmethod, classmethod))
                  and inspect.isfunction(attr.__func__)):
                fn = _wrap(attr.__func__, where)
                new = attr if fn is attr.__func__ else type(attr)(fn)
            elif isinstance(attr, property) and attr.fget is not None:
                new = attr.getter(_wrap(attr.fget, where))
                if attr.fset is not None:
                    new = new.setter(_wrap(attr.fset, where))
            else:
                continue  # data, descriptors of other libraries (sklearn's available_if...)
            if new is not attr:
                setattr(cls, name, new)
    return cls


def public(obj):
    """Mark ``obj`` as public API: builtin errors escaping it become facebrain errors.

    On a function: a :func:`functools.wraps` wrapper (same name, docstring, signature and
    pickling) re-raises ``ValueError``, ``TypeError``, ``KeyError``, ``IndexError``,
    ``AttributeError``, ``FileNotFoundError``, ``NotADirectoryError``,
    ``IsADirectoryError`` and ``FileExistsError`` that are not already
    :class:`~facebrain.errors.FacebrainError` as :func:`translate` describes. On a class:
    the same, in place, for ``__init__``, ``__call__``, ``__getitem__`` and every public
    method, static/class method and property it defines or inherits (scikit-learn's
    ``set_params``, ``score``... included), except ``forward`` and what comes from
    ``torch`` (``nn.Module.to``, ``load_state_dict``...).

    Parameters
    ----------
    obj : callable or type
        The public function or class.

    Returns
    -------
    callable or type
        The wrapper, or the class itself.

    Examples
    --------
    >>> @public
    ... class Box:
    ...     def __init__(self, size):
    ...         self.size = int(size)
    >>> Box("big")
    Traceback (most recent call last):
    ...
    facebrain.errors.ParameterError: Box: invalid literal for int() with base 10: 'big'
    """
    if isinstance(obj, type):
        return _wrap_class(obj)
    where = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    return _wrap(obj, where.rsplit("<locals>.", 1)[-1])
