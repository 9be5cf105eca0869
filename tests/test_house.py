"""One-direction house (issue 14): the rooms' import graph has no cycle.

Every module under ``src/facebrain`` is parsed (AST) and every import it makes is
collected: top-level, inside functions, under ``TYPE_CHECKING``, relative or
absolute, plus the string imports static analysis would otherwise miss
(``importlib.import_module("...")`` with a literal name, the module keys of a
room's ``_lazy.attach`` table). Each module belongs to

- a room: a top-level sub-package (``rsa``, ``pipeline``, ``report``...);
- the entry point: ``cli``;
- the neutral floor: the top-level modules (``_utils``, ``errors``,
  ``_selection``, ``_runfolder``, the root ``__init__``...), which import no room.

The allowed direction is written in CONTRACTS.md ("The house: import direction").
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

import facebrain

SRC = Path(facebrain.__file__).resolve().parent
ROOT = "facebrain"
ENTRY = {"cli"}
#: modules allowed to import by a computed name, and why
DYNAMIC_OK = {
    "facebrain/__init__.py": "lazy public names of the root package (PEP 562)",
    "facebrain/_lazy.py": "lazy public names of a room (attach)",
    "facebrain/models/_registry.py": "user networks named 'module:attr' or by entry point",
}
#: rooms the root package (the public face) may load, each in a deferred hook, and why
FACE_OK = {
    "activations": "registers acts.fb the moment xarray is imported (_lazy.when_imported)",
}


def _module_name(path: Path, src: Path, package: str) -> tuple[str, bool]:
    parts = [package, *path.relative_to(src).with_suffix("").parts]
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def _resolve(module: str | None, level: int, current: str, is_pkg: bool) -> str:
    if not level:
        return module or ""
    pkg = current.split(".") if is_pkg else current.split(".")[:-1]
    base = pkg[: len(pkg) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def unit_of(dotted: str, src: Path, package: str) -> str | None:
    """The room / top-level module a dotted name belongs to (None: not this package)."""
    parts = dotted.split(".")
    if parts[0] != package:
        return None
    if len(parts) == 1:
        return package
    head = parts[1]
    if (src / head).is_dir() or (src / f"{head}.py").is_file():
        return head
    return package  # a name defined in the root __init__ (``__version__``)


def import_edges(src: Path = SRC, package: str = ROOT):
    """``(edges, dynamic)``: ``{(from_unit, to_unit): [where, ...]}`` and the computed-name
    imports (``[where]``) of every module under ``src``."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    dynamic: list[str] = []
    for path in sorted(src.rglob("*.py")):
        name, is_pkg = _module_name(path, src, package)
        here = unit_of(name, src, package)
        rel = f"{package}/{path.relative_to(src).as_posix()}"
        targets: list[tuple[str, int]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets += [(a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module, node.level, name, is_pkg)
                for a in node.names:  # ``from pkg import room`` imports the room
                    sub = f"{base}.{a.name}"
                    is_mod = unit_of(sub, src, package) not in (None, package) and (
                        base == package)
                    targets.append((sub if is_mod else base, node.lineno))
            elif isinstance(node, ast.Call):
                fn = node.func
                fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
                if fname in ("import_module", "__import__"):
                    arg = node.args[0] if node.args else None
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        lvl = len(arg.value) - len(arg.value.lstrip("."))
                        targets.append((_resolve(arg.value.lstrip(".") or None, lvl, name,
                                                 is_pkg), node.lineno))
                    else:
                        dynamic.append(f"{rel}:{node.lineno}")
                elif fname == "attach" and len(node.args) == 2 and isinstance(
                        node.args[1], ast.Dict):  # _lazy.attach(__name__, {".mod": [...]})
                    for k in node.args[1].keys:
                        if isinstance(k, ast.Constant) and isinstance(k.value, str):
                            lvl = len(k.value) - len(k.value.lstrip("."))
                            targets.append((_resolve(k.value.lstrip(".") or None, lvl, name,
                                                     is_pkg), node.lineno))
        for target, line in targets:
            there = unit_of(target, src, package)
            if there is not None and there != here:
                edges[(here, there)].append(f"{rel}:{line}")
    return dict(edges), dynamic


def rooms(src: Path = SRC) -> set[str]:
    return {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}


def find_cycle(edges, nodes) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` among ``nodes`` in the edge set, or None."""
    graph = defaultdict(set)
    for a, b in edges:
        if a in nodes and b in nodes:
            graph[a].add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def _show_cycle(cycle, edges) -> str:
    return "\n".join(f"  {a} -> {b}: {', '.join(list(dict.fromkeys(edges[(a, b)]))[:3])}"
                     for a, b in itertools.pairwise(cycle))


@pytest.fixture(scope="module")
def graph():
    return import_edges()


def test_room_graph_is_acyclic(graph):
    edges, _ = graph
    cycle = find_cycle(edges, rooms())
    assert cycle is None, "import cycle between rooms:\n" + _show_cycle(cycle, edges)


def test_neutral_modules_import_no_room(graph):
    edges, _ = graph
    floor = {p.stem for p in SRC.glob("*.py")} - ENTRY - {"__init__"} | {ROOT}
    bad = [f"{a} -> {b}: {', '.join(w)}" for (a, b), w in edges.items()
           if a in floor and b in rooms() | ENTRY and not (a == ROOT and b in FACE_OK)]
    assert not bad, "neutral modules must not import rooms:\n" + "\n".join(bad)


def test_nothing_imports_the_entry_point(graph):
    edges, _ = graph
    bad = [f"{a} -> {b}: {', '.join(w)}" for (a, b), w in edges.items() if b in ENTRY]
    assert not bad, "\n".join(bad)


def test_report_reads_runs_without_the_pipeline(graph):
    edges, _ = graph
    assert ("pipeline", "report") in edges  # the allowed direction is really used
    assert ("report", "pipeline") not in edges, edges.get(("report", "pipeline"))
    assert ("report", "_runfolder") in edges and ("pipeline", "_runfolder") in edges


def test_imports_by_computed_name_only_where_documented(graph):
    _, dynamic = graph
    bad = [w for w in dynamic if w.rsplit(":", 1)[0] not in DYNAMIC_OK]
    assert not bad, ("imports by a computed name hide the graph from static analysis; "
                     f"import by name instead: {bad}")


def test_the_checker_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "house"
    for room, body in {
        "a": "def f():\n    from ..b import g\n",            # inside a function
        "b": "from ..c import _k\n",
        "c": "import importlib\nimportlib.import_module('house.a')\n",  # by string
        "d": "from .. import a\n",
    }.items():
        (pkg / room).mkdir(parents=True)
        (pkg / room / "__init__.py").write_text(body)
    (pkg / "__init__.py").write_text("")
    (pkg / "_floor.py").write_text("from .d import x\n")
    edges, dynamic = import_edges(pkg, "house")
    assert set(edges) == {("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("_floor", "d")}
    cycle = find_cycle(edges, rooms(pkg))
    assert cycle is not None and len(cycle) == 4 and cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}
    assert "house/a/__init__.py:2" in _show_cycle(cycle, edges)
    assert find_cycle({("a", "b"): [], ("b", "c"): []}, {"a", "b", "c"}) is None
    assert dynamic == []
