"""Shared plumbing for the dataset loaders: roots, image probing, rejections, tables.

Every loader follows the same rules:

* a missing or empty root, or a pattern that matches nothing, stops with an
  error that names the path and says how to fix it;
* a problem with one file (unreadable, truncated, misnamed, duplicate, unknown
  code) is an error when ``strict=True``; otherwise the file goes to the
  set's ``.rejected`` table with the reason and a single warning names the
  rejected files, so a partial set is never silent. Loaders that *discover*
  files in a tree (KDEF, LFW, VGGFace2, ``load_folder``) default to
  ``strict=False`` (trees hold stray files); loaders told exactly which images
  exist (``load_fer2013``, ``from_table``) default to ``strict=True``;
* reference tables (label maps, known dataset quirks) are read from the
  installed package with :mod:`importlib.resources`.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import (
    DataFormatError,
    MissingFileError,
    MissingKeyError,
    NotAFolderError,
    ParameterError,
    ParameterTypeError,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SYSTEM_FILES",
    "VERIFY_MODES",
    "Rejections",
    "check_root",
    "data_path",
    "expression_map",
    "id_from_relpath",
    "iter_files",
    "probe_image",
    "read_data_table",
]

#: File extensions treated as images without opening them (lower case).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm",
     ".tif", ".tiff", ".webp"}
)

#: Operating-system litter skipped silently (counted in ``.notes``).
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db"})

#: How hard loaders check images when they build a set.
#: ``"fast"``: open the header with Pillow and check the file's end marker
#: (JPEG EOI, PNG IEND, GIF trailer); files that fail are fully decoded, so
#: trailing padding is not mistaken for truncation. ``"full"``: decode every
#: image. ``"none"``: only check the file exists (errors surface at ``load``).
VERIFY_MODES = ("fast", "full", "none")


# --------------------------------------------------------------------- tables
@public
def data_path(name: str) -> Path:
    """Path of a reference table shipped in ``facebrain/data``.

    Parameters
    ----------
    name : str
        File name inside the package's ``data`` folder, e.g. ``"kdef_quirks.csv"``.

    Returns
    -------
    path : Path
        Location of the installed file.

    Examples
    --------
    >>> from facebrain.stimuli._loader_utils import data_path
    >>> data_path("expression_codes.csv").name
    'expression_codes.csv'
    """
    base = resources.files("facebrain").joinpath("data")
    res = base.joinpath(name)
    if not res.is_file():
        available = sorted(
            p.name for p in base.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        raise MissingFileError(
            f"no reference table {name!r} in facebrain/data; available: {available}. "
            "Reinstall facebrain if the folder is empty."
        )
    return Path(str(res))


@lru_cache(maxsize=16)
def _read_table_cached(name: str) -> pd.DataFrame:
    path = data_path(name)
    return pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")


@public
def read_data_table(name: str) -> pd.DataFrame:
    """Read a CSV reference table from ``facebrain/data`` (all columns as str).

    Lines starting with ``#`` are comments. A fresh copy is returned each call.

    Examples
    --------
    >>> from facebrain.stimuli._loader_utils import read_data_table
    >>> codes = read_data_table("expression_codes.csv")
    >>> codes.query("dataset == 'kdef' and code == 'AF'")["expression"].item()
    'fearful'
    """
    return _read_table_cached(name).copy()


def expression_map(dataset: str) -> dict[str, str]:
    """Code -> expression name for ``dataset`` from ``expression_codes.csv``.

    Examples
    --------
    >>> expression_map("fer2013")["0"]
    'angry'
    """
    table = read_data_table("expression_codes.csv")
    rows = table[table["dataset"] == dataset]
    if rows.empty:
        raise MissingKeyError(
            f"dataset {dataset!r} is not in expression_codes.csv; known: "
            f"{sorted(table['dataset'].unique())}. Pass a dict instead."
        )
    return dict(zip(rows["code"], rows["expression"]))


# ---------------------------------------------------------------------- roots
def check_root(root, what: str = "dataset root") -> Path:
    """Return ``root`` as a Path after checking it is an existing folder."""
    if root is None:
        raise ParameterTypeError(f"{what} must be a path; got None")
    root = Path(root).expanduser()
    if not root.exists():
        parent = root.parent
        hint = ""
        if parent.is_dir():
            near = sorted(p.name for p in parent.iterdir())[:8]
            hint = f" {parent} contains: {near}."
        raise MissingFileError(
            f"{what} not found: {root}.{hint} Pass the folder where the dataset was unpacked."
        )
    if not root.is_dir():
        raise NotAFolderError(
            f"{what} must be a folder, but {root} is a file. Pass its parent folder."
        )
    return root


def is_system_file(name: str) -> bool:
    low = name.lower()
    return low in SYSTEM_FILES or name.startswith(".")


def iter_files(root: Path, *, skipped: list | None = None) -> Iterator[Path]:
    """All regular files under ``root`` in sorted order, hidden/system files skipped.

    Hidden folders (``.git``, ``__MACOSX``) are not entered.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d != "__MACOSX"
        )
        for name in sorted(filenames):
            if is_system_file(name):
                if skipped is not None:
                    skipped.append(os.path.join(dirpath, name))
                continue
            yield Path(dirpath) / name


def id_from_relpath(rel: str) -> str:
    """Stimulus id from a relative POSIX path: the path minus a known image extension.

    ``"subject01.happy"`` (Yale faces, no extension) keeps its dot suffix.
    """
    stem, ext = os.path.splitext(rel)
    return stem if ext.lower() in IMAGE_EXTENSIONS else rel


# ------------------------------------------------------------------- probing
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82", "GIF": b";"}


def probe_image(path: Path, verify: str = "fast") -> str | None:
    """Return ``None`` if ``path`` is a decodable image, else the reason it is not.

    Whether a file is an image is decided by opening it with Pillow, not by
    its extension. See :data:`VERIFY_MODES` for ``verify``.
    """
    if verify not in VERIFY_MODES:
        raise ParameterError(f"verify must be one of {VERIFY_MODES}; got {verify!r}")
    if not path.is_file():
        return "file not found"
    if verify == "none":
        return None
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
                if verify == "fast" and fmt in _END_MARKERS and _tail_ok(path, _END_MARKERS[fmt]):
                    return None
                im.load()  # full decode: "full" mode, other formats, suspicious tails
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return f"decompression bomb, not decoded ({err})"
    except UnidentifiedImageError:
        return "not an image Pillow can decode"
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        return f"cannot decode image ({err})"


def _tail_ok(path: Path, marker: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64))
        tail = f.read().rstrip(b"\x00\r\n ")
    return tail.endswith(marker)


# ---------------------------------------------------------------- rejections
class Rejections:
    """Collects files a loader skips; raises instead when ``strict``."""

    def __init__(self, dataset: str, *, strict: bool, root: Path | None = None) -> None:
        self.dataset = dataset
        self.strict = bool(strict)
        self.root = root
        self.rows: list[dict] = []

    def _show(self, path) -> str:
        if isinstance(path, Path) and self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(path)

    def add(self, path, reason: str, *, fix: str = "") -> None:
        """Record ``path`` as rejected (or raise :class:`DataFormatError` when strict)."""
        shown = self._show(path)
        if self.strict:
            msg = f"{self.dataset}: {shown}: {reason}."
            if fix:
                msg += f" {fix}"
            msg += " (Pass strict=False to skip such files and list them in .rejected.)"
            raise DataFormatError(msg)
        self.rows.append({"path": shown, "reason": reason})

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, *, warn: bool = True, stacklevel: int = 3) -> pd.DataFrame:
        """The rejected rows as a DataFrame ``path, reason``; warns naming them."""
        df = pd.DataFrame(self.rows, columns=["path", "reason"])
        if warn and len(df):
            head = "; ".join(f"{r.path} ({r.reason})" for r in df.head(10).itertuples())
            more = f" ... and {len(df) - 10} more" if len(df) > 10 else ""
            warnings.warn(
                f"{self.dataset}: skipped {len(df)} file(s): {head}{more}. "
                "They are listed in the set's .rejected table; pass strict=True to stop "
                "on the first one instead.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return df


def check_choice(
    name: str, values, allowed: Iterable[str], *, aliases: dict | None = None
) -> list[str] | None:
    """Validate a filter argument (``views=...``) against the allowed values.

    Matching ignores case; ``aliases`` maps other accepted spellings (e.g. KDEF
    codes) to allowed values. Returns the canonical values, or ``None`` when
    ``values`` is None.
    """
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    allowed = list(allowed)
    lookup = {str(a).lower(): a for a in allowed}
    alias_lookup = {str(k).lower(): v for k, v in (aliases or {}).items()}
    out = []
    for v in values:
        key = str(v).lower()
        if key in lookup:
            out.append(lookup[key])
        elif key in alias_lookup:
            out.append(alias_lookup[key])
        else:
            raise ParameterError(
                f"unknown value {v!r} in {name}=; allowed: {allowed}"
                + (f" (or the codes {sorted(aliases)})" if aliases else "")
            )
    if not out:
        raise ParameterError(f"{name}= is empty; pass None to keep all, or some of {allowed}")
    return out


def compile_pattern(pattern) -> re.Pattern:
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ParameterError(f"invalid regular expression {pattern!r}: {err}") from err
