"""Synthetic FACS faces: design, determinism, ground truth, geometry, bad input."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pandas as pd
import pytest

from facebrain.stimuli import (
    ACTION_UNITS,
    CANONICAL_EXPRESSIONS,
    EXPRESSION_PROTOTYPES,
    StimulusSet,
    SyntheticFaceSource,
    synthetic_faces,
    synthetic_identities,
    synthetic_kdef,
)
from facebrain.stimuli._synthetic_render import render_face

VIEWS = ["FL", "HL", "S", "HR", "FR"]
REQUIRED_AUS = (1, 2, 4, 5, 6, 7, 9, 12, 15, 20, 23, 26)
# KDEF's file-name pattern, as the real-dataset loader parses it (issue 2, section 4)
KDEF_NAME = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)$")


@pytest.fixture(scope="module")
def kdef() -> StimulusSet:
    return synthetic_kdef(seed=0, image_size=64)


@pytest.fixture(scope="module")
def small() -> StimulusSet:
    return synthetic_faces(3, list(CANONICAL_EXPRESSIONS), VIEWS, image_size=48, seed=5)


def id_cols(t):
    return [c for c in t.columns if c.startswith("id_")]


def au_cols(t):
    return [c for c in t.columns if c.startswith("au_")]


# ------------------------------------------------------------------- design
def test_kdef_design(kdef):
    t = kdef.table
    assert len(kdef) == 4900
    assert t.index.is_unique
    assert all(KDEF_NAME.match(s) for s in t.index)
    people = t.groupby("identity")["gender"].first()
    assert len(people) == 70 and (people == "F").sum() == 35 and (people == "M").sum() == 35
    assert sorted(people.index)[:2] == ["F01", "F02"] and "M35" in people.index
    cells = t.groupby(["identity", "session", "expression", "view"]).size()
    assert len(cells) == 70 * 2 * 7 * 5 and (cells == 1).all()
    # the id encodes the labels, exactly as in KDEF's file names
    for sid, row in t.sample(50, random_state=0).iterrows():
        m = KDEF_NAME.match(sid)
        assert m.group(1) == row["session"] and m.group(2) + m.group(3) == row["identity"]
        assert m.group(5) == row["view"] and m.group(4) == row["kdef_code"]
    assert set(t["expression"]) == set(CANONICAL_EXPRESSIONS)
    assert (t["intensity"] == 1.0).all()


def test_kdef_sessions_differ_only_in_nuisance(kdef):
    t = kdef.table
    a = t[t["session"] == "A"].set_index(["identity", "expression", "view"]).sort_index()
    b = t[t["session"] == "B"].set_index(["identity", "expression", "view"]).sort_index()
    same = id_cols(t) + au_cols(t) + ["yaw", "gender"]
    pd.testing.assert_frame_equal(a[same], b[same])
    for col in ("light_azimuth", "shift_x", "noise_seed"):
        assert (a[col].to_numpy() != b[col].to_numpy()).mean() > 0.99


def test_kdef_each_expression_is_its_own_photograph(kdef):
    """Lighting is fixed per (person, view, session); head position and sensor
    noise are drawn per photograph, as in a real photographed set."""
    t = kdef.table
    g = t.groupby(["identity", "view", "session"])
    for col in ("light_azimuth", "light_elevation", "light_ambient"):
        assert (g[col].nunique() == 1).all(), col
    for col in ("shift_x", "shift_y", "scale", "noise_seed"):
        assert (g[col].nunique() == 7).mean() > 0.99, col


def test_identities_preset_design():
    s = synthetic_identities(6, 9, seed=2, image_size=40)
    t = s.table
    assert len(s) == 54 and t["identity"].nunique() == 6
    assert (t.groupby("identity").size() == 9).all()
    assert t.index[0] == "n000000_0000" and t.index[-1] == "n000005_0008"
    assert t["intensity"].between(0.3, 1.2).all()
    assert t["yaw"].between(-90, 90).all() and t["yaw"].nunique() > 0.9 * len(t)
    yaw_of = {"FL": -90, "HL": -45, "S": 0, "HR": 45, "FR": 90}
    nearest = t["yaw"].apply(lambda y: min(yaw_of, key=lambda v: abs(yaw_of[v] - y)))
    assert (nearest == t["view"]).all()
    assert t["expression"].nunique() > 2
    assert s.load(0).shape == (40, 40, 3)


def test_identity_index_ranges_disjoint(kdef):
    crawl = synthetic_identities(200, 1, seed=0)
    faces = synthetic_faces(50, ["neutral"], ["S"], seed=0)
    k = set(kdef.table["identity_index"])
    c = set(crawl.table["identity_index"])
    f = set(faces.table["identity_index"])
    assert not (k & c) and not (k & f) and not (c & f)
    # and the people themselves differ: no identity vector repeats across presets
    vecs = pd.concat([kdef.table[id_cols(kdef.table)].drop_duplicates(),
                      crawl.table[id_cols(crawl.table)]])
    assert not vecs.round(12).duplicated().any()


def test_factorial_design_and_ids(small):
    t = small.table
    assert len(small) == 3 * 7 * 5
    assert t.index.is_unique and t.index[0] == "id00000_neutral_FL_i100_s0"
    s2 = synthetic_faces([7, 3], "happy", ["S"], intensity=[0.5, 1.0], samples=2)
    assert len(s2) == 2 * 1 * 1 * 2 * 2
    assert list(s2.table["identity_index"].unique()) == [7, 3]


# ------------------------------------------------------------- ground truth
def test_ground_truth_columns(small):
    t = small.table
    assert len(id_cols(t)) >= 12
    for au in REQUIRED_AUS:
        assert f"au_{au:02d}" in t.columns and au in ACTION_UNITS
    for col in ("identity", "expression", "view", "gender", "intensity", "yaw",
                "light_azimuth", "light_elevation", "shift_x", "shift_y", "scale",
                "noise_sigma", "noise_seed"):
        assert col in t.columns, col


def test_identity_params_constant_across_expressions_and_views(small):
    t = small.table
    per_person = t.groupby("identity")[id_cols(t)].nunique()
    assert (per_person == 1).all().all()
    # different people have different parameters (every id_* varies somewhere)
    first = t.groupby("identity")[id_cols(t)].first()
    assert (first.nunique() > 1).sum() >= 12
    # same index -> same person whatever else is requested
    again = synthetic_faces([1], ["sad"], ["HR"], seed=5).table
    np.testing.assert_array_equal(
        again[id_cols(t)].to_numpy()[0], first.loc["id00001"].to_numpy())


def test_expression_params_constant_across_identities(small):
    t = small.table
    per_expr = t.groupby("expression")[au_cols(t)].nunique()
    assert (per_expr == 1).all().all()
    au = t.groupby("expression")[au_cols(t)].first()
    for expr, proto in EXPRESSION_PROTOTYPES.items():
        for k in ACTION_UNITS:
            assert au.loc[expr, f"au_{k:02d}"] == pytest.approx(proto.get(k, 0.0))
    assert (au.loc["neutral"] == 0).all()
    assert au.loc["happy", "au_12"] > 0.5 and au.loc["happy", "au_06"] > 0.5
    assert au.loc["surprised", "au_26"] > 0.5 and au.loc["angry", "au_04"] > 0.5
    # the intensity scale multiplies the prototype
    half = synthetic_faces(2, ["fearful"], ["S"], intensity=0.5).table
    np.testing.assert_allclose(half[au_cols(t)].to_numpy(),
                               0.5 * np.tile(au.loc["fearful"].to_numpy(), (2, 1)))


# ------------------------------------------------------------------ pixels
@pytest.mark.parametrize("size", [32, 112])
def test_image_shape_dtype(size):
    s = synthetic_faces(1, ["happy"], ["HL"], image_size=size, seed=3)
    img = s.load(0)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank


def test_deterministic_and_picklable():
    args = {"identities": [4, 11], "expressions": ["angry", "surprised"], "views": ["S", "HR"]}
    a = synthetic_faces(**args, image_size=56, seed=9)
    np.random.seed(123)  # global RNG state must not matter
    b = synthetic_faces(**args, image_size=56, seed=9)
    order = [3, 0, 7, 5]
    imgs_a = [a.load(i) for i in order]
    imgs_b = [b.load(i) for i in reversed(order)][::-1]  # other rendering order
    for x, y in zip(imgs_a, imgs_b):
        assert x.tobytes() == y.tobytes()
    src = pickle.loads(pickle.dumps(a.image_source))
    assert isinstance(src, SyntheticFaceSource) and len(src) == len(a)
    for i in order:
        assert src(i).tobytes() == a.load(i).tobytes()
    # another seed gives other people
    c = synthetic_faces(**args, image_size=56, seed=10)
    assert c.load(0).tobytes() != a.load(0).tobytes()


def test_same_bytes_in_a_fresh_process():
    """Another interpreter (other thread settings, other import order) renders
    the same bytes: nothing depends on process state."""
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, numpy as np; np.random.seed(7);"
        "from facebrain.stimuli import synthetic_identities as f;"
        "s = f(3, 2, seed=4, image_size=40);"
        "print(','.join(hashlib.sha256(s.load(i).tobytes()).hexdigest() for i in (5, 0, 3)))"
    )
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout.strip()
    s = synthetic_identities(3, 2, seed=4, image_size=40)
    here = ",".join(hashlib.sha256(s.load(i).tobytes()).hexdigest() for i in (5, 0, 3))
    assert out == here


def test_subset_and_torch_keep_pixels(small):
    sub = small.subset("expression == 'happy' and view == 'S'")
    assert len(sub) == 3
    for sid in sub.ids:
        np.testing.assert_array_equal(sub.load(sid), small.load(sid))
    x, i = sub.to_torch()[1]
    assert tuple(x.shape) == (3, 48, 48) and i == 1


def test_intensity_zero_equals_neutral():
    s = synthetic_faces([4, 9], ["happy", "neutral", "disgusted"], ["S", "HR"],
                        intensity=0.0, image_size=64)
    t = s.table
    for person in ("id00004", "id00009"):
        for view in ("S", "HR"):
            rows = t[(t["identity"] == person) & (t["view"] == view)]
            imgs = [s.load(sid) for sid in rows.index]
            assert imgs[0].tobytes() == imgs[1].tobytes() == imgs[2].tobytes()


def test_intensity_scale_is_graded():
    s = synthetic_faces([2], ["neutral", "surprised"], ["S"], intensity=[0.0, 0.3, 0.6, 1.0],
                        image_size=64)
    neutral = s.load("id00002_neutral_S_i000_s0").astype(float)
    d = [np.abs(s.load(f"id00002_surprised_S_i{k:03d}_s0").astype(float) - neutral).mean()
         for k in (0, 30, 60, 100)]
    assert d[0] == 0 and d[1] < d[2] < d[3]


def _params(**over):
    s = synthetic_faces([6], ["happy"], ["S"], image_size=64, seed=1)
    p = s.image_source.parameters(0)
    p.update(light_azimuth=0.0, shift_x=0.0, shift_y=0.0, scale=1.0, noise_sigma=0.0)
    p.update(over)
    return p


def test_views_are_mirror_geometry():
    """Yaw +45 mirrored equals yaw -45 (the face and frontal light are symmetric),
    and the views differ geometrically from each other."""
    imgs = {y: render_face(_params(yaw=float(y), id_hair_part=0.0), 96).astype(float)
            for y in (-90, -45, 0, 45, 90)}
    for y in (45, 90):
        mirror_err = np.abs(imgs[y][:, ::-1] - imgs[-y]).mean()
        assert mirror_err < 0.5, (y, mirror_err)
        assert np.abs(imgs[y] - imgs[-y]).mean() > 8
    # the frontal view is (nearly) its own mirror image; turned views are not
    assert np.abs(imgs[0][:, ::-1] - imgs[0]).mean() < 0.5
    # turning moves the face: the nose side of the silhouette leads
    def extent(img):
        gray = img.mean(axis=2)
        mask = np.abs(gray - np.median(gray[:5])) > 20
        cols = np.nonzero(mask[48:62])[1]  # rows around the nose tip
        return cols.min(), cols.max()
    left, right = extent(imgs[-90]), extent(imgs[90])
    assert left[0] < right[0] - 5 and right[1] > left[1] + 5
    front = extent(imgs[0])
    assert abs((front[0] + front[1]) / 2 - 47.5) < 2


def test_view_changes_more_than_session(kdef):
    """Nuisance (session A vs B) changes pixels far less than a 45 degree turn."""
    def img(sid):
        return kdef.load(sid).astype(float)
    d_session = np.mean([np.abs(img(f"A{p}NES") - img(f"B{p}NES")).mean()
                         for p in ("F01", "M07", "F20")])
    d_view = np.mean([np.abs(img(f"A{p}NES") - img(f"A{p}NEHR")).mean()
                      for p in ("F01", "M07", "F20")])
    assert d_view > 2 * d_session


def test_antialiasing_matches_supersampling():
    """Analytic coverage approximates a 4x4 supersampled render far better than
    one hard sample per pixel does."""
    errs_aa, errs_hard = [], []
    for y in (0.0, 45.0):
        p = _params(yaw=y)
        ref = render_face(p, 64, supersample=4, antialias=False, noise=False).astype(float)
        aa = render_face(p, 64, noise=False).astype(float)
        hard = render_face(p, 64, antialias=False, noise=False).astype(float)
        errs_aa.append(np.abs(aa - ref).mean())
        errs_hard.append(np.abs(hard - ref).mean())
    assert max(errs_aa) < 2.0
    assert np.mean(errs_aa) < 0.6 * np.mean(errs_hard)


def test_noise_is_per_sample():
    s = synthetic_faces([1], ["neutral"], ["S"], samples=2, image_size=48)
    a, b = s.load(0).astype(int), s.load(1).astype(int)
    assert s.table["noise_seed"].nunique() == 2
    assert 0 < np.abs(a - b).mean() < 20


# -------------------------------------------------------------- bad input
def test_unknown_expression_lists_allowed():
    with pytest.raises(ValueError, match="unknown expression 'joyful'.*neutral.*surprised"):
        synthetic_faces(2, ["happy", "joyful"], ["S"])


def test_unknown_view_lists_allowed():
    with pytest.raises(ValueError, match=r"unknown view 'left'.*'FL', 'HL', 'S', 'HR', 'FR'"):
        synthetic_faces(2, ["happy"], ["left"])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: synthetic_faces(0, ["happy"], ["S"]), "identities must be >= 1; got 0"),
        (lambda: synthetic_faces(-3, ["happy"], ["S"]), "identities must be >= 1; got -3"),
        (lambda: synthetic_faces([2, -1], ["happy"], ["S"]), "identity index must be >= 0"),
        (lambda: synthetic_faces([2, 2], ["happy"], ["S"]), "duplicate"),
        (lambda: synthetic_faces(2, [], ["S"]), "expressions is empty"),
        (lambda: synthetic_faces(2, ["happy"], ["S"], samples=0), "samples must be >= 1"),
        (lambda: synthetic_faces(2, ["happy"], ["S"], intensity=-0.5), r"\[0, 2\]"),
        (lambda: synthetic_faces(2, ["happy"], ["S"], image_size=4), "image_size must be >= 16"),
        (lambda: synthetic_faces(2, ["happy"], ["S"], nuisance="studio"), "'lab', 'crawl'"),
        (lambda: synthetic_identities(-1, 3), "n_identities must be >= 1; got -1"),
        (lambda: synthetic_identities(3, 0), "images_per_identity must be >= 1; got 0"),
        (lambda: synthetic_kdef(seed=-2), "seed must be >= 0"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="identities"):
        synthetic_faces(2.5, ["happy"], ["S"])
    with pytest.raises(TypeError, match="n_identities must be an int"):
        synthetic_identities("10", 2)


def test_expression_acts_on_identity_geometry():
    """The same AUs move a wider mouth further: identity and expression are
    entangled in pixel space, not an additive expression image."""
    from facebrain.stimuli._synthetic_params import expression_aus

    def face(expr, **over):
        return render_face(_params(**expression_aus(expr), **over), 96, noise=False).astype(float)

    narrow = face("happy", id_mouth_width=0.18) - face("neutral", id_mouth_width=0.18)
    wide = face("happy", id_mouth_width=0.24) - face("neutral", id_mouth_width=0.24)
    assert np.abs(narrow).mean() > 0.3 and np.abs(wide).mean() > 0.3
    # the expression's pixel change itself depends on the person
    assert np.abs(wide - narrow).mean() > 0.25 * np.abs(narrow).mean()
    # the smile's horizontal extent grows with the identity's mouth width
    def extent(d):
        cols = np.nonzero(np.abs(d).sum(-1)[50:75] > 60)[1]
        return cols.max() - cols.min()
    assert extent(wide) >= extent(narrow) + 3


def test_jitter_translates_and_light_shades():
    base = render_face(_params(), 64, noise=False).astype(float)
    step = 2.0 / 64  # one pixel in image units
    moved = render_face(_params(shift_x=4 * step, shift_y=-3 * step), 64, noise=False)
    moved = moved.astype(float)
    # content moves 4 px right and 3 px up; the background gradient is tied to rows
    face = np.abs(base - np.median(base[:4], axis=(0, 1))).sum(-1) > 30
    sub = face[6:-6, 6:-6]
    a = moved[3:-9, 10:-2][sub]
    b = base[6:-6, 6:-6][sub]
    assert np.abs(a - b).mean() < 3.0
    assert np.abs(moved - base).mean() > 5
    # light from image left (negative azimuth) brightens the face's left half
    left = render_face(_params(light_azimuth=-60.0), 64, noise=False).astype(float)
    right = render_face(_params(light_azimuth=60.0), 64, noise=False).astype(float)
    rows = slice(20, 44)
    def lr(img):
        return img[rows, 18:30].mean() - img[rows, 34:46].mean()
    assert lr(left) > 15 and lr(right) < -15


def test_golden_bytes():
    """Pins the renderer's output: a change here means every synthetic data set
    changes; update the digests only for a deliberate change of the renderer."""
    import hashlib

    s = synthetic_faces([3], ["happy"], ["HL"], image_size=48, seed=0)
    digest = hashlib.sha256(s.load(0).tobytes()).hexdigest()[:16]
    table = synthetic_kdef(seed=0).table
    cols = id_cols(table) + au_cols(table) + ["yaw", "light_azimuth", "noise_seed"]
    tdigest = hashlib.sha256(table[cols].to_numpy().tobytes()).hexdigest()[:16]
    assert (digest, tdigest) == GOLDEN, (digest, tdigest)


GOLDEN = ("dffc3c3eeb11c03a", "7276c214ff8760f6")


def test_smile_matches_measured_posed_smiles():
    """A full smile (AU12 with AU25) as measured on real smiles: mouth width
    +27 % (Tarantili et al. 2005) and a commissure excursion of 9.3 +- 2.8 mm
    (marker study of maximal smiles), with the upper teeth showing. Measured
    here from the pixels: lip pixels are the ones much redder than the skin."""
    from facebrain.stimuli._synthetic_params import expression_aus

    size = 256
    mm_per_px = 115.0 / (0.8 * size / 2)  # head half-height H ~ 115 mm spans 0.8 image units

    def lips(expr):
        img = render_face(_params(**expression_aus(expr)), size, noise=False).astype(float)
        ratio = img[..., 0] / (img[..., 1] + 1.0)
        mask = ratio > 1.2 * np.median(ratio[150:200, 100:156])
        mask[:150] = False  # below the nose only
        ys, xs = np.nonzero(mask)
        left, right = xs.min(), xs.max()
        corner_row = (ys[xs == left].mean() + ys[xs == right].mean()) / 2
        return left, right, corner_row, img

    l0, r0, y0, neutral = lips("neutral")
    l1, r1, y1, happy = lips("happy")
    assert 1.20 <= (r1 - l1) / (r0 - l0) <= 1.36
    lateral, lift = (r1 - l1 - (r0 - l0)) / 2 * mm_per_px, (y0 - y1) * mm_per_px
    assert lift > 3.0  # corners go up, not only out
    assert 9.3 - 2.8 <= np.hypot(lateral, lift) <= 9.3 + 2.8
    # teeth: bright, nearly grey pixels between the lips in the smile, none at rest
    def teeth(img):
        box = img[150:210, l1:r1 + 1]
        grey = box.min(axis=-1) > 0.8 * box.max(axis=-1)
        return int((grey & (box.max(axis=-1) > 140)).sum())
    assert teeth(neutral) == 0 and teeth(happy) > 100


def test_rendered_faces_memo_gives_the_rendered_bytes_as_private_copies():
    from facebrain.stimuli import _synthetic

    s = synthetic_faces(2, ["neutral", "happy"], ["S"], image_size=24)
    src = s.image_source
    _synthetic._RENDERED.clear()
    first = src(1)
    np.testing.assert_array_equal(first, render_face(src.parameters(1), 24))
    first[:] = 0  # the caller's copy: the memo keeps the face
    again = src(1)
    np.testing.assert_array_equal(again, render_face(src.parameters(1), 24))
    assert again.flags.writeable
    # the same parameters at another size are another face
    big = _synthetic.SyntheticFaceSource(src.params, src.columns, 32)
    assert big(1).shape == (32, 32, 3)
    memo = _synthetic._RenderMemo(max_bytes=2 * 24 * 24 * 3)  # two faces
    for k in range(3):
        memo.put((k,), src(k % 4))
    assert memo.get((0,)) is None and memo.get((2,)) is not None
    assert memo.nbytes == 2 * 24 * 24 * 3


def _render_in_reverse(fn, jobs):
    # a stand-in for another process: runs the jobs out of order, returns in job order
    return [fn(*job) for job in jobs[::-1]][::-1]


def test_prerender_keeps_the_faces_a_serial_render_gives(monkeypatch):
    from facebrain.stimuli import _synthetic

    s = synthetic_faces(3, ["neutral", "happy"], ["S", "HL"], image_size=24)
    src = s.image_source
    _synthetic._RENDERED.clear()
    calls = []

    def mapper(fn, jobs):
        calls.append([len(j[0]) for j in jobs])
        return _render_in_reverse(fn, jobs)

    assert src.prerender([0, 5, 5, 7], chunks=2, map_chunks=mapper) == 3
    assert calls == [[2, 1]]
    # later reads come from the memo, not from the renderer
    monkeypatch.setattr(_synthetic, "render_face", lambda *a, **k: pytest.fail("rendered"))
    for i in (0, 5, 7):
        np.testing.assert_array_equal(src(i), _synthetic._RENDERED.get(src._key(i)))
    monkeypatch.undo()
    for i in (0, 5, 7):
        np.testing.assert_array_equal(src(i), render_face(src.parameters(i), 24))
    # only missing faces are rendered: 12 images, 3 kept
    assert src.prerender(chunks=4) == len(s) - 3
    assert src.prerender(chunks=4) == 0


def test_prerender_skips_sets_larger_than_the_memo(monkeypatch):
    from facebrain.stimuli import _synthetic

    s = synthetic_faces(2, ["neutral"], ["S"], image_size=24)
    monkeypatch.setattr(_synthetic, "_RENDERED", _synthetic._RenderMemo(24 * 24 * 3))
    assert s.image_source.prerender() == 0
    assert _synthetic._RENDERED.nbytes == 0
