"""load_folder (regex labels, images found by content) and from_table."""

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from fakes import YALE_CONDITIONS, color_for, make_yale, truncate, write_image

from facebrain.errors import DataFormatError
from facebrain.stimuli import from_table, load_folder

YALE = r"subject(?P<identity>\d+)\.(?P<expression>\w+)$"


def test_yale_gifs_without_extension(tmp_path):
    truth = make_yale(tmp_path / "yalefaces", subjects=3)
    with pytest.warns(UserWarning, match="Readme.txt"):
        s = load_folder(tmp_path / "yalefaces", YALE, expression_map="yale")
    assert len(s) == 3 * 11 and s.rejected["path"].tolist() == ["Readme.txt"]
    assert "does not match pattern" in s.rejected["reason"].item()
    assert set(s.ids) == set(truth.index)
    t = s.table.loc[truth.index]
    assert t["identity"].tolist() == truth["identity"].tolist()
    assert t["expression_code"].tolist() == truth["condition"].tolist()
    assert s.table.loc["subject02.normal", "expression"] == "neutral"
    assert s.table.loc["subject03.happy", "expression"] == "happy"
    assert s.table.loc["subject01.wink", "expression"] == "wink"
    assert set(s.table["view"]) == {"unknown"}
    assert s.notes["non_canonical_expressions"] == sorted(
        set(YALE_CONDITIONS) - {"normal", "happy", "sad", "surprised"})
    for sid in ("subject01.sleepy", "subject03.centerlight"):
        img = s.load(sid)  # GIF palette image decoded to RGB by content, not extension
        assert img.shape == (24, 18, 3)
        assert np.abs(img.astype(int) - truth.loc[sid, "gray"]).max() <= 1
    # without a map the codes are kept as matched
    with pytest.warns(UserWarning, match="Readme.txt"):
        raw = load_folder(tmp_path / "yalefaces", YALE, strict=False)
    assert raw.table.loc["subject02.normal", "expression"] == "normal"


def _mixed_tree(root):
    for sub, fmt, ext in (("s1", "PNG", ".png"), ("s2", "JPEG", ".jpg"), ("s3", "BMP", ".bmp")):
        for expr in ("happy", "sad"):
            for k in (1, 2):
                rel = f"{sub}/{expr}_{k:02d}{ext}"
                write_image(root / rel, color_for(rel), (9, 7), fmt=fmt)
    write_image(root / "s3" / "left_happy_03.pgm", (90, 90, 90), (9, 7), fmt="PPM", mode="L")
    (root / ".DS_Store").write_bytes(b"\x00\x01")


def test_tree_with_groups_formats_and_defaults(tmp_path):
    _mixed_tree(tmp_path)
    pattern = r"(?P<identity>s\d)/(?:(?P<view>left|right)_)?(?P<expression>[a-z]+)_(?P<take>\d+)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_folder(tmp_path, pattern)
    assert len(s) == 13 and len(s.rejected) == 0
    assert s.table.loc["s1/happy_02", ["identity", "expression", "view", "take", "path"]].tolist() \
        == ["s1", "happy", "unknown", "02", "s1/happy_02.png"]
    assert s.table.loc["s3/left_happy_03", "view"] == "left"
    assert s.table["identity"].value_counts().to_dict() == {"s3": 5, "s1": 4, "s2": 4}
    for sid in ("s1/sad_01", "s3/happy_02"):
        rel = s.table.loc[sid, "path"]
        assert np.abs(s.load(sid).astype(int) - np.array(color_for(rel))).max() <= 1
    assert np.abs(s.load("s2/sad_02").astype(int) - np.array(color_for("s2/sad_02.jpg"))).max() <= 3
    np.testing.assert_array_equal(s.load("s3/left_happy_03"), np.full((9, 7, 3), 90, np.uint8))


def test_bad_files_are_rejected_with_reasons(tmp_path):
    _mixed_tree(tmp_path)
    (tmp_path / "s1" / "happy_09.jpg").write_text("not an image at all")
    truncate(tmp_path / "s2" / "sad_01.jpg")
    truncate(tmp_path / "s1" / "sad_02.png", keep=0.7)
    shutil.copy(tmp_path / "s1" / "happy_01.png", tmp_path / "s1" / "happy_01.jpg")
    pattern = r"(?P<identity>s\d)/(?P<expression>[a-z]+)_\d+"
    with pytest.warns(UserWarning, match="skipped 5 file"):
        s = load_folder(tmp_path, pattern)
    rej = s.rejected.set_index("path")["reason"]
    assert "not an image" in rej["s1/happy_09.jpg"]
    assert "decode" in rej["s2/sad_01.jpg"] and "decode" in rej["s1/sad_02.png"]
    assert "duplicate stimulus_id 's1/happy_01'" in rej["s1/happy_01.png"]
    assert "does not match" in rej["s3/left_happy_03.pgm"]
    assert s.table.loc["s1/happy_01", "path"] == "s1/happy_01.jpg"  # sorted: .jpg first
    with pytest.raises(DataFormatError, match=r"s1/happy_01.png: duplicate"):
        load_folder(tmp_path, pattern + r"\.(png|jpg)$", strict=True)
    with pytest.warns(UserWarning, match="unknown expression code 'sad'"):
        t = load_folder(tmp_path, pattern, expression_map={"happy": "happy"})
    assert set(t.table["expression"]) == {"happy"}


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        load_folder(tmp_path / "no_such_dir", YALE)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")
    with pytest.raises(DataFormatError, match="is empty"):
        load_folder(tmp_path / "empty", YALE)
    make_yale(tmp_path / "y", subjects=1, conditions=("happy",))
    with pytest.raises(DataFormatError, match=r"matched none of the 2 files.*subject01.happy"):
        load_folder(tmp_path / "y", r"person(?P<identity>\d+)")
    with pytest.raises(ValueError, match="no named group 'identity'"):
        load_folder(tmp_path / "y", r"subject(?P<who>\d+)")
    with pytest.raises(ValueError, match="invalid regular expression"):
        load_folder(tmp_path / "y", r"subject(?P<identity>\d+")
    with pytest.raises(KeyError, match="'nosuch'.*yale"):
        load_folder(tmp_path / "y", YALE, expression_map="nosuch")


# ---------------------------------------------------------------- from_table
def _table_tree(tmp_path):
    rows = []
    for subj in ("01", "02"):
        for emo in ("happiness", "fear", "neutral"):
            rel = f"img/{subj}_{emo}.png"
            write_image(tmp_path / rel, color_for(rel), (8, 6), fmt="PNG")
            rows.append({"file": rel, "subject": subj, "emotion": emo, "rt_ms": "512"})
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "stimuli.csv", index=False)
    return df


def test_from_table(tmp_path):
    df = _table_tree(tmp_path)
    s = from_table(tmp_path / "stimuli.csv", path_column="file",
                   rename={"subject": "identity", "emotion": "expression"},
                   expression_map="synonyms")
    assert len(s) == 6 and s.ids[0] == "img/01_happiness"
    assert s.table["identity"].tolist() == ["01"] * 3 + ["02"] * 3  # zeros kept
    assert s.table["expression"].tolist()[:3] == ["happy", "fearful", "neutral"]
    assert s.table["expression_code"].tolist()[:3] == ["happiness", "fear", "neutral"]
    assert s.table["rt_ms"].tolist() == ["512"] * 6 and set(s.table["view"]) == {"unknown"}
    rel = df["file"][4]
    assert np.abs(s.load(4).astype(int) - np.array(color_for(rel))).max() <= 1
    # explicit ids, root elsewhere, parquet
    df.assign(sid=[f"x{i}" for i in range(6)]).to_parquet(tmp_path / "t.parquet")
    t = from_table(tmp_path / "t.parquet", tmp_path, path_column="file", id_column="sid",
                   rename={"subject": "identity"})
    assert list(t.ids) == [f"x{i}" for i in range(6)] and "sid" not in t.table
    assert t.table["emotion"].tolist()[:2] == ["happiness", "fear"]
    assert set(t.table["expression"]) == {"unknown"}  # no expression column: default


def test_from_table_bad_inputs(tmp_path):
    df = _table_tree(tmp_path)
    with pytest.raises(DataFormatError, match=r"label column 'identity' is missing.*'subject'"):
        from_table(tmp_path / "stimuli.csv", path_column="file")
    with pytest.raises(DataFormatError, match="label column 'path' is missing"):
        from_table(tmp_path / "stimuli.csv", rename={"subject": "identity"})
    with pytest.raises(DataFormatError, match=r"rename= names column\(s\) \['who'\]"):
        from_table(tmp_path / "stimuli.csv", rename={"who": "identity"})
    pd.concat([df, df.iloc[[1]]]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataFormatError,
                       match=r"duplicate stimulus_id 'img/01_fear' on lines \[3, 8\]"):
        from_table(tmp_path / "dup.csv", path_column="file", rename={"subject": "identity"})
    bad = df.copy()
    bad.loc[2, "file"] = "img/missing.png"
    bad.loc[3, "emotion"] = "contempt"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    kw = {"path_column": "file", "expression_map": "synonyms",
          "rename": {"subject": "identity", "emotion": "expression"}}
    with pytest.warns(UserWarning, match="bad.csv, line 4"):
        s = from_table(tmp_path / "bad.csv", strict=False, **kw)
    rej = s.rejected.set_index("path")["reason"]
    assert "img/missing.png: file not found" in rej["bad.csv, line 4"]
    assert "unknown expression code 'contempt'" in rej["bad.csv, line 5"]
    assert len(s) == 4
    with pytest.raises(DataFormatError, match="bad.csv, line 4: img/missing.png: file not found"):
        from_table(tmp_path / "bad.csv", **kw)  # strict by default: the table names the files
    with pytest.raises(DataFormatError, match=r"label column 'view' is missing"):
        from_table(tmp_path / "stimuli.csv", path_column="file", required=["view"],
                   rename={"subject": "identity"})
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        from_table(tmp_path / "nope.csv")
