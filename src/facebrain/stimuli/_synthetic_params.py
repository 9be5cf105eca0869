"""Generating factors of synthetic faces: identity, FACS action units, views, nuisance.

Every random draw comes from a :class:`numpy.random.SeedSequence` built from
``(seed, stream, identity index, image key)``, never from global state, so the
same arguments give the same parameters on any machine and in any order.

Units: head-local coordinates with the head's half-height ``H`` as unit; ``u``
runs from the face's centre line to the image right, ``v`` from the eye line
downwards (the chin sits near ``v = 1``, the top of the skull at ``v = -1``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ._stimulus_set import CANONICAL_EXPRESSIONS

__all__ = [
    "ACTION_UNITS",
    "AU_COLUMNS",
    "EXPRESSION_PROTOTYPES",
    "IDENTITY_COLUMNS",
    "NUISANCE_COLUMNS",
    "VIEW_YAW",
    "expression_aus",
    "identity_params",
    "nuisance_params",
]

#: FACS action units rendered geometrically, with their names.
ACTION_UNITS = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    15: "lip corner depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    25: "lips part",
    26: "jaw drop",
}
AU_COLUMNS = tuple(f"au_{k:02d}" for k in ACTION_UNITS)

#: Ekman / EMFACS prototypes (AU -> intensity at expression intensity 1.0).
EXPRESSION_PROTOTYPES: dict[str, dict[int, float]] = {
    "neutral": {},
    "happy": {6: 0.8, 12: 1.0, 25: 0.6},
    "sad": {1: 0.9, 4: 0.55, 15: 0.9, 17: 0.5},
    "angry": {4: 1.0, 5: 0.5, 7: 0.8, 17: 0.3, 23: 0.9},
    "fearful": {1: 0.9, 2: 0.7, 4: 0.55, 5: 1.0, 7: 0.3, 20: 1.0, 25: 0.8, 26: 0.35},
    "disgusted": {4: 0.4, 9: 1.0, 10: 0.8, 15: 0.5, 17: 0.5},
    "surprised": {1: 1.0, 2: 1.0, 5: 0.9, 25: 0.9, 26: 1.0},
}

#: KDEF view codes and their yaw in degrees (positive: the nose points to image right).
VIEW_YAW = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}

#: Identity parameters (``id_*`` columns), in draw order.
IDENTITY_COLUMNS = (
    "id_face_width",
    "id_face_length",
    "id_jaw_width",
    "id_chin_shape",
    "id_head_depth",
    "id_eye_size",
    "id_eye_spacing",
    "id_eye_height",
    "id_eye_tilt",
    "id_brow_thickness",
    "id_brow_arch",
    "id_brow_height",
    "id_nose_length",
    "id_nose_width",
    "id_nose_protrusion",
    "id_mouth_width",
    "id_mouth_position",
    "id_lip_thickness",
    "id_ear_size",
    "id_skin_tone",
    "id_skin_redness",
    "id_iris_color",
    "id_hair_length",
    "id_hair_volume",
    "id_hairline",
    "id_hair_fringe",
    "id_hair_part",
    "id_hair_lightness",
    "id_hair_redness",
    "id_beard",
)

#: Per-image nuisance parameters (plus ``yaw``) stored in the table.
NUISANCE_COLUMNS = (
    "yaw",
    "light_azimuth",
    "light_elevation",
    "light_ambient",
    "shift_x",
    "shift_y",
    "scale",
    "noise_sigma",
    "noise_seed",
    "bg_r",
    "bg_g",
    "bg_b",
    "cloth_r",
    "cloth_g",
    "cloth_b",
)

# SeedSequence streams: keep them distinct so no two draws share a stream.
_STREAM_IDENTITY = 1
_STREAM_NUISANCE = 2
_STREAM_CRAWL = 3


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def identity_params(seed: int, index: int, gender: str | None = None) -> tuple[str, dict]:
    """Identity parameters of person ``index`` for ``seed``.

    Parameters
    ----------
    seed : int
        Master seed.
    index : int
        Identity index (non-negative). The same (seed, index, gender) always
        gives the same parameters.
    gender : {"F", "M"}, optional
        Forces the gender; by default it is drawn from the identity's stream.

    Returns
    -------
    gender : str
        ``"F"`` or ``"M"``.
    params : dict
        ``id_*`` name -> float, in :data:`IDENTITY_COLUMNS` order.
    """
    rng = _rng(seed, _STREAM_IDENTITY, int(index))
    g_draw = rng.random()
    if gender is None:
        gender = "M" if g_draw < 0.5 else "F"
    if gender not in ("F", "M"):
        raise ParameterError(f"gender must be 'F' or 'M'; got {gender!r}")
    g = 1.0 if gender == "M" else 0.0
    z = np.clip(rng.standard_normal(len(IDENTITY_COLUMNS)), -2.5, 2.5)
    uni = rng.random(len(IDENTITY_COLUMNS))
    it = iter(range(len(IDENTITY_COLUMNS)))

    def zn():
        return float(z[next(it)])

    def un():
        return float(uni[next(it)])

    p = {}
    p["id_face_width"] = 0.70 + 0.03 * g + 0.03 * zn()
    p["id_face_length"] = 0.02 + 0.03 * g + 0.035 * zn()
    p["id_jaw_width"] = 0.84 + 0.07 * g + 0.04 * zn()
    p["id_chin_shape"] = float(np.clip(0.45 - 0.2 * g + 0.2 * zn(), 0.0, 1.0))
    p["id_head_depth"] = 0.92 + 0.035 * zn()
    p["id_eye_size"] = 1.0 + 0.05 * (1 - g) + 0.07 * zn()
    p["id_eye_spacing"] = 0.275 + 0.014 * zn()
    p["id_eye_height"] = 0.0 + 0.02 * zn()
    p["id_eye_tilt"] = 0.006 + 0.01 * zn()
    p["id_brow_thickness"] = 0.021 + 0.01 * g + 0.004 * zn()
    p["id_brow_arch"] = 0.03 - 0.012 * g + 0.01 * zn()
    p["id_brow_height"] = 0.16 - 0.012 * g + 0.013 * zn()
    p["id_nose_length"] = 0.36 + 0.025 * g + 0.025 * zn()
    p["id_nose_width"] = 0.115 + 0.012 * g + 0.013 * zn()
    p["id_nose_protrusion"] = 0.17 + 0.025 * g + 0.022 * zn()
    p["id_mouth_width"] = 0.20 + 0.01 * g + 0.018 * zn()
    p["id_mouth_position"] = max(p["id_nose_length"] + 0.17, 0.62 + 0.02 * g + 0.02 * zn())
    p["id_lip_thickness"] = 1.0 + 0.15 * (1 - g) + 0.14 * zn()
    p["id_ear_size"] = 1.0 + 0.07 * zn()
    p["id_skin_tone"] = un()
    p["id_skin_redness"] = un()
    p["id_iris_color"] = un()
    hl = zn()
    p["id_hair_length"] = float(np.clip((0.1 + 0.12 * hl) if g else (0.6 + 0.25 * hl), 0, 1))
    p["id_hair_volume"] = float(np.clip(0.07 - 0.015 * g + 0.03 * zn(), 0.02, 0.16))
    p["id_hairline"] = -0.66 + 0.04 * g + 0.04 * zn()
    p["id_hair_fringe"] = float(np.clip(un() * (1.2 - 0.6 * g) - 0.2, 0.0, 1.0))
    p["id_hair_part"] = 2.0 * un() - 1.0
    p["id_hair_lightness"] = float(np.clip(0.3 + 0.25 * zn(), 0.0, 1.0))
    p["id_hair_redness"] = float(np.clip(0.15 + 0.2 * zn(), 0.0, 1.0))
    p["id_beard"] = float(np.clip(-0.25 + 0.55 * zn(), 0.0, 1.0)) * g
    return gender, {k: float(p[k]) for k in IDENTITY_COLUMNS}


def expression_aus(expression: str, intensity: float = 1.0) -> dict:
    """``au_*`` intensities of an Ekman prototype scaled by ``intensity``.

    Examples
    --------
    >>> expression_aus("happy")["au_12"]
    1.0
    """
    if expression not in EXPRESSION_PROTOTYPES:
        raise ParameterError(
            f"unknown expression {expression!r}; allowed: {list(EXPRESSION_PROTOTYPES)}"
        )
    proto = EXPRESSION_PROTOTYPES[expression]
    return {f"au_{k:02d}": float(proto.get(k, 0.0)) * float(intensity) for k in ACTION_UNITS}


#: Nuisance profiles: a controlled lab (KDEF-like) and an internet crawl.
NUISANCE_PROFILES = ("lab", "crawl")


def nuisance_params(seed: int, index: int, key: tuple[int, ...], profile: str = "lab") -> dict:
    """Per-image nuisance (lighting, jitter, sensor noise, background, clothing).

    ``key`` identifies the image within the identity (e.g. ``(view, sample)``);
    the draw depends only on ``(seed, index, key)``.
    """
    rng = _rng(seed, _STREAM_NUISANCE, int(index), *map(int, key))
    z = np.clip(rng.standard_normal(8), -3, 3)
    u = rng.random(12)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    if profile == "lab":
        out = {
            "light_azimuth": 12.0 * z[0],
            "light_elevation": 30.0 + 6.0 * z[1],
            "light_ambient": 0.5 + 0.03 * z[2],
            "shift_x": 0.012 * z[3],
            "shift_y": 0.012 * z[4],
            "scale": 1.0 + 0.015 * z[5],
            "noise_sigma": 1.0 + 1.5 * u[0],
            "bg_r": 0.60,
            "bg_g": 0.61,
            "bg_b": 0.60,
            "cloth_r": 0.42,
            "cloth_g": 0.43,
            "cloth_b": 0.45,
        }
    elif profile == "crawl":
        # muted colours: a random grey level mixed with a random hue
        bg = (0.15 + 0.7 * u[1]) * (0.6 + 0.4 * u[2:5] / max(u[2:5].max(), 1e-9))
        cl = (0.08 + 0.7 * u[5]) * (0.5 + 0.5 * u[6:9] / max(u[6:9].max(), 1e-9))
        out = {
            "light_azimuth": -70.0 + 140.0 * u[9],
            "light_elevation": -10.0 + 60.0 * u[10],
            "light_ambient": 0.3 + 0.3 * u[11],
            "shift_x": 0.045 * z[3],
            "shift_y": 0.045 * z[4],
            "scale": 1.0 + 0.06 * z[5],
            "noise_sigma": 1.0 + 7.0 * u[0],
            "bg_r": bg[0],
            "bg_g": bg[1],
            "bg_b": bg[2],
            "cloth_r": cl[0],
            "cloth_g": cl[1],
            "cloth_b": cl[2],
        }
    else:
        raise ParameterError(f"unknown nuisance profile {profile!r}; allowed: {list(NUISANCE_PROFILES)}")
    out["noise_seed"] = noise_seed
    return {k: float(v) for k, v in out.items()}


def crawl_draw(seed: int, index: int, image: int) -> tuple[str, float, float]:
    """Expression, intensity and yaw of image ``image`` of a crawl identity.

    Expressions are weighted like a web crawl (mostly neutral and happy); yaw is
    a truncated normal around frontal, clipped to +-90 degrees.
    """
    rng = _rng(seed, _STREAM_CRAWL, int(index), int(image))
    weights = np.array([0.30, 0.30, 0.08, 0.08, 0.08, 0.08, 0.08])
    expr = CANONICAL_EXPRESSIONS[int(rng.choice(len(weights), p=weights / weights.sum()))]
    intensity = float(0.3 + 0.9 * rng.random())
    yaw = float(np.clip(35.0 * rng.standard_normal(), -90.0, 90.0))
    return expr, intensity, yaw
