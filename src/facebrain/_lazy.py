"""Lazy public names for a room's ``__init__`` (the scientific-Python SPEC 1 pattern).

``import facebrain.rsa`` then costs almost nothing; the module that defines a name
(and the heavy peers it imports: rsatoolbox, nilearn, scikit-learn) is imported on
first access of that name, e.g. ``facebrain.rsa.compare``. ``from facebrain.rsa
import compare`` works as before, and each room keeps a ``TYPE_CHECKING`` block
with the eager imports so that static analysis and IDEs follow them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def attach(package: str, names: Mapping[str, list[str]]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to list of str
        Module (relative, e.g. ``"._compare"`` or ``".._selection"``) -> the public names it
        defines.

    Examples
    --------
    >>> getattr_, dir_, all_ = attach("facebrain.rsa", {"._rdm": ["rdm"]})
    >>> all_
    ['rdm']
    >>> callable(getattr_("rdm"))
    True
    """
    where = {name: mod for mod, public in names.items() for name in public}
    all_ = sorted(where)

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(where[name], package), name)
            importlib.import_module(package).__dict__[name] = value  # cached: next access is free
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return list(all_)

    return __getattr__, __dir__, all_
