"""Rasteriser of synthetic faces: a 2.5D head with analytic, antialiased shapes.

The head is a stack of horizontal elliptical cross-sections whose width
follows the identity's outline (cranium, jaw, chin) and whose depth follows a
head profile. For a yaw angle, every pixel's viewing ray is intersected with
the rotated head analytically; the hit point gives surface coordinates
``(u, v)`` (the frontal position of that point) in which the face features are
painted as signed-distance shapes, so features shift, foreshorten and vanish
round the far side exactly as marks on a 3D surface do. The nose is a small
3D polyhedron and the ears flat discs, projected and drawn on top; the hair is a
region of the head surface plus a shell behind it.

Antialiasing: every shape is a signed distance ``d`` (negative inside) whose
coverage of a pixel is ``clip(0.5 - d / pixel, 0, 1)``, a box-filtered edge.

Determinism: per-pixel work uses only ``+ - * /``, ``sqrt``, ``abs``,
``min``/``max`` and ``clip`` in float32 (correctly rounded in IEEE-754 whatever
SIMD path numpy picks); transcendental functions are evaluated once per image
in float64 with Python's :mod:`math`. So one set of parameters gives the same
bytes on any machine with the same numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._synthetic_draw import (
    CY,
    F32,
    H_TOP,
    _blend,
    _clip,
    _clip01,
    _cos_sin_deg,
    _cov,
    _deriv,
    _hair_color,
    _max,
    _silhouette,
    _skin_color,
    _sstep,
    _sstep_s,
    _strands,
)
from ._synthetic_features import _Features, front_relief

__all__ = ["render_face"]


class _Head:
    """Head outline in head units: half-width ``w(v)`` and half-depth ``d(v)``."""

    def __init__(self, p: Mapping[str, float], drop: float, mouth_v: float) -> None:
        self.A = p["id_face_width"]
        self.jaw = p["id_jaw_width"]
        self.chin = 0.45 * p["id_chin_shape"]
        self.D = p["id_head_depth"]
        self.drop = drop
        self.mouth_v = mouth_v

    def warp(self, v):
        """Outline coordinate: below the mouth, the jaw drop pulls the chin down."""
        if self.drop <= 0:
            return v
        return v - self.drop * _sstep(self.mouth_v - 0.35, self.mouth_v + 0.3, v)

    def w(self, v):
        v = np.asarray(v, dtype=np.float64)
        r = np.sqrt(_clip(1.0 - v * v, 0.0, None))
        v2 = v * v
        low = np.sqrt(_clip(1.0 - v2 * v2, 0.0, None)) * (1.0 - self.chin * _sstep(0.25, 1.0, v))
        taper = 1.0 - (1.0 - self.jaw) * _sstep(0.05, 0.78, v)
        upper = r * (1.0 - 0.06 * v * v * (1.0 + v))
        return self.A * np.where(v < 0, upper, low * taper)

    def ws(self, v: float) -> float:
        """Scalar ``w(v)`` (Python floats, for a handful of points)."""
        v = self.warp_s(v)
        r = math.sqrt(max(1.0 - v * v, 0.0))
        if v < 0:
            return self.A * r * (1.0 - 0.06 * v * v * (1.0 + v))
        low = math.sqrt(max(1.0 - v ** 4, 0.0)) * (1.0 - self.chin * _sstep_s(0.25, 1.0, v))
        return self.A * low * (1.0 - (1.0 - self.jaw) * _sstep_s(0.05, 0.78, v))

    def zds(self, v: float) -> tuple[float, float]:
        """Scalar ``(z0(v), d(v))``: centre and half-depth of the cross-section."""
        v = self.warp_s(v)
        r = math.sqrt(max(1.0 - v * v, 0.0))
        if v < 0:
            return 0.0, self.D * r
        if v >= 1.0:
            return 0.0, 0.0
        front = self.D * (0.5 + 0.5 * r)
        k1, k2 = _sstep_s(0.0, 0.55, v), _sstep_s(0.55, 1.0, v)
        back = (-self.D * r * (1.0 - k1) - 0.35 * self.D * k1) * (1.0 - k2) + 0.2 * self.D * k2
        q = max(v - 0.85, 0.0) / 0.15  # round the chin's underside off
        return 0.5 * (front + back), 0.5 * (front - back) * math.sqrt(max(1.0 - q * q, 0.0))

    def warp_s(self, v: float) -> float:
        if self.drop <= 0:
            return v
        return v - self.drop * _sstep_s(self.mouth_v - 0.35, self.mouth_v + 0.3, v)

    def zd(self, v):
        """Centre ``z0(v)`` and half-depth ``d(v)`` of the cross-sections.

        The cranium is centred on the neck; below the cheekbones the back of the
        section moves forward to the jaw line, so the lower face sits in front
        of the neck in profile.
        """
        v = np.asarray(v, dtype=np.float64)
        r = np.sqrt(_clip(1.0 - v * v, 0.0, None))
        front = self.D * np.where(v < 0, r, np.where(v < 1.0, 0.5 + 0.5 * r, 0.0))
        k1 = np.where(v < 0, 0.0, _sstep(0.0, 0.55, v))
        k2 = _sstep(0.55, 1.0, v)
        back = (-self.D * r * (1.0 - k1) - 0.35 * self.D * k1) * (1.0 - k2) + 0.2 * self.D * k2
        back = np.where(v < 1.0, back, 0.0)
        q = _max(v - 0.85, 0.0) / 0.15  # round the chin's underside off
        return 0.5 * (front + back), 0.5 * (front - back) * np.sqrt(_clip(1.0 - q * q, 0.0, None))


# ------------------------------------------------------------------ render
def render_face(
    p: Mapping[str, float],
    size: int = 112,
    *,
    supersample: int = 1,
    antialias: bool = True,
    noise: bool = True,
) -> np.ndarray:
    """Render one face from its parameters.

    Parameters
    ----------
    p : mapping
        ``id_*``, ``au_*`` and nuisance values (see ``_synthetic_params``).
    size : int
        Output height and width in pixels.
    supersample : int
        Render at ``size * supersample`` and box-average down (the baseline of
        ``benchmarks/bench_synthetic.py``); 1 uses analytic antialiasing only.
    antialias : bool
        False makes every edge hard (one-sample-per-pixel rasterisation).
    noise : bool
        Add the sensor noise drawn from ``p["noise_seed"]``.

    Returns
    -------
    image : ndarray of shape (size, size, 3), uint8
    """
    ss = int(supersample)
    S = int(size) * ss
    sc, tx, ty = p["scale"], p["shift_x"], p["shift_y"]
    step = 2.0 / S
    aa = step / sc if antialias else step / sc * 1e-3
    grid = (np.arange(S, dtype=np.float64) + 0.5) * step - 1.0
    Xall = ((grid - tx) / sc).astype(F32)[None, :]  # (1, S)
    Yrow = (grid - ty) / sc  # (S,) float64

    cs, sn = _cos_sin_deg(p["yaw"])
    ca, sa = _cos_sin_deg(p["light_azimuth"])
    ce, se = _cos_sin_deg(p["light_elevation"])
    L = (sa * ce, -se, ca * ce)
    amb = p["light_ambient"]

    au = {int(k[3:]): float(p[k]) for k in p if k.startswith("au_")}
    a = lambda k: au.get(k, 0.0)

    Hb = H_TOP * (1.0 + p["id_face_length"])
    mouth_v = p["id_mouth_position"]
    drop = 0.11 * a(26)
    head = _Head(p, drop, mouth_v)

    def v_of_y(y):
        return np.where(y < CY, (y - CY) / H_TOP, (y - CY) / Hb)

    def y_of_v(v):
        return CY + v * (H_TOP if v < 0 else Hb)

    def col_of(x):
        return (x * sc + tx + 1.0) / step - 0.5

    def row_of(y):
        return (y * sc + ty + 1.0) / step - 0.5

    skin = _skin_color(p["id_skin_tone"], p["id_skin_redness"])
    hair = _hair_color(p["id_hair_lightness"], p["id_hair_redness"])
    bg = np.array([p["bg_r"], p["bg_g"], p["bg_b"]], dtype=F32)
    cloth = np.array([p["cloth_r"], p["cloth_g"], p["cloth_b"]], dtype=F32)

    def lambert(nx, ny, nz):
        return amb + (1.0 - amb) * max(nx * L[0] + ny * L[1] + nz * L[2], 0.0)

    # ------------------------------------------------------------ background
    grad = (1.06 - 0.12 * (np.arange(S) / S)).astype(F32)
    img = np.empty((S, S, 3), dtype=F32)
    img[:] = grad[:, None, None] * bg

    v_rows = v_of_y(Yrow)

    # ------------------------------------------------ neck, shirt (image space)
    neck_xc = -0.15 * sn * H_TOP
    neck_hw = math.sqrt((0.40 * head.A * cs) ** 2 + (0.45 * sn) ** 2) * H_TOP
    r0 = max(int(row_of(y_of_v(0.0))), 0)
    if r0 < S:
        Y = Yrow[r0:, None].astype(F32)
        nc0 = max(int(col_of(neck_xc - neck_hw)) - 2, 0)
        nc1 = min(int(col_of(neck_xc + neck_hw)) + 3, S)
        if nc1 > nc0:
            cov = _cov(np.abs(Xall[:, nc0:nc1] - neck_xc) - neck_hw, aa)
            shade = 0.62 + 0.25 * _sstep(y_of_v(0.9), y_of_v(1.4), Y)  # chin shadow
            _blend(img[r0:, nc0:nc1], cov * np.ones_like(Y),
                   skin * (shade * lambert(0.0, 0.0, 1.0))[..., None])
        sub = img[r0:]
        # shirt with a round neckline
        sy = y_of_v(2.2)
        srx, sry = 1.55 * head.A * H_TOP * 1.4, 0.85 * Hb
        dx, dy = (Xall - neck_xc * 0.5) / srx, (Y - sy) / sry
        sd = (np.sqrt(dx * dx + dy * dy) - 1.0) * min(srx, sry)
        hole_y = y_of_v(1.45)
        hx, hy = (Xall - neck_xc) / (neck_hw * 1.25), (Y - hole_y) / (0.25 * Hb)
        hole = (np.sqrt(hx * hx + hy * hy) - 1.0) * neck_hw
        cov = _cov(np.maximum(sd, -hole), aa)
        _blend(sub, cov, cloth * F32(0.55 + 0.45 * lambert(0.0, -0.3, 0.95)))

    # ----------------------------------------------------------------- ears
    ear_v = p["id_eye_height"] + 0.16
    ears = []
    for side in (-1.0, 1.0):
        wv = head.ws(ear_v)
        nz = -side * sn - 0.3 * cs  # ear faces sideways and a little back
        ex3, ez3 = side * wv * 0.97, -0.10
        cx = (ex3 * cs + ez3 * sn) * H_TOP
        rx = (0.025 + 0.085 * abs(nz)) * p["id_ear_size"] * H_TOP
        ry = 0.17 * p["id_ear_size"] * H_TOP
        # out of the silhouette: push the edge-on ear outwards
        cx += side * cs * rx * 0.6 * (nz < 0.2)
        ears.append((nz, cx, rx, ry, lambert(side * cs, 0.0, nz)))

    def draw_ear(e):
        nz, cx, rx, ry, sh = e
        cy = y_of_v(ear_v)
        rr0, rr1 = int(row_of(cy - ry)) - 2, int(row_of(cy + ry)) + 3
        cc0, cc1 = int(col_of(cx - rx)) - 2, int(col_of(cx + rx)) + 3
        rr0, cc0, rr1, cc1 = max(rr0, 0), max(cc0, 0), min(rr1, S), min(cc1, S)
        if rr1 <= rr0 or cc1 <= cc0:
            return
        X = Xall[:, cc0:cc1]
        Y = Yrow[rr0:rr1, None].astype(F32)
        dx, dy = (X - cx) / rx, (Y - cy) / ry
        rad = np.sqrt(dx * dx + dy * dy)
        cov = _cov((rad - 1.0) * min(rx, ry), aa)
        sub = img[rr0:rr1, cc0:cc1]
        _blend(sub, cov, skin * F32(0.93 * sh))
        if nz > 0.2:  # the concha, seen when the ear faces the camera
            dx2, dy2 = (X - cx) / (0.55 * rx), (Y - cy - 0.1 * ry) / (0.6 * ry)
            cov2 = _cov((np.sqrt(dx2 * dx2 + dy2 * dy2) - 1.0) * 0.55 * rx, aa) * 0.45
            _blend(sub, cov2 * cov, skin * F32(0.55 * sh))

    for e in ears:
        if e[0] <= 0.2:
            draw_ear(e)

    # ------------------------------------------------------------ hair shell
    vol = p["id_hair_volume"]
    hlen = p["id_hair_length"]
    shell_bottom = -0.12 + 1.35 * hlen
    shell_top = -(1.0 + vol)
    rr0 = max(int(row_of(y_of_v(shell_top))) - 1, 0)
    rr1 = min(int(row_of(y_of_v(shell_bottom))) + 2, S)
    if rr1 > rr0:
        vv = v_rows[rr0:rr1]
        vs = _clip(vv / (1.0 + vol), -1.0, 1.0)
        r = np.where(vv < 0, np.sqrt(_clip(1.0 - vs * vs, 0.0, None)), 1.0 - 0.12 * vv)
        W = (head.A + vol) * r * H_TOP
        Dd = (head.D + vol) * r * H_TOP
        xc = -0.5 * vol * sn * H_TOP
        P = np.sqrt(W * W * cs * cs + Dd * Dd * sn * sn)
        sc0 = max(int(col_of(xc - P.max())) - 2, 0)
        sc1 = min(int(col_of(xc + P.max())) + 3, S)
        X = Xall[:, sc0:sc1]
        P32 = P.astype(F32)[:, None]
        bottom = ((y_of_v(shell_bottom) - Yrow[rr0:rr1]) / aa).astype(F32)[:, None]
        cov = _silhouette(X, np.full_like(P, xc), P, Yrow[rr0:rr1], aa) * _clip01(0.5 + bottom)
        nx = _clip((X - xc) / np.maximum(P32, 1e-3), -1.0, 1.0)
        nzz = np.sqrt(1.0 - nx * nx)
        sh = amb + (1.0 - amb) * np.maximum(nx * L[0] + nzz * L[2] - 0.2 * L[1], 0.0)
        tex = _strands((X - F32(xc)) / np.maximum(P32, 1e-3) * F32(11.0))
        _blend(img[rr0:rr1, sc0:sc1], cov, hair * (0.8 * sh * tex)[..., None])

    # ------------------------------------------------------------------ head
    vo_rows = head.warp(v_rows)
    w_img = head.w(vo_rows) * H_TOP
    z0_img, d_img = head.zd(vo_rows)
    # lips/chin relief shapes the silhouette (profile) but not the shading normals
    d_smooth, z0_smooth = d_img * H_TOP, z0_img * H_TOP
    relief = front_relief(v_rows, p, a, mouth_v, drop) * (d_img > 0)
    z0_img, d_img = (z0_img + 0.5 * relief) * H_TOP, (d_img + 0.5 * relief) * H_TOP
    inside_rows = np.flatnonzero(w_img > 1e-3)
    if inside_rows.size:
        hr0, hr1 = max(int(inside_rows[0]) - 2, 0), min(int(inside_rows[-1]) + 3, S)
        w_r, d_r, z0_r = w_img[hr0:hr1], d_img[hr0:hr1], z0_img[hr0:hr1]
        P = np.sqrt(w_r * w_r * cs * cs + d_r * d_r * sn * sn) * (w_r > 1e-3)
        w_r = np.maximum(w_r, 1e-3)
        xc_r = z0_r * sn  # projected centre of each cross-section
        hc0 = max(int(col_of(float((xc_r - P).min()))) - 2, 0)
        hc1 = min(int(col_of(float((xc_r + P).max()))) + 3, S)
        X = Xall[:, hc0:hc1]
        Yr = Yrow[hr0:hr1]
        cov = _silhouette(X, xc_r, P, Yr, aa)
        iw2 = (1.0 / (w_r * w_r)).astype(F32)[:, None]
        id2 = (1.0 / np.maximum(d_r * d_r, 1e-8)).astype(F32)[:, None]
        lw = (_deriv(w_r, Yr) / w_r).astype(F32)[:, None]
        ds_r = d_smooth[hr0:hr1]
        ld = (_deriv(ds_r, Yr) / np.maximum(ds_r, 1e-4)).astype(F32)[:, None]
        dz0 = _deriv(z0_smooth[hr0:hr1], Yr).astype(F32)[:, None]
        z0 = z0_r.astype(F32)[:, None]
        c, s = F32(cs), F32(sn)
        # ray (x, z) = (X c - t s, X s + t c) against x^2/w^2 + (z - z0)^2/d^2 = 1
        xs0 = X * s - z0
        qa = s * s * iw2 + c * c * id2
        qb = c * (xs0 * id2 - X * s * iw2)
        qc = X * X * (c * c) * iw2 + xs0 * xs0 * id2 - 1.0
        disc = np.maximum(qb * qb - qa * qc, 0.0)
        t = (np.sqrt(disc) - qb) / qa
        x = X * c - t * s
        zz = xs0 + t * c  # z - z0
        nx = x * iw2
        nz = zz * id2
        ny = -(x * x * iw2 * lw + zz * zz * id2 * ld + zz * id2 * dz0)
        inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz + 1e-12)
        nx, ny, nz = nx * inv, ny * inv, nz * inv
        nvx = nx * c + nz * s
        nvz = nz * c - nx * s
        shade = amb + (1.0 - amb) * np.maximum(nvx * L[0] + ny * L[1] + nvz * L[2], 0.0)
        U = x / F32(H_TOP)
        V = v_rows[hr0:hr1].astype(F32)[:, None]
        zr = _clip(zz * np.sqrt(id2), -1.0, 1.0)
        alb = np.empty(U.shape + (3,), dtype=F32)
        alb[:] = skin
        feat = _Features(p, a, U, V, zr, alb, aa / H_TOP, head, v_rows[hr0:hr1], cs, sn,
                         col_of, hc0, skin, hair, mouth_v, drop, cov > 0)
        feat.paint_all()
        _blend(img[hr0:hr1, hc0:hc1], cov, alb * shade[..., None])

    # ------------------------------------------------------------------ nose
    _draw_nose(img, p, a, head, Xall, Yrow, aa, cs, sn, skin, lambert, y_of_v, col_of, row_of, S)

    for e in ears:
        if e[0] > 0.2:
            draw_ear(e)

    # ----------------------------------------------------------------- output
    if ss > 1:
        img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3), dtype=np.float64).astype(F32)
    if noise and p["noise_sigma"] > 0:
        rng = np.random.default_rng(int(p["noise_seed"]))
        img += rng.standard_normal((size, size, 3), dtype=F32) * F32(p["noise_sigma"] / 255.0)
    out = np.rint(_clip(img, 0.0, 1.0) * F32(255.0))
    return out.astype(np.uint8)


def _draw_nose(img, p, a, head, Xall, Yrow, aa, cs, sn, skin, lambert, y_of_v, col_of, row_of, S):
    """The nose: a small polyhedron (bridge, tip, alae, base) projected and shaded."""
    ey = p["id_eye_height"]
    vt = p["id_nose_length"] - 0.025 * a(9) - 0.01 * a(10)
    nw = p["id_nose_width"] * (1.0 + 0.14 * a(9) + 0.05 * a(10))
    prot = p["id_nose_protrusion"]

    def surf(u, v):
        w = head.ws(v)
        z0, d = head.zds(v)
        return z0 + d * math.sqrt(max(1.0 - (u / w) ** 2, 0.0)) if w > 1e-6 else 0.0

    vb = ey + 0.02
    B = (0.0, vb, surf(0.0, vb) + 0.02)
    BL = (-0.05, vb + 0.04, surf(0.05, vb + 0.04))
    BR = (0.05, vb + 0.04, BL[2])
    T = (0.0, vt, surf(0.0, vt) + prot)
    va = vt + 0.03
    AL = (-nw, va, surf(nw, va) + 0.035)
    AR = (nw, va, AL[2])
    N = (0.0, vt + 0.055, surf(0.0, vt + 0.055) + 0.05)
    AL0 = (-nw * 0.9, va - 0.06, surf(nw * 0.9, va - 0.06) + 0.01)
    AR0 = (nw * 0.9, va - 0.06, AL0[2])
    tris = [
        (B, T, AL, 1.0), (B, AL, AL0, 1.0), (B, AL0, BL, 1.0),
        (B, T, AR, 1.0), (B, AR, AR0, 1.0), (B, AR0, BR, 1.0),
        (T, AL, N, 0.8), (T, N, AR, 0.8),
    ]

    def proj(P):
        x, v, z = P
        return ((x * cs + z * sn) * H_TOP, y_of_v(v), -x * sn + z * cs)

    drawn = []
    for A3, B3, C3, tone in tris:
        e1 = (B3[0] - A3[0], B3[1] - A3[1], B3[2] - A3[2])
        e2 = (C3[0] - A3[0], C3[1] - A3[1], C3[2] - A3[2])
        n = (e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
             e1[0] * e2[1] - e1[1] * e2[0])  # head coords: x right, v down, z to viewer
        ln = math.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]) + 1e-12
        n = (n[0] / ln, n[1] / ln, n[2] / ln) if n[2] >= 0 else (-n[0] / ln, -n[1] / ln, -n[2] / ln)
        nvx, nvy, nvz = n[0] * cs + n[2] * sn, n[1], n[2] * cs - n[0] * sn
        if nvz <= 0.02:
            continue
        pts = [proj(P) for P in (A3, B3, C3)]
        depth = (pts[0][2] + pts[1][2] + pts[2][2]) / 3.0
        drawn.append((depth, pts, lambert(nvx, nvy, nvz) * tone, nvz))
    drawn.sort(key=lambda t: t[0])
    for _, pts, sh, nvz in drawn:
        xs = [q[0] for q in pts]
        ys = [q[1] for q in pts]
        r0 = max(int(row_of(min(ys))) - 2, 0)
        r1 = min(int(row_of(max(ys))) + 3, S)
        c0 = max(int(col_of(min(xs))) - 2, 0)
        c1 = min(int(col_of(max(xs))) + 3, S)
        if r1 <= r0 or c1 <= c0:
            continue
        X = Xall[:, c0:c1]
        Y = Yrow[r0:r1, None].astype(F32)
        area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
        if abs(area) < 1e-9:
            continue
        sgn = 1.0 if area > 0 else -1.0
        sd = None
        for k in range(3):
            x0, y0 = xs[k], ys[k]
            x1, y1 = xs[(k + 1) % 3], ys[(k + 1) % 3]
            ln = math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2) + 1e-12
            nx, ny = sgn * (y1 - y0) / ln, -sgn * (x1 - x0) / ln
            dk = (X - F32(x0)) * F32(nx) + (Y - F32(y0)) * F32(ny)
            sd = dk if sd is None else np.maximum(sd, dk)
        # clamp to the bounding box: the max of edge distances overshoots at sharp tips
        box = _max(_max(F32(min(xs)) - X, X - F32(max(xs))), _max(F32(min(ys)) - Y, Y - F32(max(ys))))
        cov = _cov(_max(sd, box), aa * 1.4) * F32(min(1.0, nvz * 4))
        _blend(img[r0:r1, c0:c1], cov, skin * F32(sh))

    # nostrils: dark ellipses under the tip, the far one hidden by the tip
    for side in (-1.0, 1.0):
        vis = min(max(1.0 - 2.2 * side * sn, 0.0), 1.0) * min(max(cs * 2.0, 0.0), 1.0)
        if vis <= 0:
            continue
        P3 = (side * nw * 0.5, vt + 0.035, surf(nw * 0.5, vt + 0.035) + prot * 0.45)
        cx, cy, _ = proj(P3)
        rx = (0.045 * abs(cs) + 0.01) * H_TOP * (1 + 0.3 * a(9))
        ry = 0.02 * H_TOP
        r0, r1 = max(int(row_of(cy - ry)) - 2, 0), min(int(row_of(cy + ry)) + 3, S)
        c0, c1 = max(int(col_of(cx - rx)) - 2, 0), min(int(col_of(cx + rx)) + 3, S)
        if r1 <= r0 or c1 <= c0:
            continue
        X = Xall[:, c0:c1]
        Y = Yrow[r0:r1, None].astype(F32)
        dx, dy = (X - cx) / rx, (Y - cy) / ry
        cov = _cov((np.sqrt(dx * dx + dy * dy) - 1.0) * ry, aa) * F32(0.75 * vis)
        _blend(img[r0:r1, c0:c1], cov, skin * F32(0.25))
