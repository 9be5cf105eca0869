"""Every docstring example in the package runs (``make test`` collects this file).

Examples that need data the user must supply (a real dataset on disk, a BIDS
tree, a results file) are marked ``# doctest: +SKIP`` in their docstrings;
everything else runs here, in a temporary working directory.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import facebrain

MODULES = sorted(m.name for m in pkgutil.walk_packages(facebrain.__path__, "facebrain.")
                 if not m.name.endswith("__main__"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_modules_found():
    assert len(MODULES) > 40 and "facebrain.stimuli._synthetic" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    for t in sorted(tests, key=lambda t: t.name):
        runner.run(t, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()
