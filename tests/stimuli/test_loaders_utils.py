"""Reference tables shipped in facebrain/data and the image probe used by every loader."""

import re
from pathlib import Path

import pytest
from fakes import image_bytes, truncate, write_image

from facebrain.stimuli import CANONICAL_EXPRESSIONS
from facebrain.stimuli._kdef import KDEF_PATTERN
from facebrain.stimuli._loader_utils import data_path, expression_map, probe_image, read_data_table


def test_tables_are_installed_with_the_package():
    import facebrain

    pkg = Path(facebrain.__file__).parent / "data"
    for name in ("expression_codes.csv", "kdef_quirks.csv"):
        p = data_path(name)
        assert p.is_file() and p.parent.resolve() == pkg.resolve()
    with pytest.raises(FileNotFoundError, match=r"'nope.csv'.*kdef_quirks.csv"):
        data_path("nope.csv")


def test_expression_codes_table():
    t = read_data_table("expression_codes.csv")
    assert list(t.columns) == ["dataset", "code", "expression", "canonical", "source"]
    assert not t.duplicated(["dataset", "code"]).any()
    assert set(t["canonical"]) == {"yes", "no"}
    canon = t["expression"].isin(CANONICAL_EXPRESSIONS)
    assert (canon == (t["canonical"] == "yes")).all()  # flag agrees with the names
    assert (t["source"] != "").all()
    assert expression_map("kdef") == {"AF": "fearful", "AN": "angry", "DI": "disgusted",
                                      "HA": "happy", "NE": "neutral", "SA": "sad",
                                      "SU": "surprised"}
    assert [expression_map("fer2013")[str(i)] for i in range(7)] == [
        "angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral"]
    mine = read_data_table("expression_codes.csv")
    mine.loc[0, "dataset"] = "changed"  # each call returns a copy, never the cache
    assert read_data_table("expression_codes.csv").iloc[0, 0] == "kdef"


def test_kdef_quirks_table_is_consistent():
    q = read_data_table("kdef_quirks.csv")
    assert set(q["action"]) <= {"map", "report", "check_blank"}
    assert (q["source"] != "").all() and (q["note"] != "").all()
    for r in q.itertuples():
        if r.action == "map":
            assert KDEF_PATTERN.match(r.file) is None  # only irregular names are mapped
            assert KDEF_PATTERN.match(r.maps_to)
            assert r.maps_to[:4] == r.file[:4]  # same person folder
        else:
            assert KDEF_PATTERN.match(r.file) and r.maps_to == ""
    assert re.search("AF31V.JPG,map,AF31SAHL.JPG", data_path("kdef_quirks.csv").read_text())


@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("GIF", ".gif"),
                                     ("BMP", ".bmp")])
def test_probe_detects_truncation_in_every_mode(tmp_path, fmt, ext):
    p = write_image(tmp_path / f"a{ext}", (10, 200, 30), (40, 30), fmt=fmt)
    for mode in ("fast", "full", "none"):
        assert probe_image(p, mode) is None
    truncate(p, 0.6)
    assert "decode" in probe_image(p, "fast")
    assert "decode" in probe_image(p, "full")
    assert probe_image(p, "none") is None  # only existence is checked
    assert probe_image(tmp_path / "missing.jpg") == "file not found"
    with pytest.raises(ValueError, match="verify"):
        probe_image(p, "quick")


def test_probe_accepts_padding_and_reads_by_content(tmp_path):
    data = image_bytes((1, 2, 3), (20, 20))
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(data + b"\x00" * 100)
    assert probe_image(padded) is None
    trailing = tmp_path / "trailing.jpg"  # garbage after EOI: decodes, so accepted
    trailing.write_bytes(data + b"camera junk")
    assert probe_image(trailing) is None
    noext = tmp_path / "subject01"
    noext.write_bytes(image_bytes((5, 5, 5), (8, 8), fmt="GIF", mode="L"))
    assert probe_image(noext) is None
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    assert probe_image(text) == "not an image Pillow can decode"
