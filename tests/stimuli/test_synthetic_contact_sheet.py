"""contact_sheet: grid layout, cell contents, labels, PNG output, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facebrain.stimuli import ArraySource, StimulusSet, contact_sheet, synthetic_faces
from facebrain.stimuli._contact_sheet import main


@pytest.fixture(scope="module")
def faces() -> StimulusSet:
    # expressions deliberately listed out of canonical order
    return synthetic_faces([3, 1, 8], ["sad", "neutral", "happy"], ["S"], image_size=40)


def _find(sheet, img):
    """Top-left corners where ``img`` appears verbatim in ``sheet``."""
    h, w = img.shape[:2]
    hits = []
    for y in range(sheet.shape[0] - h + 1):
        row_ok = np.flatnonzero((sheet[y, : sheet.shape[1] - w + 1] == img[0, 0]).all(-1))
        for x in row_ok:
            if np.array_equal(sheet[y : y + h, x : x + w], img):
                hits.append((y, x))
    return hits


def test_layout_and_cells(faces):
    sheet = contact_sheet(faces, size=40, pad=3)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    pos = {}
    for sid in faces.ids:
        hits = _find(sheet, faces.load(sid))
        assert len(hits) == 1, sid
        pos[sid] = hits[0]
    # rows follow first appearance of identities, columns the canonical expression order
    ys = {p: pos[f"id{p:05d}_neutral_S_i100_s0"][0] for p in (3, 1, 8)}
    assert ys[3] < ys[1] < ys[8]
    xs = {e: pos[f"id00003_{e}_S_i100_s0"][1] for e in ("neutral", "happy", "sad")}
    assert xs["neutral"] < xs["happy"] < xs["sad"]
    assert np.diff(sorted(xs.values())).tolist() == [43, 43]  # size + pad
    # labels: dark pixels in the top and left margins
    top, left = min(y for y, _ in pos.values()), min(x for _, x in pos.values())
    assert (sheet[:top, left:] < 100).any() and (sheet[top:, :left] < 100).any()


def test_missing_cells_blank_and_limits(faces):
    sub = faces.subset(np.flatnonzero(faces.table["expression"] != "happy")[1:])
    sheet = contact_sheet(sub, size=40, pad=2, max_rows=2)
    # 2 rows kept; the first person lost its first (sad) image -> one white cell
    cell = 42
    n_rows = (sheet.shape[0] - 2) // cell
    assert n_rows == 2
    white = (sheet == 255).all(-1)
    blank_cells = 0
    for r in range(2):
        for c in range(2):
            y0 = sheet.shape[0] - 2 - (2 - r) * cell + 2
            x0 = sheet.shape[1] - 2 - (2 - c) * cell + 2
            blank_cells += white[y0 : y0 + 40, x0 : x0 + 40].all()
    assert blank_cells == 1


def test_rows_cols_other_columns():
    s = synthetic_faces(2, ["neutral"], ["FR", "S", "FL"], image_size=32)
    sheet = contact_sheet(s, rows="identity", cols="view", size=32, pad=0)
    hits = {v: _find(sheet, s.load(f"id00000_neutral_{v}_i100_s0"))[0][1] for v in
            ("FL", "S", "FR")}
    assert hits["FL"] < hits["S"] < hits["FR"]  # KDEF view order, not table order


def test_writes_png_atomically(tmp_path, faces):
    out = tmp_path / "sub" / "sheet.png"
    sheet = contact_sheet(faces, size=24, path=out)
    assert out.is_file()
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), sheet)
    assert [p.name for p in out.parent.iterdir()] == ["sheet.png"]  # no temp left


def test_works_with_file_free_arrays(rng):
    import pandas as pd

    table = pd.DataFrame({"identity": ["a", "b"], "expression": ["happy", "sad"],
                          "view": ["S", "S"]}, index=pd.Index(["x", "y"], name="stimulus_id"))
    imgs = rng.integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    sheet = contact_sheet(StimulusSet(table, image_source=ArraySource(imgs)), size=16)
    assert sheet.shape[0] > 32 and sheet.shape[1] > 32


def test_bad_input(faces):
    with pytest.raises(KeyError, match="rows='person' is not a column.*identity"):
        contact_sheet(faces, rows="person")
    with pytest.raises(KeyError, match="cols='emotion'"):
        contact_sheet(faces, cols="emotion")
    with pytest.raises(ValueError, match="max_rows must be an int >= 1; got 0"):
        contact_sheet(faces, max_rows=0)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        contact_sheet(faces, size=2)
    with pytest.raises(TypeError, match="StimulusSet"):
        contact_sheet(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="empty"):
        contact_sheet(faces.subset(np.zeros(len(faces), bool)))


def test_main_writes_sheet(tmp_path, capsys):
    out = tmp_path / "faces.png"
    assert main([str(out), "--per-gender", "1", "--size", "32"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape[0] > 2 * 32 and img.shape[1] > 7 * 32
    assert str(out) in capsys.readouterr().out
