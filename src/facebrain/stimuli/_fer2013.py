"""FER2013 loader: 48x48 grayscale faces stored as pixel strings in one CSV."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._boundary import public
from ..errors import DataFormatError, MissingFileError
from ._loader_utils import Rejections, expression_map
from ._stimulus_set import ArraySource, StimulusSet

__all__ = ["FER_SPLITS", "load_fer2013"]

_SIDE = 48
#: ``Usage`` value -> ``split`` (PublicTest is the usual validation set).
FER_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def _parse_pixels(text: str) -> np.ndarray | str:
    """Pixels of one row as uint8 (2304,), or the reason they cannot be."""
    try:  # fast path: numpy's C text parser (about 4x faster than split + array)
        with warnings.catch_warnings():  # numpy < 2 warns (and stops early) where 2 raises
            warnings.simplefilter("ignore", DeprecationWarning)
            vals = np.fromstring(text, dtype=np.int64, sep=" ")
        if vals.size == _SIDE * _SIDE and vals.min() >= 0 and vals.max() <= 255:
            return vals.astype(np.uint8)
    except ValueError:
        pass
    tokens = text.split()  # slow path, only to say what is wrong
    if len(tokens) != _SIDE * _SIDE:
        return f"has {len(tokens)} pixel values; a 48x48 image needs {_SIDE * _SIDE}"
    bad = next((t for t in tokens if not t.lstrip("+-").isdigit()), None)
    if bad is not None:
        return f"pixel value {bad!r} is not an integer"
    vals = np.array(tokens, dtype=np.int64)
    out = vals[(vals < 0) | (vals > 255)]
    if out.size:
        return f"pixel value {int(out[0])} is outside 0..255"
    return vals.astype(np.uint8)


@public
def load_fer2013(csv_path: str | os.PathLike, *, strict: bool = True) -> StimulusSet:
    """Load FER2013 (``emotion,pixels,Usage``) into an in-memory StimulusSet.

    Images are 48x48 grayscale (expanded to RGB by :meth:`StimulusSet.load`)
    held in one ``uint8`` array of shape (n_images, 48, 48). Emotion codes
    0..6 map to ``angry, disgusted, fearful, happy, sad, surprised, neutral``.
    The Kaggle ``train.csv`` (no ``Usage``) and ``test.csv`` (no ``emotion``;
    expression ``"unknown"``) variants are read too.

    Parameters
    ----------
    csv_path : path
        ``fer2013.csv``.
    strict : bool, default True
        A bad row (wrong pixel count, non-numeric or out-of-range pixel,
        unknown emotion code) stops with an error naming its line. With
        ``strict=False`` such rows are skipped, listed in ``.rejected`` (``path``
        is ``"fer2013.csv, line N"``) and named in a warning.

    Returns
    -------
    StimulusSet
        Ids ``"fer2013_00000"`` (the data row number, stable when rows are
        rejected); columns ``identity`` (``"unknown"``: FER2013 does not say who
        is pictured), ``expression``, ``view`` (``"unknown"``), ``emotion``
        (the original code), ``Usage`` and ``split`` (train/val/test).

    Examples
    --------
    >>> fer = load_fer2013("fer2013/fer2013.csv")             # doctest: +SKIP
    >>> fer.subset("split == 'test'").labels("expression")[1]  # doctest: +SKIP
    """
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise MissingFileError(
            f"FER2013 CSV not found: {path}. Pass the fer2013.csv file from the Kaggle release."
        )
    names = expression_map("fer2013")
    rejected = Rejections("load_fer2013", strict=strict)
    images: list[np.ndarray] = []
    rows: list[dict] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DataFormatError(f"{path} is empty; expected a header 'emotion,pixels,Usage'.")
        header = [h.strip() for h in header]
        if "pixels" not in header:
            raise DataFormatError(
                f"{path}, line 1: no 'pixels' column in header {header}; expected "
                "'emotion,pixels,Usage' (the FER2013 format)."
            )
        i_pix = header.index("pixels")
        i_emo = header.index("emotion") if "emotion" in header else None
        i_use = header.index("Usage") if "Usage" in header else None
        k = -1
        for fields in reader:
            line = reader.line_num
            if not fields or not "".join(fields).strip():
                continue
            k += 1
            where = f"{path.name}, line {line}"
            if len(fields) != len(header):
                rejected.add(where, f"has {len(fields)} fields; the header has {len(header)}")
                continue
            pix = _parse_pixels(fields[i_pix])
            if isinstance(pix, str):
                rejected.add(where, pix, fix="Re-download fer2013.csv (the row is corrupt), "
                             "or pass strict=False to skip bad rows.")
                continue
            row = {"stimulus_id": f"fer2013_{k:05d}", "identity": "unknown", "view": "unknown"}
            if i_emo is not None:
                code = fields[i_emo].strip()
                if code not in names:
                    rejected.add(
                        where, f"unknown emotion code {code!r}; FER2013 codes are 0..6",
                        fix="Fix the emotion column of that row.",
                    )
                    continue
                row["expression"] = names[code]
                row["emotion"] = int(code)
            else:
                row["expression"] = "unknown"
            if i_use is not None:
                usage = fields[i_use].strip()
                row["Usage"] = usage
                row["split"] = FER_SPLITS.get(usage, usage)
            images.append(pix.reshape(_SIDE, _SIDE))
            rows.append(row)
    rej = rejected.frame()
    if not rows:
        raise DataFormatError(
            f"{path} has no usable rows"
            + (f" ({len(rej)} rejected, see the warning)" if len(rej) else "")
            + "; expected 'emotion,pixels,Usage' rows with 2304 pixel values each."
        )
    table = pd.DataFrame(rows).set_index("stimulus_id")
    notes = {
        "dataset": "FER2013 (Goodfellow et al. 2013)",
        "identity": "unknown: FER2013 does not label who is pictured; identity-based "
                    "analyses are not possible",
        "view": "unknown",
        "emotion_codes": {int(c): n for c, n in names.items()},
    }
    if i_emo is None:
        notes["expression"] = "unknown: this CSV has no emotion column (Kaggle test.csv)"
    return StimulusSet(
        table, image_source=ArraySource(np.stack(images)), name="fer2013",
        rejected=rej, notes=notes,
    )
