"""Print pip constraints that pin every dependency of facebrain at its floor.

The floors live in one place, the ``>=`` specifiers of ``pyproject.toml``; this script
turns ``numpy>=1.25`` into ``numpy==1.25`` (extras such as ``dask[distributed]`` are kept)
so that ``make test-min`` can install the oldest versions the project claims to support.

Usage::

    python tools/floor_constraints.py [--extras dev,bench,faces] > requirements-min.txt
    python tools/floor_constraints.py --extras dev,bench,faces --check   # in the venv

``--check`` prints each pinned distribution's installed version and exits 1 unless every
one is exactly at its floor (a local label such as ``+cpu`` is ignored).
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*>=\s*([^,;\s]+)\s*(?:;.*)?$")


def floor_pins(extras: list[str]) -> list[str]:
    """Return ``name==floor`` lines for the base dependencies and the given extras.

    Parameters
    ----------
    extras : list of str
        Names of ``[project.optional-dependencies]`` groups to include.

    Returns
    -------
    list of str
        One pin per distinct distribution, in pyproject order.

    Raises
    ------
    SystemExit
        If a requirement has no ``>=`` floor (every dependency must declare one) or an
        extra is unknown.
    """
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    groups = project.get("optional-dependencies", {})
    reqs = list(project["dependencies"])
    for extra in extras:
        if extra not in groups:
            sys.exit(f"floor_constraints: unknown extra {extra!r}; pyproject has {sorted(groups)}")
        reqs.extend(groups[extra])
    pins: dict[str, str] = {}
    for req in reqs:
        m = _REQ.match(req)
        if m is None:
            sys.exit(f"floor_constraints: {req!r} has no single '>=' floor; give it one")
        name, version = m.groups()
        key = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()
        pins.setdefault(key, f"{name}=={version}")
    return list(pins.values())


def check(pins: list[str]) -> int:
    """Print installed versions next to their floors; 1 if any differs or is missing.

    Parameters
    ----------
    pins : list of str
        ``name==floor`` lines from :func:`floor_pins`.

    Returns
    -------
    int
        0 when every distribution is installed at its floor, 1 otherwise.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    bad = 0
    for pin in pins:
        name, floor = pin.split("==")
        dist = name.split("[")[0]
        try:
            have = version(dist)
        except PackageNotFoundError:
            have = "missing"
        ok = have != "missing" and Version(Version(have).public) == Version(floor)
        bad += not ok
        print(f"{dist:28s} floor {floor:12s} installed {have}{'' if ok else '  <-- NOT AT FLOOR'}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="", help="comma-separated extras to include")
    parser.add_argument("--check", action="store_true",
                        help="compare the installed versions with the floors instead")
    args = parser.parse_args(argv)
    pins = floor_pins([e for e in args.extras.split(",") if e])
    if args.check:
        return check(pins)
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
