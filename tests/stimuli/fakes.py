"""Tiny, faithful fakes of real face-dataset formats, for tests in any room.

Each builder writes a miniature copy of a dataset's layout (folder names,
file names, CSV quirks) with small images whose content is known: every image
is a flat colour given by :func:`color_for` of its key, so a test can check
that the loader attached the right labels to the right pixels.

Import it as ``from fakes import ...`` from tests in ``tests/stimuli`` and as
``from stimuli.fakes import ...`` from other test folders (pytest puts
``tests/`` on ``sys.path`` for the root ``conftest.py``).

Examples
--------
>>> from stimuli.fakes import make_kdef   # doctest: +SKIP
>>> truth = make_kdef(tmp_path / "KDEF")  # doctest: +SKIP
>>> load_kdef(tmp_path / "KDEF").table.loc[truth.index, "expression"].equals(
...     truth["expression"])             # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

KDEF_CODES = {"AF": "fearful", "AN": "angry", "DI": "disgusted", "HA": "happy",
              "NE": "neutral", "SA": "sad", "SU": "surprised"}
KDEF_VIEWS = ("FL", "HL", "S", "HR", "FR")
FER_NAMES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")


def color_for(key: str) -> tuple[int, int, int]:
    """A deterministic colour for ``key`` (channels in 30..225, far from clipping)."""
    h = hashlib.sha256(key.encode()).digest()
    return tuple(int(30 + b % 196) for b in h[:3])


def image_bytes(color, size=(13, 11), fmt="JPEG", mode="RGB") -> bytes:
    """Encode a flat ``color`` image of ``size`` = (height, width)."""
    h, w = size
    arr = np.empty((h, w, 3), np.uint8)
    arr[:] = color
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    kw = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_image(path, color, size=(13, 11), fmt="JPEG", mode="RGB") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(color, size, fmt, mode))
    return path


def truncate(path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes (a truncated download)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


# ---------------------------------------------------------------------- KDEF
def make_kdef(root, persons=("F01", "M02"), sessions=("A", "B"), codes=tuple(KDEF_CODES),
              views=KDEF_VIEWS, *, ext=".JPG", size=(19, 14)) -> pd.DataFrame:
    """Write a KDEF tree ``root/AF01/AF01AFS.JPG``; return the expected table.

    The returned DataFrame is indexed by stimulus id with ``identity,
    expression, view, session, path, color``.
    """
    root = Path(root)
    rows = []
    for s in sessions:
        for p in persons:
            folder = f"{s}{p}"
            for c in codes:
                for v in views:
                    sid = f"{folder}{c}{v}"
                    rel = f"{folder}/{sid}{ext}"
                    write_image(root / rel, color_for(sid), size)
                    rows.append({"stimulus_id": sid, "identity": p, "expression": KDEF_CODES[c],
                                 "view": v, "session": s, "path": rel, "color": color_for(sid)})
    return pd.DataFrame(rows).set_index("stimulus_id")


# ----------------------------------------------------------------------- LFW
LFW_PEOPLE = {"Aaron_Peirsol": 4, "Abdullah_Gul": 3, "George_W_Bush": 5, "Zico": 1,
              "Jean-Pierre_Raffarin": 2, "Aaron_Sorkin": 2}


def make_lfw(root, people=None, *, layout="lfw", size=(16, 12)) -> Path:
    """Write an LFW tree; return the folder holding the person folders.

    ``layout``: ``"lfw"``, ``"lfw_funneled"``, ``"lfw-deepfunneled"`` (the folder
    names of the three public tarballs), or ``"lfw_home"`` (scikit-learn's cache:
    ``lfw_home/lfw_funneled/...`` next to the pairs files, tarballs and ``joblib/``).
    """
    people = LFW_PEOPLE if people is None else people
    root = Path(root)
    if layout == "lfw_home":
        home = root / "lfw_home"
        folder = home / "lfw_funneled"
        (home / "joblib" / "sklearn" / "datasets").mkdir(parents=True, exist_ok=True)
        (home / "lfw-funneled.tgz").write_bytes(b"not a real tarball")
    else:
        folder = root / layout
    for name, n in people.items():
        for i in range(1, n + 1):
            stem = f"{name}_{i:04d}"
            write_image(folder / name / f"{stem}.jpg", color_for(stem), size)
    return folder


def write_pairs_dev(path, matched, mismatched) -> Path:
    """``pairsDevTrain.txt`` format: header N, N matched lines, N mismatched lines."""
    if len(matched) != len(mismatched):
        raise ValueError("the Dev files have as many matched as mismatched pairs")
    lines = [str(len(matched))]
    lines += [f"{n}\t{i}\t{j}" for n, i, j in matched]
    lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in mismatched]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pairs_folds(path, folds) -> Path:
    """``pairs.txt`` format: header ``S N``; per fold N matched then N mismatched lines."""
    n = len(folds[0][0])
    lines = [f"{len(folds)}\t{n}"]
    for matched, mismatched in folds:
        lines += [f"{a}\t{i}\t{j}" for a, i, j in matched]
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in mismatched]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ VGGFace2
VGG_META = [  # real rows of identity_meta.csv, including names with commas
    ("n000002", '"A_Fine_Frenzy"', 315, 1, "f"),
    ("n000282", '"Carol, Crystal"', 311, 1, "f"),
    ("n000001", '"14th_Dalai_Lama"', 424, 0, "m"),
]


def make_vggface2(root, split="train", identities=None, *, size=(40, 30),
                  box=(7, 5, 14, 20), meta=True, bboxes=True) -> pd.DataFrame:
    """Write ``root/split/n000002/0001_01.jpg`` trees, ``identity_meta.csv`` and
    ``bb_landmark/loose_bb_{split}.csv``; return the expected table.

    Each image has a grey background and a flat face-coloured box at
    ``box = (x, y, w, h)`` (shifted by one pixel per image), so a crop to the
    bounding box has the face colour everywhere.
    """
    root = Path(root)
    identities = identities or {"n000002": 3, "n000282": 2}
    rows = []
    H, W = size
    for k, (ident, n) in enumerate(identities.items()):
        for i in range(1, n + 1):
            sid = f"{ident}/{i:04d}_01"
            x, y, w, h = box[0] + i, box[1] + k, box[2], box[3]
            arr = np.full((H, W, 3), 128, np.uint8)
            arr[y:y + h, x:x + w] = color_for(sid)
            p = root / split / f"{sid}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(p, quality=95, subsampling=0)
            rows.append({"stimulus_id": sid, "identity": ident, "x": x, "y": y, "w": w, "h": h,
                         "color": color_for(sid)})
    table = pd.DataFrame(rows).set_index("stimulus_id")
    if meta:
        lines = ["Class_ID, Name, Sample_Num, Flag, Gender"]
        lines += [f"{c}, {nm}, {s}, {f}, {g}" for c, nm, s, f, g in VGG_META]
        (root / "identity_meta.csv").write_text("\n".join(lines) + "\n")
    if bboxes:
        bb = root / "bb_landmark" / f"loose_bb_{split}.csv"
        bb.parent.mkdir(parents=True, exist_ok=True)
        lines = ['"NAME_ID","X","Y","W","H"']
        lines += [f'"{sid}",{r.x},{r.y},{r.w},{r.h}' for sid, r in table.iterrows()]
        bb.write_text("\n".join(lines) + "\n")
    return table


# ------------------------------------------------------------------- FER2013
def make_fer2013(path, n=9, *, seed=0, usage=("Training", "PublicTest", "PrivateTest"),
                 bad_lines=None) -> tuple[np.ndarray, np.ndarray]:
    """Write ``emotion,pixels,Usage`` rows of 48x48 images; return (images, emotions).

    ``bad_lines`` maps a 0-based data-row index to replacement text for its
    pixels field (e.g. ``"1 2 3"`` or ``"12 x 7 ..."``).
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    emotions = np.arange(n) % 7
    lines = ["emotion,pixels,Usage"]
    for i in range(n):
        pix = " ".join(map(str, images[i].ravel()))
        if bad_lines and i in bad_lines:
            pix = bad_lines[i]
        lines.append(f"{emotions[i]},{pix},{usage[i % len(usage)]}")
    Path(path).write_text("\n".join(lines) + "\n")
    return images, emotions


# ------------------------------------------------------------- Yale faces
YALE_CONDITIONS = ("centerlight", "glasses", "happy", "leftlight", "noglasses", "normal",
                   "rightlight", "sad", "sleepy", "surprised", "wink")


def make_yale(root, subjects=3, conditions=YALE_CONDITIONS, size=(24, 18)) -> pd.DataFrame:
    """Yale Face Database layout: grayscale GIFs without extension, ``subject01.happy``.

    Also writes the ``Readme.txt`` that ships with it. Returns the expected table.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(1, subjects + 1):
        for c in conditions:
            name = f"subject{s:02d}.{c}"
            col = color_for(name)
            gray = round(0.299 * col[0] + 0.587 * col[1] + 0.114 * col[2])
            write_image(root / name, (gray, gray, gray), size, fmt="GIF", mode="L")
            rows.append({"stimulus_id": name, "identity": f"{s:02d}", "condition": c,
                         "gray": gray})
    (root / "Readme.txt").write_text("The Yale Face Database (size 6.4MB) ...\n")
    return pd.DataFrame(rows).set_index("stimulus_id")
