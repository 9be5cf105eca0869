"""Karolinska Directed Emotional Faces (KDEF) loader."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import DataFormatError
from ._images import read_image
from ._loader_utils import (
    IMAGE_EXTENSIONS,
    Rejections,
    check_choice,
    check_root,
    expression_map,
    iter_files,
    probe_image,
    read_data_table,
)
from ._stimulus_set import CANONICAL_EXPRESSIONS, StimulusSet

__all__ = ["KDEF_PATTERN", "KDEF_VIEWS", "load_kdef"]

#: File names of the public release: session, gender, number, expression, view.
KDEF_PATTERN = re.compile(
    r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)\.jpe?g$", re.IGNORECASE
)
#: Camera angles, left profile to right profile.
KDEF_VIEWS = ("FL", "HL", "S", "HR", "FR")
_PERSON_DIR = re.compile(r"^[AB][FM]\d{2}$", re.IGNORECASE)
_BLANK_MEAN = 10.0
_KDEF_SIZE = (562, 762)  # width, height of the public release's images


def _find_kdef_root(root: Path) -> tuple[Path, str]:
    """Descend into ``KDEF_and_AKDEF/KDEF`` when given the archive's top folder."""
    children = [p for p in root.iterdir() if p.is_dir()]
    if any(_PERSON_DIR.match(p.name) for p in children):
        return root, ""
    if any(KDEF_PATTERN.match(p.name) for p in root.iterdir() if p.is_file()):
        return root, ""
    for p in children:
        if p.name.upper() == "KDEF":
            return p, f"read person folders from {p.name}/ inside the given root"
    return root, ""


@public
def load_kdef(
    root: str | os.PathLike,
    *,
    views=None,
    expressions=None,
    sessions=None,
    strict: bool = False,
    verify: str = "fast",
) -> StimulusSet:
    """Load the Karolinska Directed Emotional Faces from the folder they were unpacked to.

    File names follow ``SGNNEEVV.JPG`` (``AF01AFS.JPG``: session A, female 01,
    afraid, straight) inside person folders (``AF01/``). ``AF01`` and ``BF01``
    are the same person photographed in two sessions, so ``identity`` is
    gender + number (``"F01"``) and ``session`` a separate column.

    Known irregular files of the public release are handled from the table
    ``facebrain/data/kdef_quirks.csv`` (with its sources): the two files
    released without expression/view code are read under their documented
    names, images reported as black are checked and rejected if black, and
    every use of the table is recorded in ``.notes["kdef_quirks_applied"]``.
    Files whose name disagrees with their person folder are rejected (never
    relabelled by guess).

    Parameters
    ----------
    root : path
        The ``KDEF`` folder (holding ``AF01/`` ... ``BM35/``), or the
        ``KDEF_and_AKDEF`` folder above it.
    views : list of str, optional
        Keep these camera angles (``"FL", "HL", "S", "HR", "FR"``).
    expressions : list of str, optional
        Keep these expressions: canonical names (``"fearful"``) or KDEF codes (``"AF"``).
    sessions : list of str, optional
        Keep these sessions (``"A"``, ``"B"``).
    strict : bool, default False
        Raise on the first unreadable, misfiled or duplicate file instead of
        listing it in ``.rejected`` with a warning.
    verify : {"fast", "full", "none"}, default "fast"
        How images are checked while the set is built (see
        :data:`facebrain.stimuli._loader_utils.VERIFY_MODES`).

    Returns
    -------
    StimulusSet
        Table columns ``identity, expression, view, session, gender,
        kdef_expression, path, source_file, quirk``; ids like ``"AF01AFS"``.

    Examples
    --------
    >>> kdef = load_kdef("/data/KDEF_and_AKDEF/KDEF", views=["S"])  # doctest: +SKIP
    >>> kdef.table.groupby("expression").size()                      # doctest: +SKIP
    """
    root = check_root(root, "KDEF root")
    codes = expression_map("kdef")
    views = check_choice("views", views, KDEF_VIEWS)
    expressions = check_choice(
        "expressions", expressions, CANONICAL_EXPRESSIONS, aliases=codes
    )
    sessions = check_choice("sessions", sessions, ("A", "B"))
    data_root, descended = _find_kdef_root(root)

    quirks = read_data_table("kdef_quirks.csv")
    quirks["key"] = quirks["file"].str.upper()
    quirk_rows = {r.key: r for r in quirks.itertuples()}

    rejected = Rejections("load_kdef", strict=strict, root=data_root)
    notes: dict = {
        "dataset": "KDEF (Lundqvist, Flykt & Oehman 1998)",
        "identity": "gender + number, e.g. F01; AF01 and BF01 are the same person",
        "quirks_table": "facebrain/data/kdef_quirks.csv",
        "kdef_quirks_applied": [],
    }
    if descended:
        notes["root"] = descended
    ignored: list[str] = []
    skipped_system: list[str] = []
    candidates: dict[str, dict] = {}

    for path in iter_files(data_root, skipped=skipped_system):
        rel = path.relative_to(data_root).as_posix()
        name = path.name
        quirk = quirk_rows.get(name.upper())
        canonical = name
        quirk_note = ""
        if quirk is not None and quirk.action == "map":
            canonical = quirk.maps_to
            quirk_note = f"{quirk.kind}: {name} read as {canonical} ({quirk.note})"
        elif quirk is not None and quirk.action == "report":
            quirk_note = _report_note(path, quirk)
        m = KDEF_PATTERN.match(canonical)
        if m is None:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                rejected.add(
                    path,
                    "name does not follow the KDEF pattern SGNNEEVV.JPG "
                    "(e.g. AF01AFS.JPG) and is not in kdef_quirks.csv",
                    fix="Rename it to the KDEF convention or remove it.",
                )
            else:
                ignored.append(rel)
            continue
        sess, gender, num, code, view = (g.upper() for g in m.groups())
        person = f"{sess}{gender}{num}"
        folder = path.parent.name
        if _PERSON_DIR.match(folder) and folder.upper() != person:
            rejected.add(
                path,
                f"file name says person {person} but the file is in folder {folder}/; "
                "which one is right cannot be told from the name",
                fix=f"Move it to {person}/ or rename it, after checking the image.",
            )
            continue
        if sessions is not None and sess not in sessions:
            continue
        if views is not None and view not in views:
            continue
        expr = codes[code]
        if expressions is not None and expr not in expressions:
            continue
        sid = f"{person}{code}{view}"
        row = {
            "stimulus_id": sid,
            "identity": f"{gender}{num}",
            "expression": expr,
            "view": view,
            "session": sess,
            "gender": "female" if gender == "F" else "male",
            "kdef_expression": code,
            "path": rel,
            "source_file": name,
            "quirk": quirk_note,
            "_mapped": quirk is not None and quirk.action == "map",
            "_blank_check": quirk is not None and quirk.action == "check_blank",
            "_abs": path,
        }
        prev = candidates.get(sid)
        if prev is not None:
            # keep the correctly named file over a quirk-mapped one, else the first
            keep, drop = (row, prev) if prev["_mapped"] and not row["_mapped"] else (prev, row)
            candidates[sid] = keep
            rejected.add(
                drop["_abs"],
                f"duplicate of {keep['path']} (both are stimulus {sid})",
                fix="Remove one of the two files.",
            )
            continue
        candidates[sid] = row

    rows = []
    for sid, row in candidates.items():
        reason = probe_image(row["_abs"], verify)
        if reason is not None:
            rejected.add(row["_abs"], reason, fix="Re-copy the file from the KDEF release.")
            continue
        if row["_blank_check"]:
            quirk = quirk_rows[row["source_file"].upper()]
            try:
                mean = float(read_image(row["_abs"]).mean())
            except DataFormatError as err:
                rejected.add(row["_abs"], str(err))
                continue
            if mean < _BLANK_MEAN:
                notes["kdef_quirks_applied"].append(
                    f"{row['path']}: rejected, {quirk.note} (measured mean {mean:.1f}; "
                    f"source: {quirk.source})"
                )
                rejected.add(
                    row["_abs"],
                    f"{quirk.note}: measured mean pixel value {mean:.1f} "
                    "(known quirk of the public release, see kdef_quirks.csv)",
                )
                continue
        if row["quirk"]:
            notes["kdef_quirks_applied"].append(f"{row['path']}: {row['quirk']}")
        rows.append(row)

    rej = rejected.frame()
    if not rows:
        what = f"{len(rej)} file(s) were rejected (see the warning)" if len(rej) else (
            "no file matched the KDEF pattern")
        filt = " after the views/expressions/sessions filters" if any(
            f is not None for f in (views, expressions, sessions)) else ""
        raise DataFormatError(
            f"no KDEF images found under {data_root}{filt}: {what}. Expected person "
            "folders like AF01/ holding files named like AF01AFS.JPG; pass the KDEF "
            "folder of the unpacked release."
        )

    table = pd.DataFrame(rows).drop(columns=["_mapped", "_blank_check", "_abs"])
    expr_order = {e: i for i, e in enumerate(CANONICAL_EXPRESSIONS)}
    view_order = {v: i for i, v in enumerate(KDEF_VIEWS)}
    table = table.assign(
        _g=table["gender"], _n=table["identity"].str[1:].astype(int),
        _e=table["expression"].map(expr_order), _v=table["view"].map(view_order),
    ).sort_values(["session", "_g", "_n", "_e", "_v"], kind="stable")
    table = table.drop(columns=["_g", "_n", "_e", "_v"]).set_index("stimulus_id")

    _note_missing(table, notes, views, expressions)
    if ignored:
        notes["ignored_non_image_files"] = ignored
    if skipped_system:
        notes["ignored_system_files"] = len(skipped_system)
    return StimulusSet(table, root=data_root, name="kdef", rejected=rej, notes=notes)


def _report_note(path: Path, quirk) -> str:
    """Note for a ``report`` quirk; size reports are checked against the file."""
    if quirk.kind != "size":
        return f"{quirk.kind}: {quirk.note}"
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError):  # unreadable: the probe rejects it later
        return ""
    if (w, h) == _KDEF_SIZE:
        return ""  # this copy has the standard size
    return f"size: {w}x{h} pixels, not {_KDEF_SIZE[0]}x{_KDEF_SIZE[1]} ({quirk.note})"


def _note_missing(table: pd.DataFrame, notes: dict, views, expressions) -> None:
    """Record (and warn about) cells of the KDEF design that have no image."""
    people = table[["session", "gender", "identity"]].drop_duplicates()
    exprs = expressions or list(CANONICAL_EXPRESSIONS)
    vws = views or list(KDEF_VIEWS)
    code_of = {v: k for k, v in expression_map("kdef").items()}
    have = set(table.index)
    missing = []
    for p in people.itertuples():
        for e in exprs:
            for v in vws:
                sid = f"{p.session}{p.identity}{code_of[e]}{v}"
                if sid not in have:
                    missing.append(sid)
    expected = len(people) * len(exprs) * len(vws)
    notes["n_expected"] = int(expected)
    notes["missing"] = missing
    if missing:
        head = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        warnings.warn(
            f"load_kdef: {len(missing)} of {expected} images of the KDEF design "
            f"(persons x expressions x views found) are absent or rejected: {head}. "
            "They are listed in .notes['missing'].",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

