"""load_kdef on faithful fakes of the KDEF release (names, folders, known quirks)."""

import shutil
import warnings

import numpy as np
import pytest
from fakes import color_for, make_kdef, truncate, write_image

from facebrain.errors import DataFormatError
from facebrain.stimuli import KDEF_VIEWS, load_kdef

TOL = 3  # max abs difference of a flat-colour JPEG (quality 95, 4:4:4) from its colour


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _check_pixels(s, ids):
    for sid in ids:
        img = s.load(sid)
        assert img.dtype == np.uint8 and img.shape == (19, 14, 3)
        assert np.abs(img.astype(int) - np.array(color_for(sid))).max() <= TOL, sid


@pytest.fixture
def kdef_tree(tmp_path):
    root = tmp_path / "KDEF_and_AKDEF" / "KDEF"
    truth = make_kdef(root)
    (tmp_path / "KDEF_and_AKDEF" / "AKDEF").mkdir()
    return root, truth


def test_full_design_labels_and_pixels(kdef_tree):
    root, truth = kdef_tree
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean release gives no warning
        s = load_kdef(root)
    assert len(s) == 2 * 2 * 7 * 5 == len(truth)
    assert set(s.ids) == set(truth.index)
    t = s.table.loc[truth.index]
    for col in ("identity", "expression", "view", "session", "path"):
        assert t[col].tolist() == truth[col].tolist(), col
    # AF01 and BF01 are one person seen in two sessions
    assert set(s.table.loc[["AF01AFS", "BF01AFS"], "identity"]) == {"F01"}
    assert s.table.loc["AM02HAFR", ["gender", "kdef_expression"]].tolist() == ["male", "HA"]
    assert s.table.groupby("identity").size().to_dict() == {"F01": 70, "M02": 70}
    assert s.table.groupby(["expression", "view"]).size().eq(4).all()
    assert len(s.rejected) == 0 and s.notes["missing"] == [] and s.notes["n_expected"] == 140
    _check_pixels(s, ["AF01AFS", "BM02SUFL", "AM02NEHR", "BF01DIHL"])
    # ordered: session, gender, number, canonical expression, view
    assert list(s.ids[:5]) == [f"AF01NE{v}" for v in KDEF_VIEWS]


def test_archive_top_folder_and_case(tmp_path):
    top = tmp_path / "KDEF_and_AKDEF"
    make_kdef(top / "KDEF", persons=("F03",), sessions=("A",), codes=("HA", "NE"),
              views=("S", "HL"))
    person = top / "KDEF" / "AF03"
    (person / "AF03NEHL.JPG").rename(person / "af03nehl.jpeg")
    s = load_kdef(top, expressions=["HA", "NE"], views=["S", "HL"])
    assert sorted(s.ids) == ["AF03HAHL", "AF03HAS", "AF03NEHL", "AF03NES"]
    assert s.table.loc["AF03NEHL", "path"] == "AF03/af03nehl.jpeg"
    assert "KDEF/" in s.notes["root"]
    assert s.table.loc["AF03NEHL", ["expression", "view"]].tolist() == ["neutral", "HL"]


def test_filters_and_their_validation(kdef_tree):
    root, _ = kdef_tree
    s = load_kdef(root, views=["s", "HL"], expressions=["Happy", "af"], sessions="b")
    assert len(s) == 2 * 2 * 2
    assert set(s.table["view"]) == {"S", "HL"} and set(s.table["session"]) == {"B"}
    assert set(s.table["expression"]) == {"happy", "fearful"}
    with pytest.raises(ValueError, match=r"'XX'.*views=.*'FL', 'HL', 'S', 'HR', 'FR'"):
        load_kdef(root, views=["XX"])
    with pytest.raises(ValueError, match="joy"):
        load_kdef(root, expressions=["joy"])
    with pytest.raises(ValueError, match="sessions"):
        load_kdef(root, sessions=["C"])
    with pytest.raises(ValueError, match="empty"):
        load_kdef(root, views=[])


def test_misnamed_release_files_are_mapped_with_a_note(tmp_path):
    root = tmp_path / "KDEF"
    make_kdef(root, persons=("F31", "M31"), sessions=("A",), codes=("SA", "SU"),
              views=("HL", "HR"))
    # the public release ships these two without expression/view code
    (root / "AF31" / "AF31SAHL.JPG").rename(root / "AF31" / "AF31V.JPG")
    (root / "AM31" / "AM31SUHR.JPG").rename(root / "AM31" / "AM31H.JPG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_kdef(root, expressions=["sad", "surprised"], views=["HL", "HR"])
    assert len(s) == 8 and len(s.rejected) == 0
    row = s.table.loc["AF31SAHL"]
    assert (row["expression"], row["view"], row["identity"]) == ("sad", "HL", "F31")
    assert row["source_file"] == "AF31V.JPG" and row["path"] == "AF31/AF31V.JPG"
    assert "misnamed" in row["quirk"]
    assert s.table.loc["AM31SUHR", ["expression", "view"]].tolist() == ["surprised", "HR"]
    applied = " ".join(s.notes["kdef_quirks_applied"])
    assert "AF31V.JPG read as AF31SAHL.JPG" in applied and "AM31H.JPG" in applied
    _check_pixels(s, ["AF31SAHL", "AM31SUHR"])  # pixels of the renamed files


def test_correct_name_wins_over_quirk_duplicate(tmp_path):
    root = tmp_path / "KDEF"
    make_kdef(root, persons=("F31",), sessions=("A",), codes=("SA",), views=("HL",))
    shutil.copy(root / "AF31" / "AF31SAHL.JPG", root / "AF31" / "AF31V.JPG")
    with pytest.warns(UserWarning, match="AF31V.JPG"):
        s = load_kdef(root, expressions=["SA"], views=["HL"])
    assert list(s.ids) == ["AF31SAHL"]
    assert s.table.loc["AF31SAHL", "source_file"] == "AF31SAHL.JPG"
    assert "duplicate of AF31/AF31SAHL.JPG" in s.rejected["reason"].item()


def test_reported_black_images_are_checked(tmp_path):
    root = tmp_path / "KDEF"
    make_kdef(root, persons=("F01", "F10"), sessions=("A",), codes=("SU", "AF"),
              views=("FR",))
    write_image(root / "AF01" / "AF01SUFR.JPG", (2, 3, 1), (19, 14))  # black, as reported
    # AF10AFFR.JPG is listed too, but this copy is fine: it is kept
    with pytest.warns(UserWarning) as rec:
        s = load_kdef(root, expressions=["SU", "AF"], views=["FR"])
    msgs = " ".join(str(w.message) for w in rec)
    assert "AF01SUFR.JPG" in msgs and "1 of 4 images of the KDEF design" in msgs
    assert "AF01SUFR" not in s.ids and "AF10AFFR" in s.ids
    assert "mostly black" in s.rejected.set_index("path").loc["AF01/AF01SUFR.JPG", "reason"]
    assert s.notes["missing"] == ["AF01SUFR"]


def test_reported_odd_sizes_are_measured(tmp_path):
    root = tmp_path / "KDEF"
    make_kdef(root, persons=("M05", "M10"), sessions=("A", "B"), codes=("AN",), views=("FR",))
    write_image(root / "AM05" / "AM05ANFR.JPG", (50, 60, 70), (633, 970))  # as reported
    write_image(root / "BM10" / "BM10ANFR.JPG", (50, 60, 70), (762, 562))  # a fixed copy
    s = load_kdef(root, expressions=["angry"], views=["FR"])
    assert len(s) == 4 and len(s.rejected) == 0
    assert s.table.loc["AM05ANFR", "quirk"].startswith("size: 970x633 pixels, not 562x762")
    assert s.table.loc["BM10ANFR", "quirk"] == ""
    assert s.load("AM05ANFR").shape == (633, 970, 3)  # kept as it is, and said so
    assert any("AM05ANFR.JPG" in n for n in s.notes["kdef_quirks_applied"])


def test_file_in_wrong_person_folder_is_reported_not_guessed(kdef_tree):
    root, _ = kdef_tree
    shutil.copy(root / "AF01" / "AF01HAS.JPG", root / "AM02" / "AF01HAS.JPG")
    (root / "AF01" / "AF01HAS.JPG").unlink()
    with pytest.warns(UserWarning) as rec:
        s = load_kdef(root)
    msgs = [str(w.message) for w in rec]
    assert "AM02/AF01HAS.JPG" in msgs[0] and "1 of 140 images" in msgs[1]
    assert "AF01HAS" not in s.ids and len(s) == 139 and s.notes["missing"] == ["AF01HAS"]
    reason = s.rejected.set_index("path").loc["AM02/AF01HAS.JPG", "reason"]
    assert "person AF01" in reason and "folder AM02" in reason
    with pytest.raises(DataFormatError, match=r"AM02/AF01HAS.JPG.*strict=False"):
        load_kdef(root, strict=True)


def test_truncated_and_unreadable_files(kdef_tree):
    root, _ = kdef_tree
    truncate(root / "AF01" / "AF01NES.JPG")
    (root / "BM02" / "BM02SAFL.JPG").write_bytes(b"")
    (root / "AM02" / "Thumbs.db").write_bytes(b"\x00" * 10)  # OS litter: skipped
    (root / "readme.txt").write_text("KDEF")
    with pytest.warns(UserWarning) as rec:
        s = load_kdef(root)
    msg = str(rec[0].message)
    assert "AF01/AF01NES.JPG" in msg and "BM02/BM02SAFL.JPG" in msg and ".rejected" in msg
    assert len(s) == 138 and sorted(s.rejected["path"]) == [
        "AF01/AF01NES.JPG", "BM02/BM02SAFL.JPG"]
    assert s.rejected["reason"].str.contains("decode").all()
    assert sorted(s.notes["missing"]) == ["AF01NES", "BM02SAFL"]
    assert s.notes["ignored_non_image_files"] == ["readme.txt"]
    with pytest.raises(DataFormatError, match="AF01/AF01NES.JPG"):
        load_kdef(root, strict=True)
    # full decoding finds the same files
    assert sorted(_quiet(load_kdef, root, verify="full").rejected["path"]) == sorted(
        s.rejected["path"])


def test_bad_names_and_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_kdef(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no KDEF images.*AF01AFS.JPG"):
        load_kdef(tmp_path / "empty")
    root = tmp_path / "KDEF"
    make_kdef(root, persons=("F01",), sessions=("A",), codes=("HA",), views=("S",))
    write_image(root / "AF01" / "AF01XXS.JPG", (9, 9, 9))  # unknown expression code
    with pytest.warns(UserWarning, match="AF01XXS"):
        s = load_kdef(root, expressions=["happy"], views=["S"])
    assert "KDEF pattern" in s.rejected["reason"].item()
    with pytest.raises(DataFormatError, match="after the views"):
        _quiet(load_kdef, root, views=["FL"])
