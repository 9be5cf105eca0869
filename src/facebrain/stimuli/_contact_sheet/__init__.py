"""Contact sheets: a labelled grid of stimuli (e.g. identity x expression).

Run ``python -m facebrain.stimuli._contact_sheet OUT.png`` to render the
frontal views of :func:`~facebrain.stimuli.synthetic_kdef` to a sheet (the
entry point is this package's ``__main__``, so ``-m`` runs it without the
"found in sys.modules" warning a plain module re-executed by ``-m`` gets).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from ..._boundary import public
from ..._utils import atomic_path
from ...errors import MissingKeyError, ParameterError, ParameterTypeError
from .._stimulus_set import CANONICAL_EXPRESSIONS, StimulusSet

__all__ = ["contact_sheet"]

_VIEW_ORDER = ("FL", "HL", "S", "HR", "FR")


def _ordered_values(table, column: str) -> list[str]:
    values = table[column].astype(str)
    seen = list(dict.fromkeys(values.tolist()))
    canon = CANONICAL_EXPRESSIONS if column == "expression" else (
        _VIEW_ORDER if column == "view" else ())
    first = [c for c in canon if c in seen]
    return first + [c for c in seen if c not in first]


@public
def contact_sheet(
    stimuli: StimulusSet,
    *,
    rows: str = "identity",
    cols: str = "expression",
    max_rows: int = 10,
    max_cols: int = 12,
    size: int = 96,
    path: str | os.PathLike | None = None,
    pad: int = 2,
) -> np.ndarray:
    """Arrange stimuli in a labelled grid, one cell per (row value, column value).

    Each cell shows the first stimulus (in table order) with that pair of
    labels; missing pairs stay blank. Rows and columns are ordered by first
    appearance, except canonical expressions and KDEF views, which keep their
    canonical order.

    Parameters
    ----------
    stimuli : StimulusSet
    rows, cols : str
        Table columns whose values index the grid's rows and columns.
    max_rows, max_cols : int
        Keep only the first values of each.
    size : int
        Cell height and width in pixels (images are resized with antialiasing).
    path : path, optional
        Also write the sheet as a PNG there (atomically: temp file, then rename).
    pad : int
        Pixels between cells.

    Returns
    -------
    sheet : ndarray of shape (H, W, 3), uint8

    Examples
    --------
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(2, ["neutral", "happy"], ["S"])
    >>> contact_sheet(faces, size=48).dtype
    dtype('uint8')
    """
    from PIL import Image, ImageDraw, ImageFont

    if not isinstance(stimuli, StimulusSet):
        raise ParameterTypeError(f"stimuli must be a StimulusSet; got {type(stimuli).__name__}")
    if len(stimuli) == 0:
        raise ParameterError("stimuli is empty; nothing to put on a contact sheet")
    for name, col in (("rows", rows), ("cols", cols)):
        if col not in stimuli.table.columns:
            raise MissingKeyError(
                f"{name}={col!r} is not a column of the stimulus table; available: "
                f"{list(stimuli.table.columns)}"
            )
    for name, val, lo in (("max_rows", max_rows, 1), ("max_cols", max_cols, 1),
                          ("size", size, 8), ("pad", pad, 0)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise ParameterError(f"{name} must be an int >= {lo}; got {val!r}")
    table = stimuli.table
    row_vals = _ordered_values(table, rows)[:max_rows]
    col_vals = _ordered_values(table, cols)[:max_cols]
    rv = table[rows].astype(str).to_numpy()
    cv = table[cols].astype(str).to_numpy()

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (4, 4)))

    def text_size(s: str) -> tuple[int, int]:
        box = probe.textbbox((0, 0), s, font=font)
        return box[2] - box[0], box[3] - box[1]

    left = max(text_size(v)[0] for v in row_vals) + 8
    top = max(text_size(v)[1] for v in col_vals) + 8
    cell = size + pad
    width = left + len(col_vals) * cell + pad
    height = top + len(row_vals) * cell + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(col_vals):
        w, _ = text_size(c)
        draw.text((left + j * cell + pad + (size - w) // 2, 3), c, fill=(0, 0, 0), font=font)
    for i, r in enumerate(row_vals):
        _, h = text_size(r)
        draw.text((3, top + i * cell + pad + (size - h) // 2), r, fill=(0, 0, 0), font=font)
        in_row = rv == r
        for j, c in enumerate(col_vals):
            hit = np.flatnonzero(in_row & (cv == c))
            if hit.size == 0:
                continue
            img = stimuli.load(int(hit[0]), size=size)
            sheet.paste(Image.fromarray(img), (left + j * cell + pad, top + i * cell + pad))
    out = np.asarray(sheet, dtype=np.uint8).copy()
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(out).save(tmp, format="PNG")
    return out


def main(argv: list[str] | None = None) -> int:
    """Render synthetic KDEF frontal views (session A) to a contact sheet PNG."""
    from .._synthetic import synthetic_kdef

    parser = argparse.ArgumentParser(
        prog="python -m facebrain.stimuli._contact_sheet",
        description="Render a contact sheet of synthetic KDEF faces (frontal, session A).",
    )
    parser.add_argument("out", help="output PNG path")
    parser.add_argument("--per-gender", type=int, default=5,
                        help="identities of each gender (default 5)")
    parser.add_argument("--size", type=int, default=112, help="cell size in pixels")
    parser.add_argument("--view", default="S", choices=list(_VIEW_ORDER))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kdef = synthetic_kdef(seed=args.seed, image_size=args.size)
    n = max(1, min(args.per_gender, 35))
    people = [f"F{k:02d}" for k in range(1, n + 1)] + [f"M{k:02d}" for k in range(1, n + 1)]
    sel = kdef.subset((kdef.table["view"] == args.view).to_numpy()
                      & (kdef.table["session"] == "A").to_numpy()
                      & kdef.table["identity"].isin(people).to_numpy())
    contact_sheet(sel, rows="identity", cols="expression", max_rows=2 * n, size=args.size,
                  path=args.out)
    print(f"contact sheet of {2 * n} synthetic KDEF identities x 7 expressions "
          f"(view {args.view}) written to {Path(args.out).resolve()}")
    return 0

