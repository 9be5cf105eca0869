"""Generic loaders: any image tree labelled by a regex, or a table of paths and labels."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from .._boundary import public
from ..errors import DataFormatError, MissingFileError, ParameterError, ParameterTypeError
from ._duplicates import handle_duplicates
from ._loader_utils import (
    Rejections,
    check_root,
    compile_pattern,
    expression_map,
    id_from_relpath,
    iter_files,
    probe_image,
)
from ._stimulus_set import CANONICAL_EXPRESSIONS, StimulusSet

__all__ = ["from_table", "load_folder"]

_DEFAULT_LABELS = {"expression": "unknown", "view": "unknown"}


def _resolve_expression_map(expression_map_arg) -> dict[str, str] | None:
    if expression_map_arg is None:
        return None
    if isinstance(expression_map_arg, str):
        return expression_map(expression_map_arg)
    if isinstance(expression_map_arg, dict):
        return {str(k): str(v) for k, v in expression_map_arg.items()}
    raise ParameterTypeError(
        "expression_map must be None, a dict of code -> name, or a dataset name in "
        f"facebrain/data/expression_codes.csv; got {type(expression_map_arg).__name__}"
    )


def _expression_notes(table: pd.DataFrame, mapping, notes: dict) -> None:
    vals = sorted(set(table["expression"]) - {"unknown"})
    other = [v for v in vals if v not in CANONICAL_EXPRESSIONS]
    if other:
        notes["non_canonical_expressions"] = other
    if mapping is not None:
        notes["expression_map"] = dict(mapping)


@public
def load_folder(
    root: str | os.PathLike,
    pattern,
    *,
    expression_map=None,
    strict: bool = False,
    verify: str = "fast",
    name: str | None = None,
    on_duplicate: str = "warn",
) -> StimulusSet:
    r"""Load any image tree, taking labels from named groups of a regex.

    ``pattern`` is searched (:func:`re.search`) in each file's path relative to
    ``root`` (POSIX separators). Named groups become table columns:
    ``identity`` is required; ``expression`` and ``view`` default to
    ``"unknown"`` when absent or unmatched; any other group (``session``,
    ``condition``...) becomes a column of its own, and a group named
    ``stimulus_id`` sets the id. Files are recognised as images by opening
    them with Pillow, not by their extension (the Yale faces are GIFs named
    ``subject01.happy``).

    Parameters
    ----------
    root : path
        Folder to walk (hidden files and folders are skipped).
    pattern : str or compiled regex
        E.g. ``r"subject(?P<identity>\d+)\.(?P<expression>\w+)$"``.
    expression_map : dict, str or None
        Maps matched expression codes to names: a dict, or a dataset name in
        ``facebrain/data/expression_codes.csv`` (``"yale"``, ``"ckplus"``,
        ``"synonyms"``...). A code not in the map is an unknown expression code
        (rejected, or an error when ``strict``). None keeps codes as matched;
        codes outside the canonical seven are listed in
        ``.notes["non_canonical_expressions"]``.
    strict : bool, default False
        Raise on the first unmatched, unreadable or duplicate file instead of
        listing it in ``.rejected`` with a warning.
    verify : {"fast", "full", "none"}, default "fast"
        How images are checked ("none" only checks files exist, so files that
        are not images are not detected until ``load``).
    name : str, optional
        Name of the set (default: the folder name).
    on_duplicate : {"warn", "drop", "raise", "ignore"}, default "warn"
        What to do with byte-identical image files (often the same photo
        filed under two labels): see :func:`facebrain.stimuli.handle_duplicates`.

    Returns
    -------
    StimulusSet
        Ids are relative paths without an image extension (``"subject01.happy"``,
        ``"s1/img_003"``); ``path`` is relative to ``root``.

    Examples
    --------
    >>> yale = load_folder("yalefaces", r"subject(?P<identity>\d+)\.(?P<expression>\w+)$",
    ...                    expression_map="yale")  # doctest: +SKIP
    """
    root = check_root(root, "image folder")
    rx = compile_pattern(pattern)
    if "identity" not in rx.groupindex:
        raise ParameterError(
            f"pattern {rx.pattern!r} has no named group 'identity'; add one, e.g. "
            r"'(?P<identity>\w+)/(?P<expression>\w+)_\d+\.png$'."
        )
    mapping = _resolve_expression_map(expression_map)
    rejected = Rejections("load_folder", strict=strict, root=root)
    files = list(iter_files(root))
    if not files:
        raise DataFormatError(
            f"image folder {root} is empty (no files, hidden ones aside). Pass the folder "
            "that holds the images."
        )
    rows, n_matched = [], 0
    seen: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        m = rx.search(rel)
        if m is None:
            rejected.add(path, f"path does not match pattern {rx.pattern!r}")
            continue
        n_matched += 1
        groups = {k: v for k, v in m.groupdict().items()}
        if not groups.get("identity"):
            rejected.add(path, "the identity group matched an empty string")
            continue
        sid = groups.pop("stimulus_id", None) or id_from_relpath(rel)
        if sid in seen:
            rejected.add(path, f"duplicate stimulus_id {sid!r} (also {seen[sid]})",
                         fix="Remove one copy or add a stimulus_id group to the pattern.")
            continue
        row = {"stimulus_id": sid}
        for k, v in groups.items():
            row[k] = v if v not in (None, "") else _DEFAULT_LABELS.get(k, "")
        for k, v in _DEFAULT_LABELS.items():
            row.setdefault(k, v)
        if mapping is not None and row["expression"] != "unknown":
            code = row["expression"]
            if code not in mapping:
                rejected.add(
                    path, f"unknown expression code {code!r}; the map knows "
                          f"{sorted(mapping)}",
                    fix="Add it to expression_map.",
                )
                continue
            row["expression_code"] = code
            row["expression"] = mapping[code]
        reason = probe_image(path, verify)
        if reason is not None:
            rejected.add(path, reason)
            continue
        row["path"] = rel
        seen[sid] = rel
        rows.append(row)
    if n_matched == 0:
        examples = [p.relative_to(root).as_posix() for p in files[:3]]
        raise DataFormatError(
            f"pattern {rx.pattern!r} matched none of the {len(files)} files under {root} "
            f"(e.g. {examples}). The pattern is searched in each path relative to the root, "
            "with '/' separators; fix the pattern."
        )
    rej = rejected.frame()
    if not rows:
        raise DataFormatError(
            f"no readable images under {root}: all {len(rej)} files were rejected "
            f"(first: {rej['path'].iloc[0]}: {rej['reason'].iloc[0]})."
        )
    table = pd.DataFrame(rows).set_index("stimulus_id")
    notes: dict = {"pattern": rx.pattern}
    _expression_notes(table, mapping, notes)
    stim = StimulusSet(table, root=root, name=name or root.name, rejected=rej, notes=notes)
    return handle_duplicates(stim, on_duplicate)


@public
def from_table(
    csv_path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    path_column: str = "path",
    id_column: str | None = None,
    rename: dict | None = None,
    required=("identity",),
    expression_map=None,
    strict: bool = True,
    verify: str = "fast",
    name: str | None = None,
    on_duplicate: str = "warn",
) -> StimulusSet:
    """Build a StimulusSet from a table with one row per image.

    Parameters
    ----------
    csv_path : path
        A CSV (``.csv``/``.tsv``/``.txt``) or Parquet file. All columns are read
        as strings, so ``"01"`` identities keep their zero.
    root : path, optional
        Folder relative paths are resolved against (default: the table's folder).
    path_column : str, default "path"
        Column holding image paths.
    id_column : str, optional
        Column of unique stimulus ids; default: the path without its image extension.
    rename : dict, optional
        Column renames applied first, e.g. ``{"subject": "identity", "emotion": "expression"}``.
    required : sequence of str, default ("identity",)
        Label columns the table must have (after ``rename``); a missing one is
        an error naming it. ``expression`` and ``view`` default to ``"unknown"``
        unless required here.
    expression_map : dict, str or None
        As in :func:`load_folder`.
    strict : bool, default True
        A row whose image is missing or unreadable, or whose identity is empty
        or expression code unknown, stops with an error naming its line. With
        ``strict=False`` such rows are listed in ``.rejected`` with a warning.
    verify : {"fast", "full", "none"}, default "fast"
        How images are checked.
    name : str, optional
        Name of the set (default: the table's file stem).
    on_duplicate : {"warn", "drop", "raise", "ignore"}, default "warn"
        What to do with byte-identical image files (often the same photo
        filed under two labels): see :func:`facebrain.stimuli.handle_duplicates`.

    Returns
    -------
    StimulusSet
        Every column of the table is kept; ``expression``/``view`` default to
        ``"unknown"`` when the table has no such column; ``identity`` is required.

    Examples
    --------
    >>> s = from_table("stimuli.csv", rename={"subject": "identity"})  # doctest: +SKIP
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise MissingFileError(f"stimulus table not found: {csv_path}")
    root = check_root(root if root is not None else csv_path.parent, "image root")
    suffix = csv_path.suffix.lower()
    if suffix == ".parquet":
        table = pd.read_parquet(csv_path)
        table = table.astype({c: str for c in table.columns if table[c].dtype == object})
    else:
        sep = "\t" if suffix == ".tsv" else None
        try:
            table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, sep=sep,
                                engine="python" if sep is None else "c")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                csv.Error) as err:  # csv.Error: the python engine's delimiter sniffing
            raise DataFormatError(f"cannot parse {csv_path} as a table: {err}; pass a "
                                  ".csv or .tsv file with a header row") from err
    table.columns = [str(c).strip() for c in table.columns]
    if rename:
        absent = [k for k in rename if k not in table.columns]
        if absent:
            raise DataFormatError(
                f"{csv_path}: rename= names column(s) {absent} that the table lacks; "
                f"it has {list(table.columns)}."
            )
        table = table.rename(columns=rename)
    if isinstance(required, str):
        required = [required]
    need = [(path_column, "image paths (set path_column=)")]
    need += [(c, f"{c} labels (or rename= one, e.g. {{'subject': {c!r}}})")
             for c in dict.fromkeys(["identity", *required])]
    for col, what in need:
        if col not in table.columns:
            raise DataFormatError(
                f"{csv_path}: label column {col!r} is missing; the table has "
                f"{list(table.columns)}. Add a column of {what}."
            )
    if id_column is not None and id_column not in table.columns:
        raise DataFormatError(
            f"{csv_path}: id_column {id_column!r} is missing; the table has {list(table.columns)}."
        )
    if len(table) == 0:
        raise DataFormatError(f"{csv_path} has a header but no rows.")
    mapping = _resolve_expression_map(expression_map)
    if path_column != "path":
        if "path" in table.columns:
            raise DataFormatError(
                f"{csv_path}: has both {path_column!r} (path_column) and 'path' columns; "
                "drop or rename one."
            )
        table = table.rename(columns={path_column: "path"})
    for k, v in _DEFAULT_LABELS.items():
        if k not in table.columns:
            table[k] = v
    ids = table[id_column] if id_column else table["path"].map(
        lambda p: id_from_relpath(Path(str(p)).as_posix()))
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        lines = [int(i) + 2 for i in dup.index[dup == first]]
        raise DataFormatError(
            f"{csv_path}: duplicate stimulus_id {first!r} on lines {lines} "
            f"({dup.nunique()} duplicated id(s) in all). Each image needs a unique id; "
            "remove the repeated rows or pass id_column= with unique values."
        )
    table = table.assign(stimulus_id=ids.astype(str).to_numpy())
    if id_column and id_column != "stimulus_id":
        table = table.drop(columns=[id_column])

    rejected = Rejections("from_table", strict=strict)
    keep = []
    for pos in range(len(table)):
        where = f"{csv_path.name}, line {pos + 2}"
        p = str(table["path"].iat[pos])
        ident = str(table["identity"].iat[pos])
        if not p:
            rejected.add(where, "empty path")
            continue
        if not ident or ident.lower() == "nan":
            rejected.add(where, f"empty identity for {p}")
            continue
        if mapping is not None:
            code = str(table["expression"].iat[pos])
            if code != "unknown" and code not in mapping:
                rejected.add(where, f"unknown expression code {code!r}; the map knows "
                                    f"{sorted(mapping)}", fix="Add it to expression_map.")
                continue
        full = Path(p) if Path(p).is_absolute() else root / p
        reason = probe_image(full, verify)
        if reason is not None:
            rejected.add(where, f"{p}: {reason}",
                         fix="Fix the path (relative to the root) or the file.")
            continue
        keep.append(pos)
    rej = rejected.frame()
    if not keep:
        raise DataFormatError(
            f"{csv_path}: none of its {len(table)} rows gave a readable image "
            f"(first: {rej['path'].iloc[0]}: {rej['reason'].iloc[0]}). Is root={root} right?"
        )
    table = table.iloc[keep].copy()
    if mapping is not None:
        table["expression_code"] = table["expression"]
        table["expression"] = table["expression"].map(lambda c: mapping.get(c, c))
    table = table.set_index("stimulus_id")
    notes: dict = {"table": str(csv_path)}
    _expression_notes(table, mapping, notes)
    stim = StimulusSet(table, root=root, name=name or csv_path.stem, rejected=rej, notes=notes)
    return handle_duplicates(stim, on_duplicate)
