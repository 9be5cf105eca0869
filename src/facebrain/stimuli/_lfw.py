"""Labeled Faces in the Wild (LFW): image trees and verification pair files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from .._boundary import public
from ..errors import DataFormatError, MissingFileError, ParameterError
from ._loader_utils import IMAGE_EXTENSIONS, Rejections, check_root, iter_files, probe_image
from ._stimulus_set import StimulusSet

__all__ = ["LFW_VARIANTS", "load_lfw", "load_lfw_pairs"]

#: Folder names of the public LFW image trees (original, funneled, deep-funneled)
#: and the one scikit-learn's ``fetch_lfw_*`` unpacks into ``lfw_home``.
LFW_VARIANTS = ("lfw", "lfw_funneled", "lfw-funneled", "lfw-deepfunneled", "lfw_deepfunneled")
_FILE = re.compile(r"^(?P<name>.+)_(?P<num>\d{4})\.jpe?g$", re.IGNORECASE)


def _looks_like_image_tree(folder: Path, probe: int = 20) -> bool:
    n = 0
    for person in sorted(folder.iterdir()):
        if not person.is_dir():
            continue
        for f in person.iterdir():
            m = _FILE.match(f.name)
            if m and m.group("name") == person.name:
                return True
        n += 1
        if n >= probe:
            break
    return False


def _find_image_folder(root: Path, variant: str | None) -> tuple[Path, str]:
    """Locate the folder of person folders inside ``root``."""
    if variant is not None:
        if variant not in LFW_VARIANTS:
            raise ParameterError(f"unknown LFW variant {variant!r}; allowed: {list(LFW_VARIANTS)}")
        for base in (root, root / "lfw_home"):
            if (base / variant).is_dir():
                return base / variant, variant
        if root.name == variant:
            return root, variant
        raise MissingFileError(
            f"no {variant}/ folder in {root} or {root / 'lfw_home'}; pass the folder that "
            "contains it or leave variant=None to detect it."
        )
    if _looks_like_image_tree(root):
        return root, root.name
    found = []
    for base in (root, root / "lfw_home"):
        if base.is_dir():
            for v in LFW_VARIANTS:
                if (base / v).is_dir() and _looks_like_image_tree(base / v):
                    found.append((base / v, v))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataFormatError(
            f"{root} holds several LFW trees: {[str(p) for p, _ in found]}. "
            f"Pick one with variant= (one of {[v for _, v in found]})."
        )
    raise DataFormatError(
        f"no LFW image tree under {root}: expected person folders like "
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg, or one of the folders "
        f"{list(LFW_VARIANTS)} (also inside scikit-learn's lfw_home/). Pass the folder "
        "the LFW tarball was unpacked to."
    )


@public
def load_lfw(
    root: str | os.PathLike,
    *,
    variant: str | None = None,
    strict: bool = False,
    verify: str = "fast",
) -> StimulusSet:
    """Load Labeled Faces in the Wild from a ``Name/Name_0001.jpg`` tree.

    Finds the image folder itself: ``root`` may be the tree (``lfw/``,
    ``lfw_funneled/``, ``lfw-deepfunneled/``), the folder above it, or
    scikit-learn's cache ``~/scikit_learn_data/lfw_home`` (or the folder
    holding ``lfw_home``).

    Parameters
    ----------
    root : path
        Where LFW was unpacked.
    variant : str, optional
        Which tree to read when several are present: one of :data:`LFW_VARIANTS`.
    strict : bool, default False
        Raise on the first misnamed or unreadable file instead of listing it
        in ``.rejected`` with a warning.
    verify : {"fast", "full", "none"}, default "fast"
        How images are checked while the set is built.

    Returns
    -------
    StimulusSet
        Ids ``"Aaron_Peirsol_0001"``; columns ``identity`` (the person's name),
        ``image_num`` (int), ``expression`` and ``view`` (``"unknown"``), ``path``.

    Examples
    --------
    >>> lfw = load_lfw("~/scikit_learn_data/lfw_home")  # doctest: +SKIP
    >>> lfw.table["identity"].value_counts().head(3)      # doctest: +SKIP
    """
    root = check_root(root, "LFW root")
    folder, found_variant = _find_image_folder(root, variant)
    rejected = Rejections("load_lfw", strict=strict, root=folder)
    rows, ignored = [], []
    for path in iter_files(folder):
        rel = path.relative_to(folder)
        m = _FILE.match(path.name)
        if m is None or len(rel.parts) != 2:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                rejected.add(path, "not an LFW image name Name/Name_0001.jpg")
            else:
                ignored.append(rel.as_posix())
            continue
        if m.group("name") != rel.parts[0]:
            rejected.add(
                path,
                f"file name says {m.group('name')!r} but it is in folder {rel.parts[0]}/",
                fix="Move the file to its person's folder.",
            )
            continue
        reason = probe_image(path, verify)
        if reason is not None:
            rejected.add(path, reason, fix="Re-extract the file from the LFW tarball.")
            continue
        rows.append({
            "stimulus_id": path.stem, "identity": m.group("name"),
            "expression": "unknown", "view": "unknown",
            "image_num": int(m.group("num")), "path": rel.as_posix(),
        })
    rej = rejected.frame()
    if not rows:
        raise DataFormatError(
            f"no LFW images found in {folder}"
            + (f" ({len(rej)} file(s) rejected, see the warning)" if len(rej) else "")
            + ". Expected Name/Name_0001.jpg files."
        )
    table = pd.DataFrame(rows).set_index("stimulus_id")
    dup = table.index[table.index.duplicated()].unique().tolist()
    if dup:  # same stem as .jpg and .jpeg
        raise DataFormatError(
            f"{folder}: images {dup[:5]} appear twice (e.g. as .jpg and .jpeg); remove one copy."
        )
    notes = {
        "dataset": "Labeled Faces in the Wild (Huang et al. 2007)",
        "variant": found_variant,
        "expression": "unknown: LFW has no expression labels",
        "view": "unknown: LFW has no pose labels",
    }
    if ignored:
        notes["ignored_non_image_files"] = ignored
    return StimulusSet(table, root=folder, name=f"lfw:{found_variant}", rejected=rej, notes=notes)


@public
def load_lfw_pairs(pairs_file: str | os.PathLike, lfw) -> pd.DataFrame:
    """Read an LFW verification pairs file into stimulus-id pairs.

    Two formats: ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (first line
    ``N``; N matched lines ``name i j`` then N mismatched lines
    ``name1 i name2 j``; fold 0) and ``pairs.txt`` (first line ``10 300``:
    10 folds, each 300 matched then 300 mismatched lines; folds 0..9).
    Fields may be separated by tabs or spaces.

    Parameters
    ----------
    pairs_file : path
        The pairs file.
    lfw : StimulusSet or path
        The set from :func:`load_lfw` (or its root, loaded here). Every image a
        pair names must be in it.

    Returns
    -------
    DataFrame
        Columns ``fold`` (int), ``left``, ``right`` (stimulus ids, str) and
        ``same`` (bool), one row per pair in file order.

    Examples
    --------
    >>> pairs = load_lfw_pairs("lfw_home/pairs.txt", lfw)  # doctest: +SKIP
    >>> pairs.groupby("fold")["same"].mean()                # doctest: +SKIP
    """
    pairs_file = Path(pairs_file).expanduser()
    if not pairs_file.is_file():
        raise MissingFileError(
            f"LFW pairs file not found: {pairs_file}. It is pairs.txt, pairsDevTrain.txt "
            "or pairsDevTest.txt from the LFW site (scikit-learn keeps them in lfw_home/)."
        )
    if not isinstance(lfw, StimulusSet):
        lfw = load_lfw(lfw)
    known = set(lfw.ids)
    folder = lfw.root
    rejected = set(lfw.rejected["path"]) if len(lfw.rejected) else set()

    lines = pairs_file.read_text().splitlines()
    numbered = [(k + 1, ln.split()) for k, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise DataFormatError(f"{pairs_file} is empty; expected a header line like '10 300'.")
    head_no, head = numbered[0]
    try:
        header = [int(t) for t in head]
    except ValueError:
        raise DataFormatError(
            f"{pairs_file}, line {head_no}: header {' '.join(head)!r} is not 'N' (pairsDevTrain/"
            "pairsDevTest) or 'folds N' (pairs.txt)."
        ) from None
    if len(header) == 1:
        n_folds, n = 1, header[0]
    elif len(header) == 2:
        n_folds, n = header
    else:
        raise DataFormatError(
            f"{pairs_file}, line {head_no}: header has {len(header)} numbers; expected 'N' "
            "or 'folds N'."
        )
    body = numbered[1:]
    if len(body) != n_folds * 2 * n:
        raise DataFormatError(
            f"{pairs_file}: header says {n_folds} fold(s) x ({n} matched + {n} mismatched) = "
            f"{n_folds * 2 * n} pairs, but the file has {len(body)} pair lines. The file is "
            "truncated or the header is wrong."
        )

    def sid(name: str, num: str, line_no: int) -> str:
        try:
            k = int(num)
        except ValueError:
            raise DataFormatError(
                f"{pairs_file}, line {line_no}: image number {num!r} is not an integer."
            ) from None
        out = f"{name}_{k:04d}"
        if out not in known:
            rel = f"{name}/{out}.jpg"
            why = "was rejected when the tree was loaded" if rel in rejected else "is missing"
            raise DataFormatError(
                f"{pairs_file}, line {line_no}: the pair names {rel}, which {why} in {folder}. "
                "Use the pairs file that matches this LFW tree, or restore the image."
            )
        return out

    rows = []
    for k, (line_no, tok) in enumerate(body):
        fold, pos = divmod(k, 2 * n)
        matched = pos < n
        want = 3 if matched else 4
        if len(tok) != want:
            kind = "matched 'name i j'" if matched else "mismatched 'name1 i name2 j'"
            raise DataFormatError(
                f"{pairs_file}, line {line_no}: expected a {kind} line ({want} fields) at this "
                f"position (fold {fold}, pair {pos + 1} of {2 * n}); got {' '.join(tok)!r}."
            )
        if matched:
            left, right = sid(tok[0], tok[1], line_no), sid(tok[0], tok[2], line_no)
        else:
            left, right = sid(tok[0], tok[1], line_no), sid(tok[2], tok[3], line_no)
        rows.append({"fold": fold, "left": left, "right": right, "same": matched})
    out = pd.DataFrame(rows, columns=["fold", "left", "right", "same"])
    out["fold"] = out["fold"].astype("int64")
    out["same"] = out["same"].astype(bool)
    out["left"] = out["left"].astype(str)
    out["right"] = out["right"].astype(str)
    return out
