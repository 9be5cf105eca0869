"""StimulusSet: an ordered set of face images with labels.

The table (a pandas DataFrame indexed by ``stimulus_id``) is the one source of
truth for labels. Pixels come either from files (the ``path`` column, relative
to ``root``) or from an *image source*: a picklable callable that renders or
looks up image ``i`` on demand (synthetic faces, FER2013's in-memory pixels).
Images are decoded lazily; nothing holds the whole set in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._boundary import public
from .._utils import atomic_path
from ..errors import (
    DataFormatError,
    IndexOutOfRangeError,
    MissingFileError,
    MissingKeyError,
    ParameterError,
    ShapeError,
)
from ._images import read_image, resize_image

__all__ = ["CANONICAL_EXPRESSIONS", "StimulusSet"]

#: Canonical expression codes shared by every loader. Datasets with other
#: conditions keep their own codes and document them.
CANONICAL_EXPRESSIONS = (
    "neutral",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
)

REQUIRED_COLUMNS = ("identity", "expression", "view")

#: Optional columns that make :meth:`StimulusSet.load` crop a file's image to a
#: bounding box (x, y = top-left, width, height, in pixels of the file), e.g.
#: VGGFace2's loose crops. ``bbox_margin`` (optional) grows the box by that
#: fraction of its size on each side. Rows with NaN boxes are not cropped.
BBOX_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")


@public
class StimulusSet:
    """An ordered set of face images with labels.

    Parameters
    ----------
    table : DataFrame
        One row per image, indexed by unique string ``stimulus_id``, with at
        least ``identity``, ``expression`` and ``view`` columns. A ``path``
        column (relative to ``root`` or absolute) locates image files.
    root : path, optional
        Folder that relative paths are resolved against.
    image_source : callable, optional
        ``image_source(i) -> ndarray (H, W, 3) uint8`` for the ``i``-th row of
        the *original* table it was built for; used for rows without a path.
        Must be picklable (a module-level class, not a lambda) so DataLoader
        workers and dask can use it. ``source_index`` maps rows to it.
    name : str
        Short name of the set (``"synthetic_kdef"``, ``"kdef"``...).
    rejected : DataFrame, optional
        Files a lenient loader skipped, with a ``reason`` column.
    notes : dict, optional
        Free-form metadata (non-canonical expression codes, quirks applied).

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> table = pd.DataFrame({"identity": ["a", "b"], "expression": ["happy", "sad"],
    ...                       "view": ["S", "S"]}, index=pd.Index(["s0", "s1"], name="stimulus_id"))
    >>> imgs = ArraySource(np.zeros((2, 8, 8, 3), np.uint8))
    >>> s = StimulusSet(table, image_source=imgs)
    >>> len(s), s.load("s1").shape
    (2, (8, 8, 3))
    """

    def __init__(
        self,
        table: pd.DataFrame,
        *,
        root: str | os.PathLike | None = None,
        image_source: Callable[[int], np.ndarray] | None = None,
        source_index: Sequence[int] | None = None,
        name: str = "",
        rejected: pd.DataFrame | None = None,
        notes: dict | None = None,
    ) -> None:
        table = table.copy()
        if table.index.name != "stimulus_id":
            if "stimulus_id" in table.columns:
                table = table.set_index("stimulus_id")
            else:
                raise DataFormatError(
                    "StimulusSet table needs a 'stimulus_id' index or column; got index "
                    f"{table.index.name!r} and columns {list(table.columns)}."
                )
        table.index = table.index.astype(str)
        table.index.name = "stimulus_id"
        dup = table.index[table.index.duplicated()].unique().tolist()
        if dup:
            raise DataFormatError(
                f"duplicate stimulus_id values: {dup[:5]}{' ...' if len(dup) > 5 else ''} "
                f"({len(dup)} in all). Each image needs a unique id; make ids from the "
                "relative path or add a session/repeat suffix."
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise DataFormatError(
                f"StimulusSet table lacks required column(s) {missing}; it has "
                f"{list(table.columns)}. Add them (use 'unknown' or a constant where a "
                "dataset has no such label)."
            )
        for col in REQUIRED_COLUMNS:
            table[col] = table[col].astype(str)
        if image_source is None and "path" not in table.columns:
            raise DataFormatError(
                "StimulusSet needs a 'path' column or an image_source to read pixels from."
            )
        self.table = table
        self.root = Path(root) if root is not None else None
        self.image_source = image_source
        if source_index is None:
            source_index = np.arange(len(table))
        self.source_index = np.asarray(source_index, dtype=np.int64)
        if len(self.source_index) != len(table):
            raise ParameterError(
                f"source_index has {len(self.source_index)} entries for {len(table)} rows."
            )
        self.name = name
        self.rejected = (
            rejected if rejected is not None else pd.DataFrame(columns=["path", "reason"])
        )
        self.notes = dict(notes or {})

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        n_id = self.table["identity"].nunique()
        n_ex = self.table["expression"].nunique()
        return (
            f"<StimulusSet {self.name or '(unnamed)'}: {len(self)} images, "
            f"{n_id} identities, {n_ex} expressions>"
        )

    @property
    def ids(self) -> pd.Index:
        """The ``stimulus_id`` values, in order."""
        return self.table.index

    def _position(self, i_or_id: int | str) -> int:
        if isinstance(i_or_id, (int, np.integer)):
            i = int(i_or_id)
            if not -len(self) <= i < len(self):
                raise IndexOutOfRangeError(f"index {i} out of range for {len(self)} stimuli")
            return i % len(self)
        try:
            return int(self.table.index.get_loc(str(i_or_id)))
        except KeyError:
            raise MissingKeyError(
                f"stimulus_id {i_or_id!r} is not in this StimulusSet "
                f"(first ids: {list(self.ids[:3])})"
            ) from None

    def path_of(self, i_or_id: int | str) -> Path | None:
        """Absolute path of an image, or None for generated / in-memory images."""
        if "path" not in self.table.columns:
            return None
        p = self.table["path"].iloc[self._position(i_or_id)]
        if p is None or (isinstance(p, float) and np.isnan(p)) or p == "":
            return None
        p = Path(p)
        if not p.is_absolute() and self.root is not None:
            p = self.root / p
        return p

    def load(self, i_or_id: int | str, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """Return image ``i_or_id`` as an RGB ``uint8`` array of shape (H, W, 3).

        Grayscale sources are expanded to three channels. ``size`` (int for a
        square, or ``(height, width)``) resizes with antialiasing.
        """
        i = self._position(i_or_id)
        path = self.path_of(i)
        if path is not None:
            img = self._crop(i, read_image(path))
        elif self.image_source is not None:
            img = np.asarray(self.image_source(int(self.source_index[i])))
        else:
            raise DataFormatError(f"stimulus {self.ids[i]!r} has no path and no image source")
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        elif img.ndim == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        if img.dtype != np.uint8:
            raise DataFormatError(
                f"image source returned dtype {img.dtype} for {self.ids[i]!r}; expected uint8"
            )
        if size is not None:
            img = resize_image(img, size)
        return img

    def _crop(self, i: int, img: np.ndarray) -> np.ndarray:
        """Apply the row's bounding box (see :data:`BBOX_COLUMNS`) to a file image."""
        if not all(c in self.table.columns for c in BBOX_COLUMNS):
            return img
        row = self.table.iloc[i]
        box = [_box_value(row[c], c, self.ids[i]) for c in BBOX_COLUMNS]
        if any(np.isnan(b) for b in box):
            return img
        margin = 0.0
        if "bbox_margin" in self.table.columns:
            margin = _box_value(row["bbox_margin"], "bbox_margin", self.ids[i])
            margin = 0.0 if np.isnan(margin) else margin
        from ._images import bbox_crop

        try:
            return np.ascontiguousarray(bbox_crop(img, *box, margin=margin))
        except DataFormatError as err:
            raise DataFormatError(
                f"stimulus {self.ids[i]!r} ({self.path_of(i)}): {err}. Fix its bbox_* columns."
            ) from err

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.load(i)

    # ------------------------------------------------------------- selection
    def subset(self, selector) -> StimulusSet:
        """Return the rows picked by a boolean mask, positions, ids or a query string.

        Examples
        --------
        >>> from facebrain.stimuli import synthetic_kdef
        >>> s = synthetic_kdef()
        >>> len(s.subset("view == 'S' and expression != 'neutral'"))
        840
        >>> len(s.subset(s.table["identity"].isin(["F01", "M02"])))
        140
        """
        if isinstance(selector, str):
            try:
                pos = np.flatnonzero(self.table.index.isin(self.table.query(selector).index))
            except Exception as err:  # pandas raises many types for a bad query
                raise ParameterError(
                    f"could not evaluate query {selector!r} on columns "
                    f"{list(self.table.columns)}: {err}"
                ) from err
        else:
            sel = np.asarray(selector)
            if sel.dtype == bool:
                if sel.shape != (len(self),):
                    raise ShapeError(
                        f"boolean mask has shape {sel.shape}; expected ({len(self)},)"
                    )
                pos = np.flatnonzero(sel)
            elif sel.dtype.kind in "iu":
                pos = sel.astype(np.int64)
            else:
                pos = np.array([self._position(str(s)) for s in sel], dtype=np.int64)
        return StimulusSet(
            self.table.iloc[pos],
            root=self.root,
            image_source=self.image_source,
            source_index=self.source_index[pos],
            name=self.name,
            rejected=self.rejected,
            notes=self.notes,
        )

    def labels(self, column: str) -> tuple[np.ndarray, list[str]]:
        """Integer codes and the sorted category list of a label column.

        Canonical expressions keep their canonical order when the column is
        ``expression``; other columns are sorted.
        """
        if column not in self.table.columns:
            raise MissingKeyError(
                f"label column {column!r} not found; available: {list(self.table.columns)}"
            )
        values = self.table[column].astype(str)
        cats = sorted(values.unique())
        if column == "expression":
            canon = [c for c in CANONICAL_EXPRESSIONS if c in cats]
            cats = canon + [c for c in cats if c not in canon]
        lookup = {c: k for k, c in enumerate(cats)}
        return values.map(lookup).to_numpy(np.int64), cats

    # ----------------------------------------------------------------- torch
    def to_torch(self, transform: Callable[[np.ndarray], object] | None = None):
        """A ``torch.utils.data.Dataset`` yielding ``(transform(image), index)``."""
        from ._torch import StimulusDataset

        return StimulusDataset(self, transform)

    # ------------------------------------------------------------- manifests
    def save(self, path: str | os.PathLike, *, images_dir: str = "images") -> Path:
        """Write a CSV or Parquet manifest (by suffix); relative paths stay relative.

        Rows without a file (generated or in-memory images) are written as PNG
        files under ``images_dir`` beside the manifest, so the saved set is
        complete on its own. The manifest is written atomically.
        """
        from PIL import Image

        path = Path(path)
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise ParameterError(f"manifest must end in .csv or .parquet; got {path.name!r}")
        table = self.table.copy()
        if "path" not in table.columns:
            table["path"] = ""
        table["path"] = table["path"].fillna("").astype(str)
        base = path.parent.resolve()
        new_paths = []
        for i, sid in enumerate(table.index):
            p = self.path_of(i)
            if p is None:
                rel = Path(images_dir) / f"{_safe_name(sid)}.png"
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(base / rel, suffix=".png") as tmp:
                    Image.fromarray(self.load(i)).save(tmp, format="PNG")
                new_paths.append(rel.as_posix())
            else:
                p = p.resolve()
                try:
                    new_paths.append(p.relative_to(base).as_posix())
                except ValueError:
                    new_paths.append(str(p))
        table["path"] = new_paths
        out = table.reset_index()
        with atomic_path(path, suffix=path.suffix) as tmp:
            if path.suffix.lower() == ".csv":
                out.to_csv(tmp, index=False)
            else:
                out.to_parquet(tmp, index=False)
        return path

    @classmethod
    def load_manifest(cls, path: str | os.PathLike, *, name: str | None = None) -> StimulusSet:
        """Read a manifest written by :meth:`save` (or by hand); paths relative to it."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"manifest not found: {path}")
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = read_manifest_csv(path)
        if "stimulus_id" not in table.columns:
            raise DataFormatError(
                f"{path}: manifest has no 'stimulus_id' column (columns: {list(table.columns)})"
            )
        return cls(table, root=path.parent, name=name or path.stem)


#: Columns read as text (never as numbers or missing values) from manifests and
#: stage tables: an identity called ``NA``, ``None`` or ``null`` stays that string,
#: and ``"01"`` keeps its zero.
TEXT_COLUMNS = ("stimulus_id", *REQUIRED_COLUMNS, "path", "session", "gender", "split",
                "expression_code", "source_path", "name")


def read_manifest_csv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """Read a manifest / stage table CSV so that ``save()`` round-trips exactly.

    Label columns (:data:`TEXT_COLUMNS`) are text with no missing-value
    parsing (``"NA"``, ``"None"``, ``"null"``, ``"nan"`` stay strings). In the
    other columns only an empty cell is missing (NaN); numbers are parsed as
    numbers. pandas' default would turn ``NA``/``None``/``null`` into NaN.
    """
    header = pd.read_csv(path, nrows=0, **kwargs).columns
    text = [c for c in header if c in TEXT_COLUMNS]
    return pd.read_csv(
        path, dtype={c: str for c in text}, keep_default_na=False,
        na_values={c: [""] for c in header if c not in TEXT_COLUMNS}, **kwargs,
    )


def _box_value(value, column: str, sid) -> float:
    """A bbox cell as float; an empty cell (or None/NaN) means "no crop" (NaN)."""
    if value is None:
        return float("nan")
    if isinstance(value, str):
        if not value.strip():
            return float("nan")
        try:
            return float(value)
        except ValueError:
            raise DataFormatError(
                f"stimulus {sid!r}: {column} = {value!r} is not a number. Bounding-box "
                "cells hold pixels; leave the cell empty for no crop."
            ) from None
    return float(value)


def _safe_name(sid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in sid)


@public
class ArraySource:
    """Picklable image source over an in-memory array of shape (n, H, W[, C])."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __call__(self, i: int) -> np.ndarray:
        return self.images[i]
