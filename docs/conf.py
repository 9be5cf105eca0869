"""Sphinx configuration: ``make docs`` builds the API reference offline into docs/_build/html.

The reference follows the code: before Sphinx reads anything, this file writes
``docs/_gen/`` (git-ignored) with one page per room listing exactly that room's
``__all__`` (autosummary then writes a page per name from its numpydoc docstring), and
one page showing every script in ``examples/`` (shown, never executed).
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # document this tree, not an installed copy

import facebrain

project = "facebrain"
copyright = "facebrain authors"
release = version = facebrain.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]
html_theme = "alabaster"
html_theme_options = {"description": facebrain.__doc__.splitlines()[0].split(": ", 1)[-1],
                      "page_width": "1100px", "sidebar_width": "230px"}

autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"          # numpydoc's Parameters sections carry the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # class pages list members themselves (see _templates)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# rooms: every public sub-package, plus the public errors module
ROOMS = sorted(facebrain._SUBMODULES) + ["errors"]


def _summary(obj) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _write(path: Path, text: str) -> None:
    """Write ``text`` only when it changed (keeps Sphinx's incremental build incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _room_page(room: str) -> str:
    mod = importlib.import_module(f"facebrain.{room}")
    names = sorted(getattr(mod, "__all__", []))
    title = f"facebrain.{room}"
    lines = [title, "=" * len(title), "", f".. automodule:: facebrain.{room}",
             "   :no-members:", "", f".. currentmodule:: facebrain.{room}", ""]
    if names:
        lines += [".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]
    else:
        lines += ["This room has no public names yet."]
    return "\n".join(lines) + "\n"


def _api_index() -> str:
    lines = ["API reference", "=============", "",
             "One page per room; each lists the room's ``__all__`` (its public names).", "",
             "The top-level package re-exports a few shortcuts:", ""]
    for name, room in sorted(facebrain._ATTRS.items()):
        lines.append(f"- ``facebrain.{name}`` is :obj:`facebrain.{room}.{name}`")
    lines += ["", ".. toctree::", "   :maxdepth: 1", ""]
    lines += [f"   {room}" for room in ROOMS]
    return "\n".join(lines) + "\n"


def _examples_page() -> str:
    lines = ["Examples", "========", "",
             ("The scripts in ``examples/``; each runs offline in about a minute "
              "(``python examples/01_load_stimuli.py``). Shown here, not executed."), ""]
    for script in sorted((ROOT / "examples").glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
        first = doc.splitlines()[0] if doc else ""
        lines += [script.name, "-" * len(script.name), "", first, "",
                  f".. literalinclude:: ../../examples/{script.name}",
                  "   :language: python", ""]
    return "\n".join(lines) + "\n"


_write(DOCS / "_gen" / "api" / "index.rst", _api_index())
for _room in ROOMS:
    _write(DOCS / "_gen" / "api" / f"{_room}.rst", _room_page(_room))
_write(DOCS / "_gen" / "examples.rst", _examples_page())


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn adds set_fit_request & co. to every estimator; their docstrings point
    # into scikit-learn's own glossary, which this offline build cannot link to
    if name.startswith("set_") and name.endswith("_request"):
        return True
    # the same for methods inherited from scikit-learn (score, get_metadata_routing...),
    # which @public re-wraps on the class: their docstrings are scikit-learn's
    inner = getattr(obj, "__wrapped__", obj)
    if (getattr(inner, "__module__", None) or "").startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
