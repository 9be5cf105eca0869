"""Synthetic Activations with known structure (no network needed)."""

from __future__ import annotations

import numpy as np
import xarray as xr

EXPRS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")


def make_acts(*, n_id=8, n_expr=4, views=("S",), n_units=(12, 30), expr_signal=(0.0, 2.0),
              id_signal=(1.0, 1.0), noise=1.0, seed=0, id_labels=None) -> xr.Dataset:
    """Two layers: unit = id_signal * identity pattern + expr_signal * expression pattern + noise.

    Layer ``l0`` carries no expression signal when ``expr_signal[0] == 0``.
    """
    rng = np.random.default_rng(seed)
    ids = id_labels or [f"p{i:02d}" for i in range(n_id)]
    exprs = EXPRS[:n_expr]
    rows = [(i, e, v) for i in ids for e in exprs for v in views]
    sid = [f"{i}_{e}_{v}" for i, e, v in rows]
    data = {}
    for li, n_u in enumerate(n_units):
        P_id = {i: rng.normal(size=n_u) for i in ids}
        P_ex = {e: rng.normal(size=n_u) for e in exprs}
        X = np.stack([id_signal[li] * P_id[i] + expr_signal[li] * P_ex[e]
                      + noise * rng.normal(size=n_u) for i, e, _ in rows])
        data[f"l{li}"] = ((("stimulus", f"l{li}_unit")), X.astype(np.float32))
    coords = {
        "stimulus": np.array(sid),
        "identity": ("stimulus", np.array([r[0] for r in rows])),
        "expression": ("stimulus", np.array([r[1] for r in rows])),
        "view": ("stimulus", np.array([r[2] for r in rows])),
    }
    return xr.Dataset(data, coords=coords, attrs={"model": "synthetic"})
