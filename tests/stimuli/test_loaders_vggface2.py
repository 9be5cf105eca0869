"""load_vggface2: tree, identity_meta with quoted commas, loose-crop bounding boxes."""

import pickle

import numpy as np
import pytest
from fakes import make_vggface2, truncate
from hypothesis import given, settings
from hypothesis import strategies as st

from facebrain.errors import DataFormatError
from facebrain.stimuli import StimulusSet, load_vggface2
from facebrain.stimuli._images import bbox_crop, read_image
from facebrain.stimuli._vggface2 import read_vggface2_bboxes, read_vggface2_meta


@pytest.fixture
def vgg(tmp_path):
    truth = make_vggface2(tmp_path, "train")
    return tmp_path, truth


def test_tree_meta_and_lazy_crops(vgg):
    root, truth = vgg
    s = load_vggface2(root, "train")
    assert list(s.ids) == list(truth.index)  # file-name order
    assert s.table["identity"].tolist() == truth["identity"].tolist()
    assert s.table.loc["n000282/0002_01", "name"] == "Carol, Crystal"
    assert s.table.loc["n000002/0001_01", ["name", "gender", "sample_num", "flag"]].tolist() == [
        "A_Fine_Frenzy", "female", 315, 1]
    assert set(s.table["expression"]) == {"unknown"} == set(s.table["view"])
    assert "no expression labels" in s.notes["expression"]
    assert s.table["path"].iloc[0] == "n000002/0001_01.jpg"
    for sid, r in truth.iterrows():
        img = s.load(sid)
        assert img.shape == (r.h, r.w, 3)  # cropped to the loose box
        # face colour inside (JPEG rings a little at the box edge), grey background gone
        assert np.abs(img.mean(axis=(0, 1)) - np.array(r.color)).max() <= 3, sid
        assert np.abs(img[2:-2, 2:-2].astype(int) - np.array(r.color)).max() <= 8, sid
        # reference: crop the decoded file by hand
        full = read_image(root / "train" / f"{sid}.jpg")
        np.testing.assert_array_equal(img, full[r.y:r.y + r.h, r.x:r.x + r.w])
    assert s.table[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].iloc[1].tolist() == [9, 5, 14, 20]


def test_crop_survives_subset_pickle_and_manifest(vgg, tmp_path):
    root, truth = vgg
    s = load_vggface2(root, "train", bbox_margin=0.25)
    sid = "n000282/0001_01"
    box = truth.loc[sid, ["x", "y", "w", "h"]]
    want = bbox_crop(read_image(root / "train" / f"{sid}.jpg"), *box, margin=0.25)
    np.testing.assert_array_equal(s.load(sid), want)
    sub = s.subset([sid])
    np.testing.assert_array_equal(sub.load(0), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(s)).load(sid), want)
    again = StimulusSet.load_manifest(s.save(tmp_path / "out" / "vgg.csv"))
    np.testing.assert_array_equal(again.load(sid), want)


def test_options(vgg):
    root, _ = vgg
    s = load_vggface2(root, "train", bboxes=False, identity_meta=False)
    assert s.load(0).shape == (40, 30, 3) and "bbox_x" not in s.table
    assert "name" not in s.table
    capped = load_vggface2(root, "train", max_per_identity=2)
    assert list(capped.ids) == ["n000002/0001_01", "n000002/0002_01",
                                "n000282/0001_01", "n000282/0002_01"]
    with pytest.raises(ValueError, match="max_per_identity"):
        load_vggface2(root, "train", max_per_identity=0)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_vggface2(root, "val")
    with pytest.raises(FileNotFoundError, match=r"test.*folders in .*\['bb_landmark', 'train'\]"):
        load_vggface2(root, "test")


def test_meta_parsing_is_robust(tmp_path):
    p = tmp_path / "identity_meta.csv"
    p.write_text(
        "Class_ID, Name, Sample_Num, Flag, Gender\n"
        'n000282, "Carol, Crystal", 311, 1, f\n'
        "n000003, Smith, John, Jr, 100, 0, m\n"  # unquoted commas
        'n000004, "The ""Rock""", 12, 1, m\n'
    )
    meta = read_vggface2_meta(p)
    assert meta["name"].tolist() == ["Carol, Crystal", "Smith, John, Jr", 'The "Rock"']
    assert meta["sample_num"].tolist() == [311, 100, 12]
    assert meta["gender"].tolist() == ["female", "male", "male"]
    p.write_text("Class_ID, Name, Sample_Num, Flag, Gender\nn000001, x, many, 1, m\n")
    with pytest.raises(DataFormatError, match=r"identity_meta.csv, line 2: Sample_Num 'many'"):
        read_vggface2_meta(p)
    p.write_text("id,name\n")
    with pytest.raises(DataFormatError, match="header"):
        read_vggface2_meta(p)


def test_bad_boxes_and_images(vgg):
    root, truth = vgg
    bb = root / "bb_landmark" / "loose_bb_train.csv"
    lines = bb.read_text().splitlines()
    bb.write_text("\n".join(lines[:-1]) + "\n")  # last image loses its box
    truncate(root / "train" / "n000002" / "0002_01.jpg")
    with pytest.warns(UserWarning, match="0002_01.jpg") as rec:
        s = load_vggface2(root, "train")
    assert "no bounding box" in " ".join(str(w.message) for w in rec)
    assert len(s) == len(truth) - 2 and len(s.rejected) == 2
    with pytest.raises(DataFormatError, match="n000002/0002_01.jpg"):
        load_vggface2(root, "train", strict=True)
    bb.write_text("NAME_ID,X,Y,W\nn000002/0001_01,1,2,3\n")
    with pytest.raises(DataFormatError, match=r"loose_bb_train.csv: missing column\(s\) \['H'\]"):
        read_vggface2_bboxes(bb)
    bb.write_text("NAME_ID,X,Y,W,H\nn000002/0001_01,1,2,3,4\nn000002/0002_01,1,two,3,4\n")
    with pytest.raises(DataFormatError, match="loose_bb_train.csv, line 3: Y value 'two'"):
        read_vggface2_bboxes(bb)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(
    st.text(alphabet=st.sampled_from(list("ab ,\"'_-.é")), min_size=1, max_size=12).filter(
        lambda s: s.strip() == s and s.strip(",") == s),
    min_size=1, max_size=5))
def test_meta_names_round_trip(tmp_path_factory, names):
    """Any name written the way the VGGFace2 file quotes it comes back unchanged."""
    p = tmp_path_factory.mktemp("meta") / "identity_meta.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        f.write("Class_ID, Name, Sample_Num, Flag, Gender\n")
        for k, name in enumerate(names):
            quoted = '"' + name.replace('"', '""') + '"'
            f.write(f"n{k:06d}, {quoted}, {k + 1}, {k % 2}, {'mf'[k % 2]}\n")
    meta = read_vggface2_meta(p)
    assert meta["name"].tolist() == names
    assert meta["sample_num"].tolist() == list(range(1, len(names) + 1))
