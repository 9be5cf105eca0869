import numpy as np
import pandas as pd
import pytest

from facebrain.errors import DataFormatError
from facebrain.stimuli import StimulusSet


def test_basic_access(tiny_stimuli):
    s = tiny_stimuli
    assert len(s) == 18
    img = s.load("p1_happy")
    assert img.shape == (13, 11, 3) and img.dtype == np.uint8
    assert s.load(4).tolist() == img.tolist()
    assert s.load(0, size=(7, 5)).shape == (7, 5, 3)


def test_subset_keeps_pixels(tiny_stimuli):
    s = tiny_stimuli
    sub = s.subset("expression == 'sad'")
    assert len(sub) == 6
    np.testing.assert_array_equal(sub.load("p2_sad"), s.load("p2_sad"))
    sub2 = sub.subset(np.array([False, True, False, False, False, True]))
    assert list(sub2.ids) == ["p1_sad", "p5_sad"]
    np.testing.assert_array_equal(sub2.load(1), s.load("p5_sad"))


def test_labels_canonical_order(tiny_stimuli):
    codes, cats = tiny_stimuli.labels("expression")
    assert cats == ["neutral", "happy", "sad"]
    assert codes[:3].tolist() == [0, 1, 2]
    with pytest.raises(KeyError, match="gender"):
        tiny_stimuli.labels("gender")


def test_to_torch(tiny_stimuli):
    ds = tiny_stimuli.to_torch()
    x, i = ds[3]
    assert tuple(x.shape) == (3, 13, 11) and i == 3


def test_save_and_reload(tiny_stimuli, tmp_path):
    path = tiny_stimuli.save(tmp_path / "set" / "manifest.csv")
    again = StimulusSet.load_manifest(path)
    assert list(again.ids) == list(tiny_stimuli.ids)
    assert not again.table["path"].str.startswith("/").any()  # relative kept relative
    for sid in ["p0_neutral", "p5_sad"]:
        np.testing.assert_array_equal(again.load(sid), tiny_stimuli.load(sid))


def test_bad_tables():
    t = pd.DataFrame({"stimulus_id": ["a", "a"], "identity": ["x", "y"],
                      "expression": ["happy", "sad"], "view": ["S", "S"], "path": ["1", "2"]})
    with pytest.raises(DataFormatError, match="duplicate stimulus_id.*'a'"):
        StimulusSet(t)
    with pytest.raises(DataFormatError, match="required column.*'view'"):
        StimulusSet(t.drop(columns="view").assign(stimulus_id=["a", "b"]))
