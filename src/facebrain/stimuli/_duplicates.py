"""Byte-identical image files inside one stimulus set: found, reported, dropped or refused."""

from __future__ import annotations

import hashlib
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import DataFormatError, ParameterError
from ._stimulus_set import REQUIRED_COLUMNS, StimulusSet

__all__ = ["ON_DUPLICATE", "find_duplicates", "handle_duplicates"]

#: What a loader does with byte-identical files (see :func:`handle_duplicates`).
ON_DUPLICATE = ("warn", "drop", "raise", "ignore")


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@public
def find_duplicates(stimuli: StimulusSet) -> pd.DataFrame:
    """Rows whose image files hold exactly the same bytes.

    Files are grouped by size first and only same-size files are hashed
    (SHA-256), so a set without duplicates costs one ``stat`` per file. Rows
    without a file (generated images) are not compared.

    Returns
    -------
    DataFrame
        One row per member of a duplicate group, in table order: ``group``
        (int), ``stimulus_id``, ``path``, ``sha256``, the label columns
        (``identity``, ``expression``, ``view``) and ``labels_differ`` (True
        when the group's members do not all carry the same labels). Empty when
        no two files are identical.

    Examples
    --------
    >>> dups = find_duplicates(load_folder("faces", r"(?P<identity>\\w+)/"))  # doctest: +SKIP
    >>> dups[dups["labels_differ"]]                                          # doctest: +SKIP
    """
    by_size: dict[int, list[int]] = defaultdict(list)
    paths = {}
    for i in range(len(stimuli)):
        p = stimuli.path_of(i)
        if p is None or not p.is_file():
            continue
        paths[i] = p
        by_size[p.stat().st_size].append(i)
    by_hash: dict[str, list[int]] = defaultdict(list)
    for members in by_size.values():
        if len(members) > 1:
            for i in members:
                by_hash[_sha256(paths[i])].append(i)
    groups = sorted((m for m in by_hash.values() if len(m) > 1), key=lambda m: m[0])
    table = stimuli.table
    labels = [c for c in REQUIRED_COLUMNS if c in table.columns]
    rows = []
    for g, members in enumerate(groups):
        lab = table.iloc[members][labels].astype(str)
        differ = bool(len(lab.drop_duplicates()) > 1)
        digest = _sha256(paths[members[0]])
        for i in members:
            row = {"group": g, "stimulus_id": str(table.index[i]),
                   "path": str(table["path"].iloc[i]), "sha256": digest}
            row.update({c: str(table[c].iloc[i]) for c in labels})
            row["labels_differ"] = differ
            rows.append(row)
    return pd.DataFrame(rows, columns=["group", "stimulus_id", "path", "sha256", *labels,
                                       "labels_differ"])


def _describe(dups: pd.DataFrame, limit: int = 5) -> str:
    labels = [c for c in REQUIRED_COLUMNS if c in dups.columns]
    parts = []
    for _, grp in list(dups.groupby("group", sort=True))[:limit]:
        members = ", ".join(
            f"{r.stimulus_id} ({'/'.join(str(getattr(r, c)) for c in labels)})"
            for r in grp.itertuples())
        parts.append(f"[{members}]")
    n = dups["group"].nunique()
    more = f" ... and {n - limit} more group(s)" if n > limit else ""
    return "; ".join(parts) + more


@public
def handle_duplicates(stimuli: StimulusSet, on_duplicate: str = "warn", *,
                      stacklevel: int = 3) -> StimulusSet:
    """Report, drop or refuse byte-identical image files.

    Parameters
    ----------
    stimuli : StimulusSet
    on_duplicate : {"warn", "drop", "raise", "ignore"}, default "warn"
        ``"warn"``: keep every row, warn naming each group of identical files
        with their ids and labels (identity/expression/view); ``"drop"``:
        keep the first row of each group (table order) and move the others to
        ``.rejected`` with the id and labels they duplicate; ``"raise"``: stop
        with a :class:`DataFormatError` naming the groups; ``"ignore"``: skip
        the check. Whatever is found is listed in ``.notes["duplicates"]``.

    Returns
    -------
    StimulusSet
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ParameterError(f"on_duplicate={on_duplicate!r} is not known; allowed: "
                             f"{list(ON_DUPLICATE)}")
    if on_duplicate == "ignore":
        return stimuli
    dups = find_duplicates(stimuli)
    if dups.empty:
        return stimuli
    n_conflict = int(dups.loc[dups["labels_differ"], "group"].nunique())
    n_groups = int(dups["group"].nunique())
    summary = (f"{stimuli.name or 'stimulus set'}: {len(dups)} images in {n_groups} group(s) "
               f"of byte-identical files ({n_conflict} group(s) under different labels): "
               f"{_describe(dups)}")
    if on_duplicate == "raise":
        raise DataFormatError(
            f"{summary}. Remove the copies, or pass on_duplicate='drop' to keep the first of "
            "each group (or 'warn' to keep all)."
        )
    notes = dict(stimuli.notes)
    notes["duplicates"] = dups.to_dict(orient="records")
    if on_duplicate == "warn":
        warnings.warn(f"{summary}. All are kept; pass on_duplicate='drop' to keep only the "
                      "first of each group, or 'raise' to stop.", UserWarning,
                      stacklevel=user_stacklevel())
        stimuli = stimuli.subset(np.arange(len(stimuli)))
        stimuli.notes = notes
        return stimuli
    labels = [c for c in REQUIRED_COLUMNS if c in dups.columns]
    drop, reasons = set(), []
    for _, grp in dups.groupby("group", sort=True):
        first = grp.iloc[0]
        kept = f"{first.stimulus_id} ({'/'.join(str(first[c]) for c in labels)})"
        for _, r in grp.iloc[1:].iterrows():
            drop.add(r["stimulus_id"])
            here = "/".join(str(r[c]) for c in labels)
            reasons.append({"path": r["path"],
                            "reason": f"byte-identical to {kept}; labels here: {here}"})
    warnings.warn(f"{summary}. Dropped {len(drop)} copies (kept the first of each group); "
                  "they are listed in .rejected.", UserWarning, stacklevel=user_stacklevel())
    keep = ~stimuli.table.index.isin(sorted(drop))
    out = stimuli.subset(keep)
    out.rejected = pd.concat([stimuli.rejected, pd.DataFrame(reasons)], ignore_index=True)
    out.notes = notes
    return out
