"""Face features painted in surface coordinates (u, v) of the synthetic head.

Eyes, brows, wrinkles, nasolabial folds, mouth, chin, beard and hair are signed
distance shapes in the head's surface coordinates; the FACS action units move
and reshape them relative to the identity's own geometry (a smile widens *that*
person's mouth).
"""

from __future__ import annotations

import numpy as np

from ._synthetic_draw import (
    F32,
    _blend,
    _clip,
    _clip01,
    _cov,
    _iris_color,
    _max,
    _sstep,
    _strands,
)

# Amplitudes of the action units, in head units (the head's half-height
# H ~ 115 mm: vertex to eye line, and eye line to chin, each ~ half of the
# adult vertex-menton height of ~ 230 mm; 1 mm ~ 0.0087 H). Measured on posed
# or spontaneous expressions of adults:
#   - smile (AU12, lips apart): mouth width +27 %, corners moving up and out at
#     ~ 47 deg from horizontal, upper lip raised by 28 % of its rest height
#     (Tarantili, Halazonetis & Spyropoulos 2005, "The spontaneous smile in
#     dynamic motion", Am J Orthod Dentofacial Orthop 128:8-15). For a 46 mm
#     mouth that puts each corner 9.1 mm from rest, as the 9.3 +- 2.8 mm mean
#     commissure excursion of maximal smiles measured with markers (Vicon, 12
#     adults; "Objective computerized evaluation of normal patterns of facial
#     muscles contraction", Braz J Otorhinolaryngol, scielo.br/j/bjorl/a/L6dmhFYyKmqV4N7Zcr7sRLK);
#   - brow raise (AU1 + AU2): 10.6 +- 2.5 mm (same study, "lifting the eyebrow");
#   - teeth: the upper incisor's edge shows ~ 2-3 mm below the relaxed upper lip
#     (Vig & Brundo 1978, J Prosthet Dent 39:502-504) and its crown is ~ 10.5 mm
#     tall, so a smile that lifts the upper lip ~ 6 mm shows the incisors almost
#     to the gum line, as in the "average smile line" most adults show in posed
#     smiles (Tjan, Miller & The 1984, J Prosthet Dent 51:24-28).
AU12_WIDEN = 0.27  # fraction of the mouth's half-width each corner moves out
AU12_LIFT = 0.27 * 1.07  # tan(47 deg) x the lateral excursion, per half-width
AU12_UPPER_LIP = 0.28  # fraction of the upper lip's rest height (subnasale-stomion)
BROW_RAISE = 0.092  # AU1 + AU2 together: 10.6 mm
INCISOR_SHOW = 0.02  # upper incisor edge below the relaxed stomion: 2.3 mm


def mouth_geometry(p, a, mouth_v: float, drop: float):
    """Mouth line, half-width, corner lift, lip thicknesses and opening (head units).

    The identity sets the resting mouth; the action units move it relative to
    that: AU12 widens and lifts the corners (and, with the lips apart, raises
    the upper lip off the teeth), AU15 lowers them, AU20 stretches, AU23 thins
    the lips, AU10 raises the upper lip, AU25/26 part the lips and drop the jaw.
    Amplitudes: see the measured values above.
    """
    mv = mouth_v - 0.015 * a(17) - 0.02 * a(10)
    mw = p["id_mouth_width"]
    hw = mw * (1.0 + AU12_WIDEN * a(12) + 0.3 * a(20) - 0.12 * a(23)
               - 0.12 * a(26) - 0.04 * a(17))
    cdy = -AU12_LIFT * mw * a(12) + 0.06 * a(15) + 0.012 * a(20) + 0.015 * a(17)
    thin = max(1.0 - 0.6 * a(23) - 0.2 * a(12) - 0.25 * a(20), 0.2)
    lt_up = 0.045 * p["id_lip_thickness"] * thin
    lt_lo = 0.06 * p["id_lip_thickness"] * thin
    # the upper lip's rest height: from the nose's base (subnasale) to the stomion
    upper_lip_h = max(mouth_v - (p["id_nose_length"] + 0.055), 0.05)
    smile_lift = AU12_UPPER_LIP * upper_lip_h * a(12) * min(1.0, 2.0 * a(25))
    g_up = 0.02 * a(25) + 0.035 * a(10) + 0.008 * a(26) + smile_lift
    g_lo = 0.045 * a(25) + drop + 0.02 * a(26)
    return mv, hw, cdy, lt_up, lt_lo, g_up, g_lo


def front_relief(v, p, a, mouth_v: float, drop: float):
    """Extra forward depth of the face's centre line at rows ``v`` (head units).

    Lips and chin bulge and the open mouth is a notch, so the profile
    silhouette shows the mouth's state; zero on the forehead and nose rows.
    """
    mv, _, _, lt_up, lt_lo, g_up, g_lo = mouth_geometry(p, a, mouth_v, drop)

    def bump(c, half, amp):
        q = (v - c) / half
        k = _clip(1.0 - q * q, 0.0, None)
        return amp * k * k

    lips = 0.035 * p["id_lip_thickness"]
    out = bump(mv - g_up - 0.5 * lt_up, 0.05 + lt_up, lips)
    out = out + bump(mv + g_lo + 0.5 * lt_lo, 0.05 + lt_lo, lips * (1.0 + 0.3 * a(17)))
    out = out + bump(mv + g_lo + lt_lo + 0.2, 0.14, 0.05 + 0.02 * a(17))
    if g_up + g_lo > 0.004:
        out = out - bump(mv + 0.5 * (g_lo - g_up), 0.5 * (g_up + g_lo) + 0.01, 0.06)
    return out


class _Features:
    """Paints face features into the head's albedo, in surface coordinates (u, v)."""

    def __init__(self, p, a, U, V, zr, alb, aa, head, v_rows, cs, sn, col_of, c_off, skin,
                 hair, mouth_v, drop, inside):
        self.p, self.a = p, a
        # features live on the front half only; the back of the head gets u = 9
        self.U_raw = U
        self.U = np.where(zr > 0.0, U, F32(9.0))
        self.V, self.zr, self.alb = V, zr, alb
        self.aa = F32(aa)
        self.head, self.v_rows, self.cs, self.sn = head, v_rows, cs, sn
        self.col_of, self.c_off = col_of, c_off
        self.skin, self.hair = skin, hair
        self.mouth_v, self.drop = mouth_v, drop
        self.nr, self.nc = U.shape
        self.inside = inside

    # window of the albedo covering the surface box [u0, u1] x [v0, v1]
    def win(self, u0, u1, v0, v1, mirror=False):
        if mirror:
            u0 = -u1
        rs0 = int(np.searchsorted(self.v_rows, v0)) - 1
        rs1 = int(np.searchsorted(self.v_rows, v1)) + 1
        rs0, rs1 = max(rs0, 0), min(rs1, self.nr)
        if rs1 <= rs0:
            return None
        cols = []
        for r in (rs0, (rs0 + rs1) // 2, rs1 - 1):
            row = self.U[r]
            hit = np.flatnonzero((row >= u0) & (row <= u1) & self.inside[r])
            if hit.size:
                cols.append(hit[0])
                cols.append(hit[-1])
        if not cols:
            return None
        cs0 = max(min(cols) - 3, 0)
        cs1 = min(max(cols) + 4, self.nc)
        return slice(rs0, rs1), slice(cs0, cs1)

    def get(self, w):
        rs, cs = w
        return self.U[rs, cs], self.V[rs], self.alb[rs, cs]

    def paint_all(self) -> None:
        self.beard()
        self.cheeks()
        self.eyes()
        self.brows()
        self.wrinkles()
        self.nasolabial()
        self.under_nose()
        self.mouth()
        self.chin()
        self.hair_on_head()

    # ---------------------------------------------------------------- parts
    def beard(self):
        b = self.p["id_beard"]
        if b <= 0.02:
            return
        vt = self.p["id_nose_length"]
        w = self.win(-0.8, 0.8, vt, 1.25)
        if w is None:
            return
        U, V, alb = self.get(w)
        top = V - (vt + 0.08) - 0.25 * U * U
        zr = self.zr[w[0], w[1]]
        cov = _clip01(top / 0.06) * _clip01((zr + 0.1) / 0.3) * F32(0.6 * b)
        _blend(alb, cov, self.hair * 0.9 + self.skin * 0.1)

    def cheeks(self):
        a, p = self.a, self.p
        ex, ey = p["id_eye_spacing"], p["id_eye_height"]
        cv = ey + 0.24 - 0.06 * a(6) - 0.03 * a(12)
        w = self.win(0.0, ex + 0.25, cv - 0.16, cv + 0.16, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        ua = np.abs(U)
        dx, dy = (ua - ex - 0.03) / 0.16, (V - cv) / 0.12
        r2 = dx * dx + dy * dy
        k = _clip(1.0 - r2, 0.0, 1.0)
        cov = k * k * F32(0.22 + 0.35 * a(6) + 0.15 * a(12))
        _blend(alb, cov, np.minimum(self.skin * F32([1.07, 0.97, 0.97]) + F32(0.03), 1.0))

    def eyes(self):
        a, p = self.a, self.p
        es = p["id_eye_size"]
        ex, ey, tilt = p["id_eye_spacing"], p["id_eye_height"], p["id_eye_tilt"]
        ew = 0.125 * es
        up_h = 0.052 * es * (1.0 + 0.6 * a(5)) * (1.0 - 0.3 * a(7)) * (1.0 - 0.18 * a(6)) \
            * (1.0 - 0.12 * a(9)) * (1.0 - 0.1 * a(4))
        lo_h = 0.032 * es * (1.0 - 0.45 * a(7)) * (1.0 - 0.4 * a(6)) * (1.0 + 0.2 * a(5)) \
            * (1.0 - 0.2 * a(9))
        ri = 0.050 * es
        w = self.win(0.0, ex + ew * 1.9, ey - 0.13, ey + 0.12, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        aa = self.aa
        du = np.abs(U) - F32(ex)
        dv = V - F32(ey)
        dvt = dv + F32(tilt) * du / F32(ew)
        # socket shadow
        sx, sy = du / F32(ew * 1.45), (dv + 0.015) / F32(0.085)
        k = _clip(1.0 - (sx * sx + sy * sy), 0.0, 1.0)
        _blend(alb, k * F32(0.35), self.skin * F32(0.72))
        t = du / F32(ew)
        kk = _clip(1.0 - t * t, 0.0, None)
        shape = kk * (1.35 - 0.35 * kk)
        up = F32(up_h) * shape
        lo = F32(lo_h) * shape
        sd = _max(_max(-dvt - up, dvt - lo), (np.abs(t) - 1.0) * F32(ew))
        eye = _cov(sd, aa)
        # crease and lower-lid bulge
        crease = np.abs(dvt + up + F32(0.03 * (1 - 0.6 * a(5))) * kk) - 0.006
        _blend(alb, _cov(crease, aa) * (kk > 0) * F32(0.28), self.skin * F32(0.6))
        bulge = np.abs(dvt - lo - F32(0.022)) - 0.007
        _blend(alb, _cov(bulge, aa) * (kk > 0.05) * F32(0.12 + 0.3 * max(a(6), a(7))),
               self.skin * F32(0.65))
        _blend(alb, eye, F32([0.90, 0.88, 0.85]))
        rr = np.sqrt(du * du + dv * dv)
        iris = _cov(rr - F32(ri), aa) * eye
        _blend(alb, iris, _iris_color(p["id_iris_color"]))
        pupil = _cov(rr - F32(ri * 0.45), aa) * eye
        _blend(alb, pupil, F32([0.03, 0.03, 0.03]))
        # lash line along the upper lid, thicker at the outer corner
        lw = F32(0.008) + F32(0.006) * _clip(t, 0.0, 1.0)
        lash = np.maximum(np.abs(dvt + up) - lw, np.abs(t) - 1.05)
        _blend(alb, _cov(lash, aa) * F32(0.9), F32([0.10, 0.07, 0.06]))
        low = np.maximum(np.abs(dvt - lo) - 0.004, np.abs(t) - 1.0)
        _blend(alb, _cov(low, aa) * F32(0.35), self.skin * F32(0.5))
        # crow's feet (AU6)
        if a(6) > 0.05:
            for off in (-0.025, 0.0, 0.025):
                cf = np.maximum(np.abs(dv - F32(off) - (du - ew) * F32(off * 8)) - 0.005,
                                np.abs(du - F32(ew * 1.35)) - F32(ew * 0.28))
                _blend(alb, _cov(cf, aa) * F32(0.35 * a(6)), self.skin * F32(0.55))

    def brows(self):
        a, p = self.a, self.p
        ex, ey = p["id_eye_spacing"], p["id_eye_height"]
        bh, bt, arch = p["id_brow_height"], p["id_brow_thickness"], p["id_brow_arch"]
        bw = 0.15
        bc = ex - 0.015 - 0.025 * a(4)
        w = self.win(0.0, bc + bw + 0.03, ey - bh - 0.22, ey - bh + 0.12, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        t = (np.abs(U) - F32(bc)) / F32(bw)
        inner = _clip(0.5 * (1.0 - t), 0.0, 1.0)
        outer = _clip(0.5 * (1.0 + t), 0.0, 1.0)
        q = (t - 0.25) / 1.25
        curve = (F32(ey - bh) - F32(arch) * (1.0 - q * q)
                 - F32(BROW_RAISE * (0.8 * a(1) + 0.2 * a(2))) * inner
                 - F32(BROW_RAISE * (0.2 * a(1) + 0.8 * a(2))) * outer
                 + F32(0.06 * a(4)) * inner + F32(0.035 * a(4))
                 + F32(0.03 * a(9)) * inner + F32(0.015 * a(9)))
        th = F32(bt) * (1.0 - 0.5 * _clip(t, 0.0, 1.0)) * F32(1.0 + 0.2 * a(4))
        sd = np.maximum(np.abs(V - curve) - th, (np.abs(t) - 1.0) * F32(bw * 0.5))
        col = self.hair * F32(0.8) + self.skin * F32(0.1)
        _blend(alb, _cov(sd, self.aa) * F32(0.92), col)

    def wrinkles(self):
        a, p = self.a, self.p
        ey, bh = p["id_eye_height"], p["id_brow_height"]
        aa = self.aa
        dark = self.skin * F32(0.6)
        if a(4) > 0.05:  # vertical furrows between the brows
            w = self.win(0.0, 0.07, ey - bh - 0.08, ey - bh + 0.06, mirror=True)
            if w is not None:
                U, V, alb = self.get(w)
                sd = np.maximum(np.abs(np.abs(U) - 0.035) - 0.006,
                                np.abs(V - F32(ey - bh - 0.01)) - 0.05)
                _blend(alb, _cov(sd, aa) * F32(0.5 * a(4)), dark)
        if a(9) > 0.05:  # across the nose bridge
            w = self.win(0.0, 0.09, ey, ey + 0.14, mirror=True)
            if w is not None:
                U, V, alb = self.get(w)
                for vk in (0.04, 0.075, 0.11):
                    sd = np.maximum(np.abs(V - F32(ey + vk) + 0.2 * U * U) - 0.006,
                                    np.abs(U) - 0.08)
                    _blend(alb, _cov(sd, aa) * F32(0.5 * a(9)), dark)
        s12 = a(1) + a(2)
        if s12 > 0.05:  # horizontal forehead lines
            w = self.win(0.0, 0.42, ey - bh - 0.36, ey - bh - 0.08, mirror=True)
            if w is not None:
                U, V, alb = self.get(w)
                ua = np.abs(U)
                wt = (F32(a(1)) * _clip(1.0 - ua / 0.3, 0.0, 1.0)
                      + F32(a(2)) * _clip(ua / 0.3, 0.0, 1.0)) * _clip(
                          (0.4 - ua) / 0.06, 0.0, 1.0)
                for vk in (0.13, 0.2, 0.27):
                    sd = np.abs(V - F32(ey - bh - vk) + 0.25 * ua * ua) - 0.006
                    _blend(alb, _cov(sd, aa) * wt * F32(0.45), dark)

    def nasolabial(self):
        a, p = self.a, self.p
        nw, vt = p["id_nose_width"], p["id_nose_length"]
        mv, mw = self.mouth_v, p["id_mouth_width"]
        s = 0.16 + 0.55 * a(12) + 0.45 * a(9) + 0.4 * a(10) + 0.15 * a(6)
        A = (nw + 0.035 + 0.02 * a(12), vt - 0.01 - 0.03 * a(12))
        B = (mw * (1 + 0.2 * a(12)) + 0.07, mv + 0.07 - 0.05 * a(12) + 0.02 * a(15))
        w = self.win(min(A[0], B[0]) - 0.03, max(A[0], B[0]) + 0.04, A[1] - 0.03, B[1] + 0.03,
                     mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        px, py = np.abs(U) - F32(A[0]), V - F32(A[1])
        bx, by = B[0] - A[0], B[1] - A[1]
        h = _clip((px * F32(bx) + py * F32(by)) / F32(bx * bx + by * by), 0.0, 1.0)
        bow = F32(0.025) * h * (1.0 - h) * 4.0
        dx, dy = px - F32(bx) * h - bow, py - F32(by) * h
        sd = np.sqrt(dx * dx + dy * dy) - 0.008
        _blend(alb, _cov(sd, self.aa) * (1.0 - 0.6 * h) * F32(min(s, 1.0)), self.skin * F32(0.6))

    def under_nose(self):
        p = self.p
        vt, nw = p["id_nose_length"], p["id_nose_width"]
        w = self.win(0.0, nw + 0.05, vt + 0.02, vt + 0.12, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        dx, dy = U / F32(nw * 1.1), (V - F32(vt + 0.065)) / F32(0.04)
        k = _clip(1.0 - (dx * dx + dy * dy), 0.0, 1.0)
        _blend(alb, k * F32(0.3), self.skin * F32(0.6))

    def mouth(self):
        a, p = self.a, self.p
        mv, hw, cdy, lt_up, lt_lo, g_up, g_lo = mouth_geometry(p, a, self.mouth_v, self.drop)
        w = self.win(0.0, hw + 0.06, mv - 0.16, mv + g_lo + 0.16, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        aa = self.aa
        t = np.abs(U) / F32(hw)
        k = _clip(1.0 - t * t, 0.0, None)
        sk = np.sqrt(k)
        m = F32(mv) + F32(cdy) * t * t
        us = m - F32(g_up) * k - F32(0.02 * a(10)) * sk
        ls = m + F32(g_lo) * sk
        bow = F32(0.014) * _clip(1.0 - (t / 0.18) ** 2, 0.0, 1.0)
        ut = us - F32(lt_up) * (0.35 + 0.65 * sk) + bow
        lb = ls + F32(lt_lo) * (0.3 + 0.7 * sk)
        side = (t - 1.0) * F32(hw)
        lip = self.skin * F32([0.86, 0.58, 0.58]) + F32([0.06, 0.0, 0.0])
        # philtrum/upper lip shadow and lower-lip shadow
        sh = np.maximum(np.abs(V - lb - F32(0.018)) - 0.012, side)
        _blend(alb, _cov(sh, aa * 2) * F32(0.25), self.skin * F32(0.6))
        upper = np.maximum(np.maximum(ut - V, V - us), side)
        lower = np.maximum(np.maximum(ls - V, V - lb), side)
        _blend(alb, _cov(upper, aa), lip * F32(0.9))
        _blend(alb, _cov(lower, aa), lip)
        opening = g_up + g_lo
        if opening > 0.004:
            cav = np.maximum(np.maximum(us - V, V - ls), side)
            cc = _cov(cav, aa)
            _blend(alb, cc, F32([0.22, 0.06, 0.07]))
            # incisors: the upper edge 2.3 mm below the relaxed stomion (following
            # the lower lip's curve, the "smile arc"); the lower edge 2 mm above it
            # (overbite) plus the jaw's opening; crowns ~ 0.08 H tall
            e_up = F32(mv + INCISOR_SHOW) + F32(0.5 * cdy) * t * t
            e_lo = e_up + F32(self.drop + 0.02 * a(26) - 0.017)
            tlo = np.maximum(np.maximum(e_lo - V, V - e_lo - F32(0.08)), t - 0.7)
            _blend(alb, _cov(tlo, aa) * cc * F32(0.85), F32([0.82, 0.79, 0.72]))
            tup = np.maximum(np.maximum(V - e_up, e_up - F32(0.09) - V), t - 0.8)
            _blend(alb, _cov(tup, aa) * cc, F32([0.88, 0.85, 0.78]))
        seam = np.maximum(np.abs(V - m) - 0.006, side)
        _blend(alb, _cov(seam, aa) * F32(0.7 * max(0.0, 1.0 - opening / 0.02)),
               F32([0.25, 0.1, 0.1]))
        # corners: dimples when pulled up or down
        cd = np.sqrt((t - 1.02) ** 2 * F32(hw * hw) + (V - m) ** 2) - 0.012
        _blend(alb, _cov(cd, aa) * F32(0.25 + 0.3 * (a(12) + a(15))), self.skin * F32(0.5))

    def chin(self):
        a, p = self.a, self.p
        mv = self.mouth_v
        cv = mv + 0.15 + self.drop + 0.05 * p["id_lip_thickness"] - 0.02 * a(17)
        w = self.win(0.0, 0.14, cv - 0.04, cv + 0.04, mirror=True)
        if w is None:
            return
        U, V, alb = self.get(w)
        sd = np.maximum(np.abs(V - F32(cv) + 0.6 * U * U) - 0.007, np.abs(U) - 0.12)
        _blend(alb, _cov(sd, self.aa * 2) * F32(0.18 + 0.4 * a(17)), self.skin * F32(0.6))

    def hair_on_head(self):
        p = self.p
        hl, fr, ln = p["id_hairline"], p["id_hair_fringe"], p["id_hair_length"]
        U, V, zr, alb = self.U_raw, self.V, self.zr, self.alb
        vmax = max(hl + 0.35 * fr + 0.05, -0.05 + 1.35 * ln + 0.6)
        rs1 = min(int(np.searchsorted(self.v_rows, vmax)) + 1, self.nr)
        U, V, zr, alb = U[:rs1], V[:rs1], zr[:rs1], alb[:rs1]
        ua = np.abs(U)
        part = p["id_hair_part"]
        up = (U - F32(0.18 * part)) / F32(0.45)
        front = F32(hl + 0.2 * (1 - fr)) + 0.55 * ua * ua - F32(0.08 * part) * U \
            + F32(0.32 * fr) * _clip(1.0 - up * up, 0.0, 1.0)
        sd_front = V - front
        zc = F32(0.12 + 0.25 * ln)
        back = zc - zr
        short = F32(-0.3) + F32(0.42) * _sstep(0.0, 0.2, back) + F32(0.35) * _sstep(0.5, 1.1, back)
        vb = short * F32(1.0 - ln) + F32(1.2 * ln)
        sd_side = np.maximum((zr - zc) * 0.4, V - vb)
        sd = np.minimum(sd_front, sd_side)
        cov = _cov(sd, self.aa * 1.5)
        # strands fall from the crown: shade by a "diamond angle" around the vertical axis
        az = np.abs(zr)
        da = U / (np.abs(U) + az + F32(1e-4))
        da = np.where(zr >= 0, da, np.where(U >= 0, F32(2.0), F32(-2.0)) - da)
        _blend(alb, cov, self.hair[None, None, :] * _strands(da * F32(16.0))[..., None])
