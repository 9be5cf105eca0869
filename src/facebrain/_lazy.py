"""Lazy public names for a room's ``__init__`` (the scientific-Python SPEC 1 pattern).

``import facebrain.rsa`` then costs almost nothing; the module that defines a name
(and the heavy peers it imports: rsatoolbox, nilearn, scikit-learn) is imported on
first access of that name, e.g. ``facebrain.rsa.compare``. ``from facebrain.rsa
import compare`` works as before, and each room keeps a ``TYPE_CHECKING`` block
with the eager imports so that static analysis and IDEs follow them.

The same module ``__getattr__`` keeps names that left a room's ``__all__`` reachable
for one release (``deprecated=``): access warns with ``DeprecationWarning`` and says
where the name lives now. Rooms that import their names eagerly use it for that alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping

REMOVAL = "0.3"  # the release that drops deprecated names (as facebrain._deprecation)


def all_sort_key(name: str) -> tuple[int, str]:
    """Order of every ``__all__``: CONSTANTS, then Classes, then functions (ruff's RUF022).

    Examples
    --------
    >>> sorted(["rdm", "RDMs", "COMPARISONS", "compare"], key=all_sort_key)
    ['COMPARISONS', 'RDMs', 'compare', 'rdm']
    """
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def attach(
    package: str,
    names: Mapping[str, list[str]],
    *,
    deprecated: Mapping[str, tuple[str, str, str]] | None = None,
) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to list of str
        Module (relative, e.g. ``"._compare"`` or ``".._selection"``) -> the public names it
        defines.
    deprecated : mapping of str to (str, str, str), optional
        Old public name -> ``(module, attribute, advice)``: the name is no longer in
        ``__all__`` or ``dir()``, but access still returns ``module.attribute`` with a
        ``DeprecationWarning`` ending in ``advice`` (e.g. ``"use facebrain.errors.X"``).

    Examples
    --------
    >>> import warnings
    >>> getattr_, dir_, all_ = attach("facebrain.rsa", {"._rdm": ["rdm"]},
    ...     deprecated={"old_rdm": ("._rdm", "rdm", "use facebrain.rsa.rdm")})
    >>> all_
    ['rdm']
    >>> callable(getattr_("rdm"))
    True
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     getattr_("old_rdm") is getattr_("rdm"), str(w[0].message)
    (True, 'facebrain.rsa.old_rdm is deprecated and will be removed in facebrain 0.3; use facebrain.rsa.rdm.')
    """
    where = {name: mod for mod, public in names.items() for name in public}
    old = dict(deprecated or {})
    if set(old) & set(where):
        raise ValueError(f"{package}: names both public and deprecated: {sorted(set(old) & set(where))}")
    all_ = sorted(where, key=all_sort_key)

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(where[name], package), name)
            importlib.import_module(package).__dict__[name] = value  # cached: next access is free
            return value
        if name in old:
            mod, attr, advice = old[name]
            warnings.warn(f"{package}.{name} is deprecated and will be removed in facebrain "
                          f"{REMOVAL}; {advice}.", DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(mod, package), attr)  # not cached: warns each time
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    __getattr__.deprecated = old  # type: ignore[attr-defined]  # what tests enumerate

    def __dir__() -> list[str]:
        return list(all_)

    return __getattr__, __dir__, all_


class _PostImportHook:
    """Meta-path finder that runs ``callback`` right after ``name`` is first imported.

    It stays on ``sys.meta_path`` until the module has really been executed: a bare
    ``importlib.util.find_spec(name)`` (dask and pandas probe optional packages that way)
    must not use it up.
    """

    def __init__(self, name: str, callback: Callable[[], object]) -> None:
        self.name, self.callback, self._busy = name, callback, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self._busy:
            return None
        self._busy = True  # the lookup below passes through sys.meta_path, and so this finder
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, hook = spec.loader.exec_module, self

        def exec_then_callback(module):
            exec_module(module)
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)  # once: the module is imported now
                hook.callback()

        spec.loader.exec_module = exec_then_callback  # this spec's loader instance only
        return spec


def when_imported(name: str, callback: Callable[[], object]) -> None:
    """Run ``callback`` now if module ``name`` is imported, else right after its first import.

    ``import facebrain`` uses it to register the ``acts.fb`` accessor without importing
    xarray itself (~0.6 s CPU, most of the command line's start-up).

    Examples
    --------
    >>> import sys
    >>> seen = []
    >>> when_imported("json", lambda: seen.append("json" in sys.modules))
    >>> seen
    [True]
    """
    if name in sys.modules:
        callback()
    elif not any(isinstance(f, _PostImportHook) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportHook(name, callback))
