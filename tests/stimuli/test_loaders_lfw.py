"""load_lfw / load_lfw_pairs on fakes of every LFW layout, checked against scikit-learn."""

import shutil

import numpy as np
import pytest
from fakes import (
    LFW_PEOPLE,
    color_for,
    make_lfw,
    truncate,
    write_image,
    write_pairs_dev,
    write_pairs_folds,
)
from sklearn.datasets._lfw import _fetch_lfw_pairs

from facebrain.errors import DataFormatError
from facebrain.stimuli import load_lfw, load_lfw_pairs

N_IMAGES = sum(LFW_PEOPLE.values())
MATCHED = [("George_W_Bush", 1, 4), ("Aaron_Peirsol", 2, 3), ("Jean-Pierre_Raffarin", 1, 2)]
MISMATCHED = [("Zico", 1, "Abdullah_Gul", 3), ("Aaron_Sorkin", 2, "George_W_Bush", 5),
              ("Aaron_Peirsol", 4, "Zico", 1)]


@pytest.mark.parametrize("layout", ["lfw", "lfw_funneled", "lfw-deepfunneled", "lfw_home"])
def test_every_layout(tmp_path, layout):
    folder = make_lfw(tmp_path, layout=layout)
    for root in {tmp_path, folder, folder.parent}:
        s = load_lfw(root)
        assert s.root == folder and len(s) == N_IMAGES
    assert s.table["identity"].value_counts().to_dict() == LFW_PEOPLE
    assert s.table.loc["Jean-Pierre_Raffarin_0002", "path"] == (
        "Jean-Pierre_Raffarin/Jean-Pierre_Raffarin_0002.jpg")
    assert s.table.loc["George_W_Bush_0005", "image_num"] == 5
    assert set(s.table["expression"]) == {"unknown"} == set(s.table["view"])
    assert s.notes["variant"] == ("lfw_funneled" if layout == "lfw_home" else layout)
    for sid in ("Zico_0001", "George_W_Bush_0003"):
        assert np.abs(s.load(sid).astype(int) - np.array(color_for(sid))).max() <= 3


def test_several_trees_need_a_variant(tmp_path):
    make_lfw(tmp_path, layout="lfw")
    make_lfw(tmp_path, layout="lfw-deepfunneled", people={"Zico": 1})
    with pytest.raises(DataFormatError, match="variant="):
        load_lfw(tmp_path)
    assert len(load_lfw(tmp_path, variant="lfw-deepfunneled")) == 1
    with pytest.raises(ValueError, match="lfw_funneled"):
        load_lfw(tmp_path, variant="funneled")


def test_bad_files_and_roots(tmp_path):
    folder = make_lfw(tmp_path)
    shutil.copy(folder / "Zico" / "Zico_0001.jpg", folder / "Aaron_Sorkin" / "Zico_0002.jpg")
    truncate(folder / "Abdullah_Gul" / "Abdullah_Gul_0002.jpg")
    with pytest.warns(UserWarning, match="Abdullah_Gul_0002.jpg"):
        s = load_lfw(folder)
    assert len(s) == N_IMAGES - 1
    rej = s.rejected.set_index("path")["reason"]
    assert "folder Aaron_Sorkin/" in rej["Aaron_Sorkin/Zico_0002.jpg"]
    assert "decode" in rej["Abdullah_Gul/Abdullah_Gul_0002.jpg"]
    with pytest.raises(DataFormatError, match="Zico_0002.jpg"):
        load_lfw(folder, strict=True)
    with pytest.raises(FileNotFoundError, match="missing_lfw"):
        load_lfw(tmp_path / "missing_lfw")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no LFW image tree"):
        load_lfw(tmp_path / "empty")


def _reference(pairs_file, folder):
    """scikit-learn's own parser: (pixels of pairs (n, 2, H, W, 3), target)."""
    pix, target, _ = _fetch_lfw_pairs(str(pairs_file), str(folder),
                                      slice_=(slice(0, 16), slice(0, 12)), color=True)
    return pix, target


def _pixels(s, ids):
    return np.stack([s.load(i) for i in ids]).astype(np.float32) / 255.0


def test_dev_pairs_match_sklearn(tmp_path):
    folder = make_lfw(tmp_path, layout="lfw_home")
    pairs_file = write_pairs_dev(folder.parent / "pairsDevTest.txt", MATCHED, MISMATCHED)
    s = load_lfw(tmp_path)
    pairs = load_lfw_pairs(pairs_file, s)
    assert list(pairs.columns) == ["fold", "left", "right", "same"]
    assert pairs["fold"].tolist() == [0] * 6
    assert pairs["same"].tolist() == [True] * 3 + [False] * 3
    assert pairs.iloc[0][["left", "right"]].tolist() == ["George_W_Bush_0001",
                                                         "George_W_Bush_0004"]
    assert pairs.iloc[5][["left", "right"]].tolist() == ["Aaron_Peirsol_0004", "Zico_0001"]
    ref_pix, ref_target = _reference(pairs_file, folder)
    np.testing.assert_array_equal(pairs["same"].to_numpy().astype(int), ref_target)
    np.testing.assert_allclose(_pixels(s, pairs["left"]), ref_pix[:, 0], atol=1e-6)
    np.testing.assert_allclose(_pixels(s, pairs["right"]), ref_pix[:, 1], atol=1e-6)
    # a root path works in place of the StimulusSet
    assert load_lfw_pairs(pairs_file, tmp_path).equals(pairs)


def test_ten_fold_pairs_file(tmp_path):
    folder = make_lfw(tmp_path)
    folds = [([MATCHED[k % 3]], [MISMATCHED[(k + 1) % 3]]) for k in range(10)]
    pairs_file = write_pairs_folds(tmp_path / "pairs.txt", folds)
    assert pairs_file.read_text().splitlines()[0] == "10\t1"
    pairs = load_lfw_pairs(pairs_file, load_lfw(folder))
    assert len(pairs) == 20
    assert pairs["fold"].tolist() == [k for k in range(10) for _ in range(2)]
    assert pairs["same"].tolist() == [True, False] * 10
    assert pairs.loc[pairs["fold"] == 4, "left"].tolist() == ["Aaron_Peirsol_0002",
                                                          "Aaron_Peirsol_0004"]
    _, ref_target = _reference(pairs_file, folder)
    np.testing.assert_array_equal(pairs["same"].to_numpy().astype(int), ref_target)


def test_bad_pairs_files(tmp_path):
    folder = make_lfw(tmp_path)
    s = load_lfw(folder)
    bad = write_pairs_dev(tmp_path / "p.txt", MATCHED, [("Zico", 7, "Abdullah_Gul", 3)] * 3)
    with pytest.raises(DataFormatError, match=r"p.txt, line 5: .*Zico/Zico_0007.jpg.*missing"):
        load_lfw_pairs(bad, s)
    lines = bad.read_text().splitlines()
    (tmp_path / "short.txt").write_text("\n".join(lines[:-1]))
    with pytest.raises(DataFormatError, match="header says 1 fold"):
        load_lfw_pairs(tmp_path / "short.txt", s)
    swapped = [lines[0], lines[4], *lines[2:4], lines[1], *lines[5:]]
    (tmp_path / "swapped.txt").write_text("\n".join(swapped))
    with pytest.raises(DataFormatError, match=r"swapped.txt, line 2: expected a matched"):
        load_lfw_pairs(tmp_path / "swapped.txt", s)
    (tmp_path / "hdr.txt").write_text("ten 300\n")
    with pytest.raises(DataFormatError, match="hdr.txt, line 1: header"):
        load_lfw_pairs(tmp_path / "hdr.txt", s)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_lfw_pairs(tmp_path / "nope.txt", s)
    # an image rejected when loading the tree is named as such
    write_image(folder / "Zico" / "Zico_0002.jpg", (1, 2, 3), (16, 12))
    truncate(folder / "Zico" / "Zico_0002.jpg")
    with pytest.warns(UserWarning):
        s2 = load_lfw(folder)
    p2 = write_pairs_dev(tmp_path / "p2.txt", [("Zico", 1, 2)], [("Zico", 1, "Abdullah_Gul", 1)])
    with pytest.raises(DataFormatError, match="was rejected"):
        load_lfw_pairs(p2, s2)
