"""``make docs`` works: the API reference builds offline with warnings as errors.

Slow (about 25 s of CPU, 50-100 s wall on a loaded 2-core machine); run with
``pytest -m slow tests/test_docs.py``. Needs the ``docs`` extra (sphinx, numpydoc,
myst-parser); skipped without it.
"""

from __future__ import annotations

import html
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

import facebrain

DOCS = Path(__file__).resolve().parents[1] / "docs"
ROOMS = sorted(facebrain._SUBMODULES) + ["errors"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
           "-d", str(out / ".doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_every_public_name_has_a_page(built):
    for room in ROOMS:
        names = importlib.import_module(f"facebrain.{room}").__all__
        assert names, room
        page = (built / "_gen" / "api" / f"{room}.html").read_text()
        for name in names:
            assert f'href="generated/facebrain.{room}.{name}.html' in page, (room, name)
            assert (built / "_gen" / "api" / "generated" / f"facebrain.{room}.{name}.html").exists()


@pytest.mark.slow
def test_docstring_examples_and_scripts_rendered(built):
    page = (built / "_gen" / "api" / "generated" / "facebrain.rsa.compare.html").read_text()
    assert "Parameters" in page and "Examples" in page
    assert "&gt;&gt;&gt;" in page and 'class="highlight' in page  # doctest shown as code
    examples = html.unescape((built / "_gen" / "examples.html").read_text())
    for script in sorted((DOCS.parent / "examples").glob("*.py")):
        assert script.name in examples
    assert "synthetic_kdef" in examples  # the code itself, not only the titles
    index = re.sub(r"<[^>]+>", "", (built / "index.html").read_text())
    assert "make demo" in html.unescape(index)  # the README's two set-up commands open the index
