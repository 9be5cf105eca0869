"""align_faces and extract_face_chip against dlib itself (skipped where dlib is absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebrain.errors import DataFormatError
from facebrain.stimuli import (
    StimulusSet,
    _align,
    align_faces,
    extract_face_chip,
    load_folder,
    synthetic_faces,
)

dlib = pytest.importorskip("dlib")


def _astronaut() -> np.ndarray:
    skd = pytest.importorskip("skimage.data")
    return skd.astronaut()


def _landmarks(img, rect):
    sp = dlib.shape_predictor(str(_align.face_model_path("landmarks5")))
    shape = sp(img, rect)
    return shape, np.array([[shape.part(j).x, shape.part(j).y] for j in range(5)], float)


@pytest.mark.parametrize("scale,angle,size,padding", [
    (1.0, 0.0, 150, 0.25),   # dlib ResNet's chip
    (2.7, 12.0, 150, 0.25),  # downscaled through dlib's image pyramid, rotated
    (0.5, -20.0, 96, 0.1),   # upscaled, rotated the other way
    (4.3, 3.0, 64, 0.6),     # two pyramid levels
])
def test_chip_equals_dlib_get_face_chip_on_a_real_photo(scale, angle, size, padding):
    a = Image.fromarray(_astronaut()).rotate(angle, resample=Image.BILINEAR)
    img = np.asarray(a.resize((int(512 * scale), int(512 * scale * 0.9))))
    det = dlib.get_frontal_face_detector()(img, 1 if scale < 1 else 0)
    assert len(det) >= 1
    shape, pts = _landmarks(img, det[0])
    ref = dlib.get_face_chip(img, shape, size, padding)
    mine = extract_face_chip(img, pts, size=size, padding=padding)
    assert mine.shape == ref.shape == (size, size, 3)
    diff = np.abs(mine.astype(int) - ref.astype(int))
    assert diff.mean() <= 1.0  # the acceptance bound; observed: 0 to 1e-4
    assert (diff > 1).mean() < 1e-3


def test_chip_off_the_image_edge_is_black_like_dlib():
    img = np.ascontiguousarray(_astronaut()[60:, 150:])  # face near the top-left corner
    rect = dlib.rectangle(20, 10, 120, 115)
    shape, pts = _landmarks(img, rect)
    ref = dlib.get_face_chip(img, shape, 150, 0.8)
    mine = extract_face_chip(img, pts, size=150, padding=0.8)
    assert (ref == 0).all(axis=2).any()  # the chip really leaves the image
    assert np.abs(mine.astype(int) - ref.astype(int)).mean() <= 1.0


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def photo_folder(tmp_path):
    """A real photograph, two faces side by side, and a blank image, as a labelled folder."""
    a = _astronaut()
    root = tmp_path / "faces"
    _write(root / "eileen" / "neutral_1.png", a)
    small = np.asarray(Image.fromarray(a).resize((256, 256)))
    two = np.full((512, 800, 3), 90, np.uint8)
    two[:, :512] = a
    two[128:384, 540:796] = small
    _write(root / "pair" / "happy_1.png", two)
    _write(root / "nobody" / "sad_1.png", np.full((300, 260, 3), 128, np.uint8))
    return root


def _folder(root):
    return load_folder(root, r"(?P<identity>\w+)/(?P<expression>[a-z]+)_\d+\.png$",
                       on_duplicate="raise")


def test_align_faces_on_photographs_rejects_blank_and_several(photo_folder, tmp_path):
    stim = _folder(photo_folder)
    with pytest.warns(UserWarning, match="2 of 3"):
        out = align_faces(stim, cache_dir=tmp_path / "cache")
    assert list(out.ids) == ["eileen/neutral_1"]
    rej = out.rejected.set_index("path")["reason"]
    assert rej["nobody/sad_1.png"].startswith("no face found")
    assert "2 faces found where one is expected" in rej["pair/happy_1.png"]
    row = out.table.iloc[0]
    assert out.load(0).shape == (150, 150, 3)
    assert row["identity"] == "eileen" and row["expression"] == "neutral"
    assert row["detector"] == "hog" and row["face_score"] > 0 and row["n_faces"] == 1
    # the recorded landmarks lie inside the recorded box and give dlib's chip
    pts = np.array([[row[f"landmark{k}_x"], row[f"landmark{k}_y"]] for k in range(5)])
    assert (pts[:, 0] >= row["face_x"]).all() and (pts[:, 0] <= row["face_x"] + row["face_w"]).all()
    img = np.asarray(Image.open(photo_folder / "eileen" / "neutral_1.png").convert("RGB"))
    shape = dlib.full_object_detection(
        dlib.rectangle(int(row["face_x"]), int(row["face_y"]),
                       int(row["face_x"] + row["face_w"] - 1), int(row["face_y"] + row["face_h"] - 1)),
        [dlib.point(int(x), int(y)) for x, y in pts])
    ref = dlib.get_face_chip(img, shape, 150, 0.25)
    assert np.abs(out.load(0).astype(int) - ref.astype(int)).mean() <= 1.0


def test_pick_largest_and_best(photo_folder, tmp_path):
    stim = _folder(photo_folder).subset(["pair/happy_1"])
    big = align_faces(stim, pick="largest", cache_dir=tmp_path / "c")
    assert big.table["n_faces"].iloc[0] == 2
    assert big.table["face_x"].iloc[0] < 512 and big.table["face_w"].iloc[0] > 70
    best = align_faces(stim, pick="best", cache_dir=tmp_path / "c")
    assert best.table["face_score"].iloc[0] >= big.table["face_score"].iloc[0] - 1e-12


def test_all_blank_raises_and_strict_raises(photo_folder, tmp_path):
    stim = _folder(photo_folder)
    blank = stim.subset(["nobody/sad_1"])
    with pytest.raises(DataFormatError, match="no face was aligned"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        align_faces(blank, cache_dir=tmp_path / "c")
    with pytest.raises(DataFormatError, match="nobody/sad_1.png: no face found"):
        align_faces(stim, strict=True, cache_dir=tmp_path / "c")


def test_cache_is_reused_and_never_stale(photo_folder, tmp_path, monkeypatch):
    stim = _folder(photo_folder).subset(["eileen/neutral_1"])
    first = align_faces(stim, cache_dir=tmp_path / "c")
    chip = first.load(0)
    calls = []
    real = _align._align_one
    monkeypatch.setattr(_align, "_align_one", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = align_faces(stim, cache_dir=tmp_path / "c")
    assert calls == [] and np.array_equal(again.load(0), chip)
    # new parameters: a new chip, computed
    other = align_faces(stim, size=96, cache_dir=tmp_path / "c")
    assert calls == [1] and other.load(0).shape == (96, 96, 3)
    # the file changes in place (mirrored): the cache must not serve the old chip
    path = photo_folder / "eileen" / "neutral_1.png"
    _write(path, np.ascontiguousarray(_astronaut()[:, ::-1]))
    flipped = align_faces(stim, cache_dir=tmp_path / "c")
    assert len(calls) == 2
    assert np.abs(flipped.load(0).astype(int) - chip.astype(int)).mean() > 5
    # no temporary files are left behind
    assert not [p for p in (tmp_path / "c").rglob("*") if p.name.startswith(".")]


def test_table_boxes_are_used_and_empty_cells_detect(photo_folder, tmp_path):
    stim = _folder(photo_folder)
    table = stim.table.copy()
    table["bbox_x"] = ["175", "", ""]
    table["bbox_y"] = ["76", "", ""]
    table["bbox_w"] = ["91", "", ""]
    table["bbox_h"] = ["91", "", ""]
    boxed = StimulusSet(table, root=stim.root, name="boxed")
    with pytest.warns(UserWarning):
        out = align_faces(boxed, cache_dir=tmp_path / "c")
    row = out.table.loc["eileen/neutral_1"]
    assert row["detector"] == "table" and np.isnan(row["face_score"])
    assert (row["face_x"], row["face_y"], row["face_w"], row["face_h"]) == (175, 76, 91, 91)
    assert not any(c.startswith("bbox_") for c in out.table.columns)


def test_synthetic_frontal_faces_are_found(tmp_path):
    stim = synthetic_faces(range(6), ["neutral", "happy", "surprised"], "S", image_size=112,
                           seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = align_faces(stim, cache_dir=tmp_path / "c")
    # measured on 140 synthetic frontal faces: 97-98 % with HOG, 100 % with hog+cnn
    assert len(out) >= 16
    assert out.notes["align"]["fraction_aligned"] == len(out) / 18
    assert set(out.table["identity"]) <= set(stim.table["identity"])


@pytest.mark.parametrize("kw,match", [
    ({"method": "mtcnn"}, "align method"), ({"detector": "yolo"}, "detector"),
    ({"pick": "all"}, "pick"), ({"size": 0}, "size"), ({"padding": -1}, "padding"),
    ({"upsample": 9}, "upsample"),
])
def test_bad_arguments_name_themselves(tiny_stimuli, kw, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        align_faces(tiny_stimuli, cache_dir=tmp_path, **kw)


def test_manifest_of_chips_round_trips(photo_folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = align_faces(_folder(photo_folder), cache_dir=tmp_path / "c")
    path = out.save(tmp_path / "chips.csv")
    back = StimulusSet.load_manifest(path)
    assert np.array_equal(back.load(0), out.load(0))
    pd.testing.assert_series_equal(back.table["face_score"], out.table["face_score"],
                                   check_dtype=False)
