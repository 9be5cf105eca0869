"""VGGFace2 loader: ``split/n000001/0001_01.jpg`` trees, identity metadata, loose crops."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._boundary import public
from ..errors import DataFormatError, MissingFileError, ParameterError
from ._loader_utils import IMAGE_EXTENSIONS, Rejections, check_root, iter_files, probe_image
from ._stimulus_set import StimulusSet

__all__ = ["load_vggface2", "read_vggface2_bboxes", "read_vggface2_meta"]

_IDENT = re.compile(r"^n\d{6}$")
_FILE = re.compile(r"^\d{4}_\d{2}\.jpe?g$", re.IGNORECASE)
_META_COLUMNS = ("Class_ID", "Name", "Sample_Num", "Flag", "Gender")


@public
def read_vggface2_meta(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``identity_meta.csv`` robustly (names may hold commas and quotes).

    The file's rows look like ``n000282, "Carol, Crystal", 311, 1, f``. Quoted
    fields are parsed as CSV; a row with unquoted commas in the name is split
    as first field = id, last three = sample count, flag, gender, and the rest
    joined back into the name.

    Returns
    -------
    DataFrame
        Indexed by ``Class_ID`` (the identity folder name) with columns
        ``name`` (str), ``sample_num`` (int), ``flag`` (int: 1 = training
        identity, 0 = test identity) and ``gender`` (``"female"``/``"male"``).

    Examples
    --------
    >>> meta = read_vggface2_meta("vggface2/identity_meta.csv")  # doctest: +SKIP
    >>> meta.loc["n000282", "name"]                              # doctest: +SKIP
    'Carol, Crystal'
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"VGGFace2 identity_meta file not found: {path}")
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = None
        for fields in reader:
            line = reader.line_num
            if not fields or not "".join(fields).strip():
                continue
            fields = [x.strip() for x in fields]
            if header is None:
                header = fields
                if [h.lower() for h in header[:5]] != [c.lower() for c in _META_COLUMNS]:
                    raise DataFormatError(
                        f"{path}, line {line}: header {header} is not "
                        f"{', '.join(_META_COLUMNS)} (the VGGFace2 identity_meta.csv format)."
                    )
                continue
            if len(fields) < 5:
                raise DataFormatError(
                    f"{path}, line {line}: expected 5 fields (Class_ID, Name, Sample_Num, Flag, "
                    f"Gender); got {len(fields)}: {fields}."
                )
            ident, name = fields[0], ", ".join(fields[1:-3]).strip()
            if len(fields) > 5 and len(name) > 1 and name[0] == name[-1] == '"':
                name = name[1:-1]
            num, flag, gender = fields[-3:]
            try:
                num_i, flag_i = int(num), int(flag)
            except ValueError:
                raise DataFormatError(
                    f"{path}, line {line}: Sample_Num {num!r} and Flag {flag!r} must be integers."
                ) from None
            g = gender.lower()
            if g not in ("m", "f"):
                raise DataFormatError(f"{path}, line {line}: Gender {gender!r} is not 'm' or 'f'.")
            rows.append({"Class_ID": ident, "name": name, "sample_num": num_i,
                         "flag": flag_i, "gender": "female" if g == "f" else "male"})
    if header is None:
        raise DataFormatError(f"{path} is empty; expected the VGGFace2 identity_meta.csv.")
    meta = pd.DataFrame(rows, columns=["Class_ID", "name", "sample_num", "flag", "gender"])
    dup = meta["Class_ID"][meta["Class_ID"].duplicated()].tolist()
    if dup:
        raise DataFormatError(f"{path}: Class_ID values {dup[:5]} appear more than once.")
    return meta.set_index("Class_ID")


@public
def read_vggface2_bboxes(path: str | os.PathLike) -> pd.DataFrame:
    """Read a loose bounding-box CSV (``NAME_ID,X,Y,W,H``) indexed by ``NAME_ID``.

    ``NAME_ID`` is ``"n000002/0001_01"`` (identity folder / file stem).

    Examples
    --------
    >>> bb = read_vggface2_bboxes("bb_landmark/loose_bb_train.csv")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"VGGFace2 bounding-box file not found: {path}")
    bb = pd.read_csv(path, dtype={"NAME_ID": str}, skipinitialspace=True)
    bb.columns = [str(c).strip() for c in bb.columns]
    need = ["NAME_ID", "X", "Y", "W", "H"]
    missing = [c for c in need if c not in bb.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; has {list(bb.columns)}. Expected the "
            "loose_bb_{train,test}.csv format NAME_ID,X,Y,W,H."
        )
    bb["NAME_ID"] = bb["NAME_ID"].str.strip()
    for c in need[1:]:
        vals = pd.to_numeric(bb[c], errors="coerce")
        bad = np.flatnonzero(vals.isna().to_numpy())
        if len(bad):
            k = int(bad[0])
            raise DataFormatError(
                f"{path}, line {k + 2}: {c} value {bb[c].iloc[k]!r} is not a number."
            )
        bb[c] = vals.astype(float)
    if (bb["W"] <= 0).any() or (bb["H"] <= 0).any():
        k = int(np.flatnonzero(((bb["W"] <= 0) | (bb["H"] <= 0)).to_numpy())[0])
        raise DataFormatError(
            f"{path}, line {k + 2}: box of {bb['NAME_ID'].iloc[k]} has W or H <= 0."
        )
    dup = bb["NAME_ID"][bb["NAME_ID"].duplicated()].tolist()
    if dup:
        raise DataFormatError(f"{path}: NAME_ID values {dup[:5]} appear more than once.")
    return bb.set_index("NAME_ID")[need[1:]]


def _auto(root: Path, names: list[str]) -> Path | None:
    for n in names:
        if (root / n).is_file():
            return root / n
    return None


@public
def load_vggface2(
    root: str | os.PathLike,
    split: str,
    *,
    identity_meta=None,
    bboxes=None,
    max_per_identity: int | None = None,
    bbox_margin: float = 0.0,
    strict: bool = False,
    verify: str = "fast",
) -> StimulusSet:
    """Load a VGGFace2 split (``root/split/n000001/0001_01.jpg``).

    Parameters
    ----------
    root : path
        The folder holding ``train/`` and/or ``test/``.
    split : {"train", "test"}
        Which split folder to read.
    identity_meta : path, False or None
        ``identity_meta.csv``; None looks for it in ``root`` and ``root/meta``;
        False skips it. Adds ``name``, ``gender``, ``sample_num``, ``flag``.
    bboxes : path, False or None
        Loose bounding boxes ``loose_bb_{split}.csv``; None looks in
        ``root/bb_landmark``, ``root`` and ``root/meta/bb_landmark``; False skips
        them. With boxes, :meth:`StimulusSet.load` returns the crop (the table
        gets ``bbox_x, bbox_y, bbox_w, bbox_h``; reading stays lazy). Images
        without a box are rejected, so a set is never half cropped.
    max_per_identity : int, optional
        Keep the first ``k`` images of each identity in file-name order.
    bbox_margin : float, default 0.0
        Grow each box by this fraction of its size on every side.
    strict : bool, default False
        Raise on the first bad file instead of listing it in ``.rejected``.
    verify : {"fast", "full", "none"}, default "fast"
        How images are checked while the set is built ("none" is much quicker
        on the full 3.1 M-image train split; bad files then fail at ``load``).

    Returns
    -------
    StimulusSet
        Ids ``"n000002/0001_01"``; ``identity`` is the ``n...`` folder;
        ``expression`` and ``view`` are ``"unknown"`` (VGGFace2 has neither label).

    Examples
    --------
    >>> vgg = load_vggface2("/data/vggface2", "test", max_per_identity=20)  # doctest: +SKIP
    """
    root = check_root(root, "VGGFace2 root")
    if split not in ("train", "test"):
        raise ParameterError(f"split must be 'train' or 'test'; got {split!r}")
    folder = root / split
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise MissingFileError(
            f"VGGFace2 split folder not found: {folder} (folders in {root}: {have}). Pass the "
            f"folder that contains {split}/ as root."
        )
    if max_per_identity is not None and (int(max_per_identity) != max_per_identity
                                         or max_per_identity < 1):
        raise ParameterError(f"max_per_identity must be a positive int; got {max_per_identity!r}")
    if not np.isfinite(bbox_margin) or bbox_margin < 0:
        raise ParameterError(f"bbox_margin must be >= 0; got {bbox_margin!r}")

    notes: dict = {
        "dataset": "VGGFace2 (Cao et al. 2018)",
        "split": split,
        "expression": "unknown: VGGFace2 has no expression labels",
        "view": "unknown: VGGFace2 has no pose labels per image",
    }
    meta_path = identity_meta
    if identity_meta is None:
        meta_path = _auto(root, ["identity_meta.csv", "meta/identity_meta.csv"])
    meta = read_vggface2_meta(meta_path) if meta_path not in (None, False) else None
    bb_path = bboxes
    if bboxes is None:
        bb_path = _auto(root, [f"bb_landmark/loose_bb_{split}.csv", f"loose_bb_{split}.csv",
                               f"meta/bb_landmark/loose_bb_{split}.csv"])
    bb = read_vggface2_bboxes(bb_path) if bb_path not in (None, False) else None
    notes["identity_meta"] = str(meta_path) if meta is not None else "not used"
    notes["bboxes"] = str(bb_path) if bb is not None else "not used (images are not cropped)"

    boxes = dict(zip(bb.index, bb.to_numpy(float).tolist())) if bb is not None else None
    rejected = Rejections("load_vggface2", strict=strict, root=folder)
    per_ident: dict[str, int] = {}
    rows, ignored = [], []
    for path in iter_files(folder):
        rel = path.relative_to(folder)
        ok = len(rel.parts) == 2 and _IDENT.match(rel.parts[0]) and _FILE.match(path.name)
        if not ok:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                rejected.add(path, "not a VGGFace2 image path n000001/0001_01.jpg")
            else:
                ignored.append(rel.as_posix())
            continue
        ident = rel.parts[0]
        if max_per_identity is not None and per_ident.get(ident, 0) >= max_per_identity:
            continue
        sid = f"{ident}/{path.stem}"
        row = {"stimulus_id": sid, "identity": ident, "expression": "unknown",
               "view": "unknown", "path": rel.as_posix(), "split": split}
        if boxes is not None:
            if sid not in boxes:
                rejected.add(path, f"no bounding box for {sid} in {Path(bb_path).name}",
                             fix="Use the loose_bb file of the same split.")
                continue
            x, y, w, h = boxes[sid]
            row.update(bbox_x=float(x), bbox_y=float(y), bbox_w=float(w), bbox_h=float(h),
                       bbox_margin=float(bbox_margin))
        reason = probe_image(path, verify)
        if reason is not None:
            rejected.add(path, reason)
            continue
        per_ident[ident] = per_ident.get(ident, 0) + 1
        rows.append(row)
    rej = rejected.frame()
    if not rows:
        raise DataFormatError(
            f"no VGGFace2 images found in {folder}"
            + (f" ({len(rej)} file(s) rejected, see the warning)" if len(rej) else "")
            + ". Expected identity folders like n000001/ holding 0001_01.jpg files."
        )
    table = pd.DataFrame(rows).set_index("stimulus_id")
    if meta is not None:
        joined = meta.reindex(table["identity"])
        missing = sorted(set(table["identity"][joined["name"].isna().to_numpy()]))
        table["name"] = joined["name"].fillna("").to_numpy()
        table["gender"] = joined["gender"].fillna("unknown").to_numpy()
        table["sample_num"] = joined["sample_num"].to_numpy()
        table["flag"] = joined["flag"].to_numpy()
        if missing:
            notes["identities_missing_from_meta"] = missing
    if ignored:
        notes["ignored_non_image_files"] = ignored
    return StimulusSet(table, root=folder, name=f"vggface2:{split}", rejected=rej, notes=notes)
