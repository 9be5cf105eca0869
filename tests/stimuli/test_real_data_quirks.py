"""What real collections throw at the loaders: NA subjects, empty boxes, odd pixels, copies."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebrain.errors import DataFormatError
from facebrain.stimuli import ArraySource, StimulusSet, find_duplicates, from_table, load_folder
from facebrain.stimuli._images import read_image


# ------------------------------------------------------- NA identities (issue 12, item 11)
def test_na_none_null_identities_round_trip_through_a_manifest(tmp_path):
    ids = ["NA", "None", "null", "nan", "N/A", "01"]
    table = pd.DataFrame({
        "identity": ids, "expression": ["neutral", "NA", "happy", "sad", "None", "null"],
        "view": ["S"] * 6, "session": ["NA", "A", "B", "null", "01", "A"],
        "bbox_x": [1.0, np.nan, 2.0, 3.0, np.nan, 4.0], "score": [0.5, 1, 2, 3, 4, 5],
    }, index=pd.Index([f"s{i}_{v}" for i, v in enumerate(ids)], name="stimulus_id"))
    imgs = ArraySource(np.zeros((6, 9, 7, 3), np.uint8))
    s = StimulusSet(table, image_source=imgs, name="na")
    back = StimulusSet.load_manifest(s.save(tmp_path / "m.csv"))
    for col in ("identity", "expression", "view", "session"):
        assert back.table[col].tolist() == table[col].tolist(), col
    assert back.ids.tolist() == table.index.tolist()
    np.testing.assert_array_equal(back.table["bbox_x"].to_numpy(float), table["bbox_x"])
    assert back.table["score"].tolist() == table["score"].tolist()


def test_stimulus_id_na_survives_from_table(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "t.csv").write_text("path,identity,expression\na.png,NA,null\n")
    s = from_table(tmp_path / "t.csv", on_duplicate="raise")
    assert s.table["identity"].tolist() == ["NA"] and s.table["expression"].tolist() == ["null"]


# -------------------------------------------------- empty bbox cells (issue 10, part 3)
def _boxes_table(tmp_path):
    img = np.arange(40 * 30 * 3, dtype=np.uint32).reshape(40, 30, 3) % 251
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((255 - img).astype(np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "t.csv").write_text(
        "path,identity,bbox_x,bbox_y,bbox_w,bbox_h\n"
        "a.png,p1,3,4,10,12\n"
        "b.png,p2,,,,\n"
    )
    return img.astype(np.uint8)


def test_empty_bbox_cell_means_no_crop(tmp_path):
    img = _boxes_table(tmp_path)
    s = from_table(tmp_path / "t.csv")
    np.testing.assert_array_equal(s.load("a"), img[4:16, 3:13])
    assert s.load("b").shape == (40, 30, 3)  # was: could not convert string to float: ''
    # the same through a saved manifest
    back = StimulusSet.load_manifest(s.save(tmp_path / "m.csv"))
    np.testing.assert_array_equal(back.load("a"), img[4:16, 3:13])
    assert back.load("b").shape == (40, 30, 3)


def test_non_numeric_bbox_cell_names_the_stimulus(tmp_path):
    _boxes_table(tmp_path)
    (tmp_path / "t.csv").write_text("path,identity,bbox_x,bbox_y,bbox_w,bbox_h\n"
                                    "a.png,p1,three,4,10,12\n")
    s = from_table(tmp_path / "t.csv")
    with pytest.raises(DataFormatError, match="'a'.*bbox_x = 'three'"):
        s.load("a")


# ------------------------------------------------------ pixel formats (issue 12, item 12)
def test_16bit_image_is_scaled_not_saturated(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (8, 64, 3)
    np.testing.assert_allclose(got[..., 0], np.rint(ramp / 65535 * 255), atol=0.51)
    assert (got[..., 0] == 255).mean() < 0.01  # Pillow's convert("RGB") saturates ~99 %


def test_float_image_is_scaled_not_zeroed(tmp_path):
    val = np.linspace(0, 1, 6 * 10, dtype=np.float32).reshape(6, 10)
    Image.fromarray(val, mode="F").save(tmp_path / "f.tif")
    got = read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(got[..., 1], np.rint(val * 255), atol=0.51)
    wide = (val * 1000 - 200).astype(np.float32)  # outside [0, 1]: stretched min..max
    Image.fromarray(wide, mode="F").save(tmp_path / "w.tif")
    got = read_image(tmp_path / "w.tif")[..., 0]
    assert got.min() == 0 and got.max() == 255


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., 0] = 200  # red under the alpha
    rgba[:, :3, 3] = 255  # left half opaque, right half transparent
    rgba[:, 3, 3] = 128  # one column half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png").astype(int)
    assert (got[:, :3] == [200, 0, 0]).all()
    assert (got[:, 4:] == [255, 255, 255]).all()  # was black (alpha dropped)
    np.testing.assert_allclose(got[:, 3], [[227, 127, 127]] * 5, atol=1)
    assert (read_image(tmp_path / "a.png", background=(0, 0, 0))[:, 4:] == 0).all()


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :5] = 255  # white band on the left
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "o.jpg", exif=exif, quality=95)
    got = read_image(tmp_path / "o.jpg")
    assert got.shape == (20, 10, 3)
    assert got[:5].mean() > 200 and got[-5:].mean() < 50  # the band is now on top


def _png_bomb(path, side=60000):
    """A valid 1-bit PNG header claiming side x side pixels (a decompression bomb)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_rejected_in_a_lenient_scan(tmp_path):
    root = tmp_path / "faces"
    (root / "p1").mkdir(parents=True)
    Image.fromarray(np.full((9, 9, 3), 50, np.uint8)).save(root / "p1" / "ok.png")
    _png_bomb(root / "p1" / "bomb.png")
    with pytest.warns(UserWarning, match="bomb"):
        s = load_folder(root, r"(?P<identity>p\d)/")
    assert list(s.ids) == ["p1/ok"]
    assert "decompression bomb" in s.rejected.set_index("path")["reason"]["p1/bomb.png"]
    with pytest.raises(DataFormatError, match="bomb.png.*decompression bomb"):
        read_image(root / "p1" / "bomb.png")


# ------------------------------------------------ duplicate images (issue 10, part 4)
def _dup_folder(tmp_path):
    root = tmp_path / "faces"
    rng = np.random.default_rng(5)
    for person in ("p1", "p2"):
        for expr in ("neutral", "sad", "happy"):
            arr = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
            (root / person).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / person / f"{expr}.png")
    # a copy of p1's neutral filed as 'calm', and p2's sad identical to p2's neutral
    (root / "p1" / "calm.png").write_bytes((root / "p1" / "neutral.png").read_bytes())
    (root / "p2" / "sad.png").write_bytes((root / "p2" / "neutral.png").read_bytes())
    return root


PATTERN = r"(?P<identity>p\d)/(?P<expression>[a-z]+)\.png$"


def test_duplicates_are_reported_with_ids_and_labels(tmp_path):
    root = _dup_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"4 images in 2 group.*p1/calm \(p1/calm/unknown\)"):
        s = load_folder(root, PATTERN)
    assert len(s) == 7
    dups = find_duplicates(s)
    assert sorted(map(sorted, dups.groupby("group")["stimulus_id"].apply(list))) == [
        ["p1/calm", "p1/neutral"], ["p2/neutral", "p2/sad"]]
    assert dups["labels_differ"].all()
    assert len(s.notes["duplicates"]) == 4


def test_duplicates_drop_and_raise(tmp_path):
    root = _dup_folder(tmp_path)
    with pytest.warns(UserWarning, match="Dropped 2 copies"):
        s = load_folder(root, PATTERN, on_duplicate="drop")
    assert sorted(s.ids) == ["p1/calm", "p1/happy", "p1/sad", "p2/happy", "p2/neutral"]
    assert "p1/neutral" not in s.ids and "p2/sad" not in s.ids  # later copies dropped
    assert "p1/calm" in s.ids and "p2/neutral" in s.ids
    rej = s.rejected.set_index("path")["reason"]
    assert rej["p2/sad.png"].startswith("byte-identical to p2/neutral (p2/neutral/unknown)")
    with pytest.raises(DataFormatError, match="byte-identical.*p2/sad"):
        load_folder(root, PATTERN, on_duplicate="raise")
    assert len(find_duplicates(load_folder(root, PATTERN, on_duplicate="ignore"))) == 4
    with pytest.raises(ValueError, match="on_duplicate"):
        load_folder(root, PATTERN, on_duplicate="keep")


def test_duplicates_in_a_table(tmp_path):
    root = _dup_folder(tmp_path)
    (root / "t.csv").write_text("path,identity,expression\np1/neutral.png,p1,neutral\n"
                                "p1/calm.png,p1,calm\np1/happy.png,p1,happy\n")
    with pytest.raises(DataFormatError, match="p1/calm"):
        from_table(root / "t.csv", on_duplicate="raise")
