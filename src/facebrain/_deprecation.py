"""Deprecation shims kept for one release: renamed keywords and config keys.

Renamed module attributes go through :func:`facebrain._lazy.attach` (``deprecated=``);
this module handles keywords (:func:`renamed_kwargs`) and config keys
(:func:`renamed_key`). Both warn with ``FutureWarning`` (shown to end users by
default, as scikit-learn and pandas do for API changes) naming the new spelling, and
raise when the old and new spelling are both given.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Mapping, MutableMapping

from ._lazy import REMOVAL
from .errors import ConfigError, ParameterTypeError

__all__ = ["REMOVAL", "renamed_config_keys", "renamed_key", "renamed_kwargs",
           "renamed_override_keys", "user_stacklevel"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside facebrain.

    Warnings about the user's call stay attributed to it whatever facebrain frames lie
    in between (e.g. the :func:`renamed_kwargs` wrapper), like pandas' ``find_stack_level``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("x", UserWarning, stacklevel=user_stacklevel())
    >>> w[0].filename.startswith("<doctest")
    True
    """
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return max(level, 1)


def renamed_kwargs(**old_to_new: str) -> Callable:
    """Accept each old keyword of the decorated function for one release, with a warning.

    Parameters
    ----------
    **old_to_new : str
        Old keyword -> new keyword.

    Examples
    --------
    >>> import warnings
    >>> @renamed_kwargs(bootstrap="n_bootstrap")
    ... def f(*, n_bootstrap=0):
    ...     return n_bootstrap
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(bootstrap=5), w[0].category.__name__
    (5, 'FutureWarning')
    >>> f(bootstrap=5, n_bootstrap=5)
    Traceback (most recent call last):
    ...
    facebrain.errors.ParameterTypeError: f() got both bootstrap= (deprecated) and n_bootstrap=; pass only n_bootstrap=.
    """

    def decorate(func: Callable) -> Callable:
        # a class's __init__ (e.g. a config dataclass) is named as the class is called
        name = (func.__qualname__.removesuffix(".__init__") if func.__name__ == "__init__"
                else func.__name__)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ParameterTypeError(
                            f"{name}() got both {old}= (deprecated) and {new}=; "
                            f"pass only {new}=.")
                    warnings.warn(
                        f"{name}({old}=...) is deprecated and will be removed in "
                        f"facebrain {REMOVAL}; use {new}= instead.", FutureWarning,
                        stacklevel=user_stacklevel())
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        wrapper.__renamed_kwargs__ = dict(old_to_new)
        return wrapper

    return decorate


def renamed_key(section: MutableMapping, old: str, new: str, where: str) -> None:
    """Move config key ``old`` of ``section`` to ``new`` in place, with a warning.

    Parameters
    ----------
    section : mutable mapping
        One config section as read from YAML.
    old, new : str
        Old and new key.
    where : str
        The section's path for messages, e.g. ``"rsa"``.

    Examples
    --------
    >>> import warnings
    >>> sec = {"bootstrap": 10}
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     renamed_key(sec, "bootstrap", "n_bootstrap", "rsa")
    >>> sec
    {'n_bootstrap': 10}
    """
    if old not in section:
        return
    if new in section:
        raise ConfigError(f"{where}: both {old!r} (deprecated) and {new!r} are set; keep only "
                          f"{where}.{new}.")
    warnings.warn(f"config key {where}.{old} is deprecated and will be removed in facebrain "
                  f"{REMOVAL}; use {where}.{new}.", FutureWarning,
                  stacklevel=user_stacklevel())  # renamed_config_keys -> load_config -> its caller
    section[new] = section.pop(old)


def renamed_config_keys(data: dict, renames: Mapping[str, Mapping[str, str]]) -> dict:
    """Copy of the config ``data`` with renamed keys moved (``renames``: section -> old -> new).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     renamed_config_keys({"rsa": {"bootstrap": 3}}, {"rsa": {"bootstrap": "n_bootstrap"}})
    {'rsa': {'n_bootstrap': 3}}
    """
    data = dict(data)
    for section, pairs in renames.items():
        if isinstance(data.get(section), Mapping):
            data[section] = dict(data[section])
            for old, new in pairs.items():
                renamed_key(data[section], old, new, section)
    return data


def renamed_override_keys(overrides, renames: Mapping[str, Mapping[str, str]]):
    """``overrides`` (mapping or ``"key=value"`` strings) with renamed ``section.key`` paths.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     renamed_override_keys(["rsa.bootstrap=0", "seed=1"], {"rsa": {"bootstrap": "n_bootstrap"}})
    ['rsa.n_bootstrap=0', 'seed=1']
    """

    def fix(key: str) -> str:
        section, _, rest = key.strip().partition(".")
        new = renames.get(section, {}).get(rest)
        if new is None:
            return key
        warnings.warn(f"config key {section}.{rest} is deprecated and will be removed in "
                      f"facebrain {REMOVAL}; use {section}.{new}.", FutureWarning,
                      stacklevel=user_stacklevel())  # fix -> renamed_override_keys -> load_config -> caller
        return f"{section}.{new}"

    if isinstance(overrides, Mapping):
        return {fix(k): v for k, v in overrides.items()}
    out = []
    for item in overrides:
        key, eq, value = str(item).partition("=")
        out.append(fix(key) + eq + value if eq else item)
    return out
