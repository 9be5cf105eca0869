"""Drawing primitives of the synthetic-face renderer: coverage, blending, colours.

Per-pixel work here uses only ``+ - * /``, ``sqrt``, ``abs``, ``floor``,
``min``/``max`` and ``clip`` in float32, which IEEE-754 rounds correctly on any
SIMD path, so the same parameters give the same bytes on any machine.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
H_TOP = 0.80  # head half-height above the eye line, in image units (image spans [-1, 1])
CY = -0.10  # eye line, in image units (y points down)


# ----------------------------------------------------------------- helpers
_max, _min = np.maximum, np.minimum


def _clip(x, lo, hi):
    x = _max(x, lo)
    return x if hi is None else _min(x, hi)


def _clip01(x):
    return _min(_max(x, 0.0), 1.0)


def _sstep(e0: float, e1: float, x):
    t = _clip01((x - e0) / (e1 - e0))
    return t * t * (3.0 - 2.0 * t)


def _sstep_s(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _cov(sdf, aa):
    """Pixel coverage of the inside (``sdf < 0``) of a signed distance field."""
    return _clip01(0.5 - sdf / aa)


def _cos_sin_deg(deg: float) -> tuple[float, float]:
    """cos and sin of an angle in degrees, exact at multiples of 45 degrees.

    Other angles are rounded to 12 decimals so a last-bit difference between
    libm implementations cannot reach the pixels.
    """
    k = deg / 45.0
    if k == int(k):
        h = math.sqrt(0.5)
        return [(1.0, 0.0), (h, h), (0.0, 1.0), (-h, h), (-1.0, 0.0), (-h, -h), (0.0, -1.0),
                (h, -h)][int(k) % 8]
    r = math.radians(deg)
    return round(math.cos(r), 12), round(math.sin(r), 12)


def _silhouette(X, xc, P, Y, aa):
    """Coverage of rows ``|X - xc(Y)| < P(Y)`` (a smooth closed outline).

    Uses the signed distance estimate ``F / |grad F|`` of ``F = P^2 - (X - xc)^2``,
    which stays accurate where the outline is nearly horizontal (top, chin).
    """
    PP = P * P
    inside = np.flatnonzero(PP > 0)
    if inside.size >= 2:  # extend P^2 linearly (negative) past the top and bottom ends
        i0, i1 = inside[0], inside[-1]
        if i0 > 0:
            k = (PP[i0 + 1] - PP[i0]) / (Y[i0 + 1] - Y[i0])
            PP[:i0] = PP[i0] + (Y[:i0] - Y[i0]) * k
        if i1 < len(PP) - 1:
            k = (PP[i1] - PP[i1 - 1]) / (Y[i1] - Y[i1 - 1])
            PP[i1 + 1:] = PP[i1] + (Y[i1 + 1:] - Y[i1]) * k
    dPP = 0.5 * _deriv(PP, Y)  # P P'
    dxc = _deriv(xc, Y)
    Xc = X - xc.astype(F32)[:, None]
    num = PP.astype(F32)[:, None] - Xc * Xc
    gy = dPP.astype(F32)[:, None] + Xc * dxc.astype(F32)[:, None]
    den = 2.0 * np.sqrt(gy * gy + Xc * Xc) + F32(1e-6)
    return _clip01(0.5 + num / (den * F32(aa)))


def _strands(q):
    """Hair-strand shading: a triangle wave of ``q`` between 0.8 and 1.0."""
    f = q - np.floor(q)
    return F32(0.8) + F32(0.2) * np.abs(F32(2.0) * f - F32(1.0))


def _deriv(f, x):
    """Central finite difference df/dx of sampled values (one-sided at the ends)."""
    if len(f) < 2:
        return np.zeros_like(f)
    out = np.empty_like(f)
    out[1:-1] = (f[2:] - f[:-2]) / (x[2:] - x[:-2])
    out[0] = (f[1] - f[0]) / (x[1] - x[0])
    out[-1] = (f[-1] - f[-2]) / (x[-1] - x[-2])
    return out


def _blend(dst, alpha, color) -> None:
    """In-place ``dst = dst + alpha * (color - dst)`` with alpha (h, w), color (3,) or (h, w, 3)."""
    dst += alpha[..., None] * (color - dst)


def _lerp(a, b, t):
    return tuple(x + (y - x) * t for x, y in zip(a, b))


def _skin_color(tone: float, red: float) -> np.ndarray:
    light, mid, dark = (0.96, 0.80, 0.69), (0.80, 0.60, 0.45), (0.44, 0.29, 0.20)
    c = _lerp(light, mid, tone * 2) if tone < 0.5 else _lerp(mid, dark, tone * 2 - 1)
    d = red - 0.5
    return np.array([c[0] + 0.05 * d, c[1] - 0.02 * d, c[2] - 0.025 * d], dtype=F32)


def _hair_color(light: float, red: float) -> np.ndarray:
    black, brown, blond = (0.07, 0.055, 0.05), (0.33, 0.21, 0.12), (0.80, 0.66, 0.42)
    c = _lerp(black, brown, light * 2) if light < 0.5 else _lerp(brown, blond, light * 2 - 1)
    c = _lerp(c, (0.50, 0.20, 0.09), 0.6 * red * min(1.0, 3 * light))
    return np.array(c, dtype=F32)


def _iris_color(t: float) -> np.ndarray:
    a, b, c = (0.22, 0.13, 0.07), (0.42, 0.32, 0.14), (0.30, 0.45, 0.60)
    return np.array(_lerp(a, b, t * 2) if t < 0.5 else _lerp(b, c, t * 2 - 1), dtype=F32)
