"""load_fer2013: pixel strings -> in-memory images, emotion codes, Usage, bad rows."""

import warnings

import numpy as np
import pandas as pd
import pytest
from fakes import FER_NAMES, make_fer2013

from facebrain.errors import DataFormatError
from facebrain.stimuli import ArraySource, load_fer2013


def test_images_labels_and_usage(tmp_path):
    path = tmp_path / "fer2013.csv"
    images, emotions = make_fer2013(path, n=10, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_fer2013(path)
    assert len(s) == 10 and isinstance(s.image_source, ArraySource)
    assert s.image_source.images.shape == (10, 48, 48)
    assert s.image_source.images.dtype == np.uint8
    # reference: pandas parses the same CSV independently
    ref = pd.read_csv(path)
    for i in (0, 4, 9):
        img = s.load(f"fer2013_{i:05d}")
        assert img.shape == (48, 48, 3)
        np.testing.assert_array_equal(img[:, :, 0], images[i])
        np.testing.assert_array_equal(img[:, :, 2], images[i])  # grey expanded to RGB
        np.testing.assert_array_equal(
            img[:, :, 1].ravel(), np.array(ref["pixels"][i].split(), dtype=np.uint8))
    assert s.table["expression"].tolist() == [FER_NAMES[e] for e in emotions]
    assert s.table["emotion"].tolist() == ref["emotion"].tolist()
    assert s.table["Usage"].tolist() == ref["Usage"].tolist()
    assert s.table["split"].tolist()[:3] == ["train", "val", "test"]
    assert set(s.table["identity"]) == {"unknown"} and "identity" in s.notes
    assert s.table.loc["fer2013_00006", "expression"] == "neutral"
    assert s.table.loc["fer2013_00002", "expression"] == "fearful"
    sub = s.subset("split == 'test'")
    np.testing.assert_array_equal(sub.load(1)[:, :, 0], images[5])


def test_bad_rows_name_their_line(tmp_path):
    path = tmp_path / "fer2013.csv"
    images, _ = make_fer2013(path, n=8, bad_lines={
        1: "1 2 3",                                  # too few values
        3: " ".join(["7"] * 2303 + ["x"]),           # non-numeric
        4: " ".join(["7"] * 2303 + ["300"]),         # out of range
    })
    lines = path.read_text().splitlines()
    lines[7] = "9" + lines[7][1:]                    # data row 6: unknown emotion code
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"fer2013.csv, line 3: has 3 pixel values"):
        load_fer2013(path)  # a corrupt row stops by default
    with pytest.warns(UserWarning, match="fer2013.csv, line 3") as rec:
        s = load_fer2013(path, strict=False)
    assert "fer2013.csv, line 8" in str(rec[0].message)
    rej = s.rejected.set_index("path")["reason"]
    assert rej.index.tolist() == [f"fer2013.csv, line {n}" for n in (3, 5, 6, 8)]
    assert "has 3 pixel values" in rej["fer2013.csv, line 3"]
    assert "'x' is not an integer" in rej["fer2013.csv, line 5"]
    assert "300 is outside 0..255" in rej["fer2013.csv, line 6"]
    assert "unknown emotion code '9'" in rej["fer2013.csv, line 8"]
    assert list(s.ids) == ["fer2013_00000", "fer2013_00002", "fer2013_00005", "fer2013_00007"]
    np.testing.assert_array_equal(s.load("fer2013_00005")[:, :, 0], images[5])


def test_variants_and_bad_files(tmp_path):
    path = tmp_path / "test.csv"
    make_fer2013(path, n=3)
    df = pd.read_csv(path)
    df[["pixels"]].to_csv(tmp_path / "kaggle_test.csv", index=False)
    s = load_fer2013(tmp_path / "kaggle_test.csv")
    assert set(s.table["expression"]) == {"unknown"} and "split" not in s.table
    df[["emotion", "pixels"]].to_csv(tmp_path / "kaggle_train.csv", index=False)
    assert load_fer2013(tmp_path / "kaggle_train.csv").table["expression"].tolist() == [
        "angry", "disgusted", "fearful"]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_fer2013(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("emotion,image,Usage\n0,1 2,Training\n")
    with pytest.raises(DataFormatError, match=r"bad.csv, line 1: no 'pixels' column"):
        load_fer2013(tmp_path / "bad.csv")
    (tmp_path / "allbad.csv").write_text("emotion,pixels,Usage\n0,1 2,Training\n")
    with pytest.raises(DataFormatError, match="no usable rows"), pytest.warns(UserWarning):
        load_fer2013(tmp_path / "allbad.csv", strict=False)
