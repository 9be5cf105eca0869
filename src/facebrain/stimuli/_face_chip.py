"""Aligned face chips computed exactly as dlib's ``get_face_chip`` (numpy only).

dlib's recipe (``dlib/image_transforms/interpolation.h``): a similarity
transform (Umeyama) maps its 5-point template, padded by ``padding`` and
scaled to ``size``, onto the image's 5 landmarks; the chip rectangle, its
angle and a ``pyramid_down<2>`` image pyramid (5-tap [1 4 6 4 1] filter,
integer arithmetic) are derived from it, and the chip is sampled bilinearly
(truncating to uint8; samples outside the image are black). Reproducing it
here means a chip needs no dlib at run time once landmarks are known, and the
test suite can compare the two.
"""

from __future__ import annotations

import math

import numpy as np

from .._boundary import public
from ..errors import ParameterError, ShapeError

__all__ = ["DLIB_TEMPLATE_5", "chip_details", "extract_face_chip", "similarity_transform"]

#: dlib's 5-point template on the unit square, in the order of
#: ``shape_predictor_5_face_landmarks.dat``'s parts: subject's left eye outer and
#: inner corner, right eye outer and inner corner, bottom of the nose.
DLIB_TEMPLATE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ c R src + t`` (Umeyama 1991, eqs. 34-43).

    Parameters
    ----------
    src, dst : ndarray of shape (n_points, 2)

    Returns
    -------
    M : ndarray of shape (2, 2)
        ``c R``.
    t : ndarray of shape (2,)
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sigma_s = ((src - mu_s) ** 2).sum(1).mean()
    cov = (dst - mu_d).T @ (src - mu_s) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    det_cov = np.linalg.det(cov)
    if det_cov < 0 or (det_cov == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        if d[1] < d[0]:
            s[1, 1] = -1
        else:
            s[0, 0] = -1
    r = u @ s @ vt
    c = 1.0 / sigma_s * np.trace(np.diag(d) @ s) if sigma_s != 0 else 1.0
    t = mu_d - c * r @ mu_s
    return c * r, t


def chip_details(landmarks: np.ndarray, size: int = 150, padding: float = 0.25):
    """dlib's ``get_face_chip_details`` for 5 landmarks.

    Returns
    -------
    rect : tuple of float
        ``(left, top, right, bottom)`` of the chip in image pixels (dlib's drectangle).
    angle : float
        Rotation in radians.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (5, 2):
        raise ShapeError(f"expected 5 landmarks of shape (5, 2); got {landmarks.shape}")
    if padding < 0 or size < 1:
        raise ParameterError(f"need padding >= 0 and size >= 1; got padding={padding}, size={size}")
    chip_pts = (padding + DLIB_TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(chip_pts, landmarks)
    p = m @ np.array([1.0, 0.0])
    angle = math.atan2(p[1], p[0])
    scale = math.hypot(p[0], p[1])
    cx, cy = m @ np.array([size / 2.0, size / 2.0]) + t
    w = size * scale - 1
    h = size * scale - 1
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle


def _rect_down(rect):
    l, t, r, b = rect
    return (l / 2.0 - 1.25, t / 2.0 - 0.75, r / 2.0 - 1.25, b / 2.0 - 0.75)


def _area(rect) -> float:
    l, t, r, b = rect
    if l > r or t > b:
        return 0.0
    return (r - l + 1) * (b - t + 1)


def _rotate(center, p, angle):
    c, s = math.cos(angle), math.sin(angle)
    x, y = p[0] - center[0], p[1] - center[1]
    return (c * x - s * y + center[0], s * x + c * y + center[1])


def _pyramid_down(img: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` on a uint8 (H, W, C) image (integer arithmetic)."""
    h, w = img.shape[:2]
    if h <= 8 or w <= 8:
        return img[:0, :0]
    nc = (w - 3) // 2
    nr = (h - 3) // 2
    x = img.astype(np.uint32)
    oc = 2 * np.arange(nc)
    tmp = x[:, oc] + 4 * x[:, oc + 1] + 6 * x[:, oc + 2] + 4 * x[:, oc + 3] + x[:, oc + 4]
    r = 2 + 2 * np.arange(nr)
    out = tmp[r - 2] + 4 * tmp[r - 1] + 6 * tmp[r] + 4 * tmp[r + 1] + tmp[r + 2]
    return (out // 256).astype(np.uint8)


def _to_int_rect(rect):
    return tuple(math.floor(v + 0.5) for v in rect)


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    left = np.floor(xs).astype(np.int64)
    top = np.floor(ys).astype(np.int64)
    ok = (left >= 0) & (top >= 0) & (left + 1 < w) & (top + 1 < h)
    lc = np.clip(left, 0, max(w - 2, 0))
    tc = np.clip(top, 0, max(h - 2, 0))
    fx = (xs - left)[..., None]
    fy = (ys - top)[..., None]
    f = img.astype(np.float64)
    tl = f[tc, lc]
    tr = f[tc, np.minimum(lc + 1, w - 1)]
    bl = f[np.minimum(tc + 1, h - 1), lc]
    br = f[np.minimum(tc + 1, h - 1), np.minimum(lc + 1, w - 1)]
    val = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    out = np.clip(val, 0, 255).astype(np.uint8)  # dlib truncates (static_cast)
    out[~ok] = 0
    return out


@public
def extract_face_chip(img: np.ndarray, landmarks: np.ndarray, size: int = 150,
                      padding: float = 0.25) -> np.ndarray:
    """The aligned chip dlib's ``get_face_chip(img, shape, size, padding)`` returns.

    Parameters
    ----------
    img : ndarray of shape (H, W, 3), uint8
        RGB image.
    landmarks : ndarray of shape (5, 2)
        ``(x, y)`` of the 5 parts of ``shape_predictor_5_face_landmarks.dat``.
    size : int, default 150
        Side of the square chip (150 is what dlib's face-recognition ResNet takes).
    padding : float, default 0.25
        Border around the template, as a fraction of its size.

    Returns
    -------
    chip : ndarray of shape (size, size, 3), uint8

    Examples
    --------
    >>> img = np.zeros((64, 48, 3), np.uint8)
    >>> pts = np.array([[30, 20], [26, 20], [14, 20], [18, 20], [22, 30]], float)
    >>> extract_face_chip(img, pts, size=32).shape
    (32, 32, 3)
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.dtype != np.uint8:
        raise ShapeError(f"expected an RGB uint8 image (H, W, 3); got {img.dtype} {img.shape}")
    rect, angle = chip_details(landmarks, size, padding)
    rows = cols = int(size)
    l, t, r, b = rect
    if angle == 0 and rows == r - l + 1 and cols == b - t + 1:  # dlib's plain-copy path
        il, it, ir, ib = _to_int_rect(rect)
        out = np.zeros((ib - it + 1, ir - il + 1, img.shape[2]), np.uint8)
        H, W = img.shape[:2]
        y0, y1, x0, x1 = max(it, 0), min(ib, H - 1), max(il, 0), min(ir, W - 1)
        if y1 >= y0 and x1 >= x0:
            out[y0 - it:y1 - it + 1, x0 - il:x1 - il + 1] = img[y0:y1 + 1, x0:x1 + 1]
        return out
    n_pix = rows * cols
    # pyramid depth and the bounding box of the rotated, grown rectangle
    depth, grow = 0, 2.0
    dr = _rect_down(rect)
    while _area(dr) > n_pix:
        dr = _rect_down(dr)
        depth += 1
        grow = grow * 2 + 2
    cent = ((l + r) / 2, (t + b) / 2)
    corners = [_rotate(cent, p, angle) for p in ((l, t), (r, t), (l, b), (r, b))]
    xs = [p[0] for p in corners]
    ys = [p[1] for p in corners]
    H, W = img.shape[:2]
    g = (min(xs) - grow, min(ys) - grow, max(xs) + grow, max(ys) + grow)
    g = (max(g[0], 0.0), max(g[1], 0.0), min(g[2], W - 1.0), min(g[3], H - 1.0))
    bl_, bt_, br_, bb_ = _to_int_rect(g)
    sub = img[max(bt_, 0):bb_ + 1, max(bl_, 0):br_ + 1]
    # the level to sample from
    rr = (l - bl_, t - bt_, r - bl_, b - bt_)
    level = -1
    while _area(_rect_down(rr)) > n_pix:
        level += 1
        rr = _rect_down(rr)
    src = sub
    for _ in range(level + 1):
        src = _pyramid_down(src)
    # affine map chip (x, y) -> source (x, y) through three corners
    l2, t2, r2, b2 = rr
    c2 = ((l2 + r2) / 2, (t2 + b2) / 2)
    frm = np.array([[0, 0], [cols - 1, 0], [0, rows - 1]], np.float64)
    to = np.array([_rotate(c2, (l2, t2), angle), _rotate(c2, (r2, t2), angle),
                   _rotate(c2, (l2, b2), angle)])
    a = np.hstack([frm, np.ones((3, 1))])
    coef = np.linalg.solve(a, to)  # (3, 2): [x, y, 1] @ coef
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    sx = xx * coef[0, 0] + yy * coef[1, 0] + coef[2, 0]
    sy = xx * coef[0, 1] + yy * coef[1, 1] + coef[2, 1]
    if src.size == 0:
        return np.zeros((rows, cols, img.shape[2]), np.uint8)
    return _bilinear(src, sx, sy)
