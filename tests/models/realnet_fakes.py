"""Tiny writers of dlib's serialisation primitives and real-looking test chips.

The writer follows ``dlib/serialize.h`` (integers: control byte + little-endian
magnitude; strings: length + bytes) and only builds small malformed files for
the bad-input tests; the reader's correctness is checked against dlib itself.
"""

from __future__ import annotations

import importlib.util

import numpy as np


def dlib_int(v: int) -> bytes:
    mag = abs(int(v))
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little") if mag else b""
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def dlib_str(s: str) -> bytes:
    return dlib_int(len(s)) + s.encode()


def dlib_real(x: float) -> bytes:
    m, e = np.frexp(np.float64(x))
    mant = int(np.ldexp(m, 53))
    return dlib_int(mant) + dlib_int(int(e) - 53)


def loss_header() -> bytes:
    """``add_loss_layer`` version 1 + ``loss_metric_2`` (margin 0.04, threshold 0.6)."""
    return dlib_int(1) + dlib_str("loss_metric_2") + dlib_real(0.04) + dlib_real(0.6)


def chips_150(n_synthetic: int = 4) -> list[np.ndarray]:
    """150 x 150 RGB chips: dlib-aligned faces of skimage's astronaut (if dlib and
    skimage are there) and facebrain's synthetic faces."""
    from facebrain.stimuli import synthetic_faces

    chips = []
    if all(importlib.util.find_spec(m) for m in ("dlib", "skimage", "face_recognition_models")):
        import dlib
        from skimage.data import astronaut

        from facebrain.models._packaged import packaged_file

        img = astronaut()
        sp = dlib.shape_predictor(str(packaged_file(
            "face_recognition_models", "models/shape_predictor_5_face_landmarks.dat",
            distribution="face-recognition-models", install="", model="test")))
        for rect in dlib.get_frontal_face_detector()(img, 1):
            chips.append(np.asarray(dlib.get_face_chip(img, sp(img, rect), size=150)))
    faces = synthetic_faces(n_synthetic, ["happy", "sad"], "S", image_size=150, seed=3)
    chips += [faces.load(i) for i in range(min(len(faces), n_synthetic))]
    return chips
