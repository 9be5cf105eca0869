"""Tiny procedural 'faces' for the training tests, with known identity structure.

Each identity has continuous parameters (face width/height, skin tone, eye
spacing/height/size, mouth width, hair colour/height); each image draws a
random expression (mouth curvature, brow height), yaw shift, lighting gradient,
translation jitter and pixel noise. Rendered with numpy only (fast), so tests
do not depend on the speed of the real synthetic-face renderer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from facebrain.stimuli import StimulusSet

EXPRESSIONS = ("neutral", "happy", "sad", "surprised")


class FakeFaces:
    """Picklable image source: ``FakeFaces(params, nuisance, size)(i)``."""

    def __init__(self, id_params: np.ndarray, per_image: np.ndarray, identity: np.ndarray,
                 size: int) -> None:
        self.id_params = id_params
        self.per_image = per_image
        self.identity = identity
        self.size = size

    def __call__(self, i: int) -> np.ndarray:
        s = self.size
        p = self.id_params[self.identity[i]]
        q = self.per_image[i]
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        cx = 0.5 + 0.06 * q[0] + 0.08 * q[2]   # jitter + yaw
        cy = 0.52 + 0.06 * q[1]
        img = np.empty((s, s, 3), np.float32)
        img[:] = np.array([0.35, 0.4, 0.45]) * 255
        # face ellipse
        fw, fh = 0.24 + 0.1 * p[0], 0.32 + 0.08 * p[1]
        face = ((xx - cx) / fw) ** 2 + ((yy - cy) / fh) ** 2 < 1
        skin = np.array([0.55 + 0.35 * p[2], 0.4 + 0.3 * p[2], 0.3 + 0.25 * p[3]]) * 255
        img[face] = skin
        # hair cap
        hair = face & (yy < cy - fh * (0.45 + 0.35 * p[4]))
        img[hair] = np.array([0.1 + 0.7 * p[5], 0.08 + 0.4 * p[5], 0.05 + 0.3 * p[6]]) * 255
        # eyes
        es, eh, ez = 0.06 + 0.08 * p[7], cy - 0.06 - 0.06 * p[8], 0.018 + 0.02 * p[9]
        brow = eh - 0.05 - 0.03 * q[3]
        for side in (-1, 1):
            ex = cx + side * es - 0.03 * q[2]
            eye = ((xx - ex) ** 2 + ((yy - eh) * 1.6) ** 2) < ez ** 2
            img[eye] = (20, 20, 30)
            b = (np.abs(yy - brow) < 0.008 + 0.01 * p[10]) & (np.abs(xx - ex) < 0.05)
            img[b] = (40, 30, 20)
        # mouth: a curved line, curvature by expression
        mw, my = 0.06 + 0.08 * p[11], cy + 0.14 + 0.04 * p[1]
        curve = my - q[4] * 0.05 * (1 - ((xx - cx) / mw) ** 2)
        mouth = (np.abs(yy - curve) < 0.012) & (np.abs(xx - cx) < mw)
        img[mouth] = (150, 40, 50)
        # lighting and noise
        img *= (0.75 + 0.25 * q[5] * (xx - 0.5) + 0.25)[..., None]
        img += q[6] * 12 * np.random.default_rng(int(q[7] * 1e6)).standard_normal(img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)


def fake_identities(n_identities: int, images_per_identity: int, *, size: int = 32,
                    seed: int = 0) -> StimulusSet:
    """A StimulusSet of procedural faces (identity, expression, view columns)."""
    rng = np.random.default_rng(seed)
    id_params = rng.random((n_identities, 12))
    n = n_identities * images_per_identity
    identity = np.repeat(np.arange(n_identities), images_per_identity)
    expr = rng.integers(0, len(EXPRESSIONS), n)
    views = rng.integers(-2, 3, n)
    per_image = np.column_stack([
        rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), views / 2.0,
        rng.uniform(0, 1, n) * (expr == 3), np.array([0, 1, -1, 0.3])[expr],
        rng.uniform(-1, 1, n), rng.uniform(0.3, 1, n), rng.random(n),
    ])
    table = pd.DataFrame({
        "identity": [f"id{k:03d}" for k in identity],
        "expression": [EXPRESSIONS[e] for e in expr],
        "view": [("FL", "HL", "S", "HR", "FR")[v + 2] for v in views],
    }, index=pd.Index([f"id{k:03d}_{j:03d}" for k in range(n_identities)
                       for j in range(images_per_identity)], name="stimulus_id"))
    return StimulusSet(table, image_source=FakeFaces(id_params, per_image, identity, size),
                       name="fake_faces")
