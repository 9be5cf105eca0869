"""Result Datasets shaped exactly as CONTRACTS.md says, with known values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from facebrain.report import ReportData
from facebrain.stimuli import ArraySource, StimulusSet

LAYERS = ["layer1", "layer2", "layer3", "layer4"]
ROIS = {"rFFA": (42.0, -50.0, -20.0), "EVC": (10.0, -92.0, 2.0), "rpSTS": (50.0, -50.0, 10.0)}


def stimuli(rng, n_id=5, exprs=("neutral", "happy", "sad", "angry")) -> StimulusSet:
    ids, rows = [], []
    for p in range(n_id):
        for e in exprs:
            ids.append(f"p{p}_{e}")
            rows.append({"identity": f"p{p}", "expression": e, "view": "S"})
    table = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    images = rng.integers(0, 256, size=(len(ids), 17, 13, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="fake")


def transfer_result(rng, target: str, best: int, n_folds=5, n_perm=30, classes=4):
    acc = np.clip(0.3 + 0.1 * rng.standard_normal((len(LAYERS), n_folds)) * 0.2, 0, 1)
    acc[best] += 0.4
    cats = [f"c{i}" for i in range(classes)]
    conf = rng.integers(0, 5, size=(len(LAYERS), classes, classes)) + 10 * np.eye(classes, dtype=int)
    return xr.Dataset(
        {
            "accuracy": (("layer", "fold"), acc),
            "accuracy_mean": ("layer", acc.mean(1)),
            "accuracy_sem": ("layer", acc.std(1) / np.sqrt(n_folds)),
            "chance": ((), 1.0 / classes),
            "p_value": ("layer", np.full(len(LAYERS), 0.03)),
            "null_accuracy": (("layer", "permutation"),
                              0.25 + 0.05 * rng.standard_normal((len(LAYERS), n_perm))),
            "confusion": (("layer", "true", "predicted"), conf),
        },
        coords={"layer": LAYERS, "fold": np.arange(n_folds), "true": cats, "predicted": cats},
        attrs={"target": target, "cv": "leave-identity-out", "head": "logistic", "model": "net"},
    )


def responses(rng, stim: StimulusSet, subjects=("01", "02"), per_roi=6):
    n = len(stim)
    cols, coords = [], {"roi": [], "subject": [], "x": [], "y": [], "z": [], "voxel": []}
    for s in subjects:
        for roi, (x, y, z) in ROIS.items():
            for i in range(per_roi):
                cols.append(rng.standard_normal(n))
                coords["roi"].append(roi)
                coords["subject"].append(s)
                coords["x"].append(x + 2.0 * (i % 3))
                coords["y"].append(y + 2.0 * (i // 3))
                coords["z"].append(z)
                coords["voxel"].append(f"{s}|{roi}|{i}")
    vox = coords.pop("voxel")
    return xr.DataArray(
        np.stack(cols, axis=1), dims=("stimulus", "voxel"), name="responses",
        coords={"stimulus": [str(i) for i in stim.ids], "voxel": vox,
                **{k: ("voxel", np.asarray(v)) for k, v in coords.items()}},
        attrs={"space": "MNI152NLin2009cAsym", "source": "simulated", "tr": 2.0},
    )


def comparison_result(rng, best: dict[str, int], subjects=("01", "02")):
    rois = list(ROIS)
    score = 0.1 * rng.random((len(LAYERS), len(rois), len(subjects)))
    for j, roi in enumerate(rois):
        if roi in best:
            score[best[roi], j] += 0.5
    mean = score.mean(-1)
    return xr.Dataset(
        {
            "score": (("layer", "roi", "subject"), score),
            "score_mean": (("layer", "roi"), mean),
            "ci_low": (("layer", "roi"), mean - 0.05),
            "ci_high": (("layer", "roi"), mean + 0.05),
            "ceiling_lower": ("roi", np.full(len(rois), 0.6)),
            "ceiling_upper": ("roi", np.full(len(rois), 0.8)),
        },
        coords={"layer": LAYERS, "roi": rois, "subject": list(subjects)},
        attrs={"method": "spearman", "rdm_method": "correlation", "over": "stimuli"},
    )


def encoding_result(rng, resp, best: dict[str, int]):
    nv = resp.sizes["voxel"]
    r2 = 0.02 * rng.random((len(LAYERS), nv))
    roi = np.asarray(resp["roi"].values).astype(str)
    for name, k in best.items():
        r2[k, roi == name] += 0.3
    ds = xr.Dataset(
        {"r2": (("layer", "voxel"), r2), "r": (("layer", "voxel"), np.sqrt(r2)),
         "best_alpha": (("layer", "voxel"), np.full((len(LAYERS), nv), 10.0)),
         "r2_normalised": (("layer", "voxel"), r2 / 0.5)},
        coords={"layer": LAYERS, "voxel": resp["voxel"].values,
                **{c: ("voxel", resp[c].values) for c in ("roi", "subject", "x", "y", "z")}},
        attrs={"cv": "leave-identity-out", "alphas": [1.0, 10.0, 100.0]},
    )
    return ds


def factor_variance(rng):
    return xr.Dataset(
        {"fraction": (("layer", "component"), rng.dirichlet([1, 1, 1, 1], size=len(LAYERS))),
         "ss_total": ("layer", rng.uniform(10, 1000, len(LAYERS)))},
        coords={"layer": LAYERS,
                "component": ["identity", "expression", "identity:expression", "residual"]},
        attrs={"factors": ["identity", "expression"]},
    )


def subspace_angles(rng):
    angle = np.sort(rng.uniform(0, 90, (len(LAYERS), 3)), axis=1)
    return xr.Dataset(
        {"angle": (("layer", "angle_index"), angle),
         "min_angle": ("layer", angle[:, 0]), "mean_angle": ("layer", angle.mean(1)),
         "congruence": ("layer", rng.uniform(0, 1, len(LAYERS))),
         "n_dims_a": ("layer", np.full(len(LAYERS), 4))},
        coords={"layer": LAYERS},
        attrs={"factor_a": "identity", "factor_b": "expression", "units": "degrees"},
    )


def report_data(rng) -> ReportData:
    stim = stimuli(rng)
    resp = responses(rng, stim)
    planted = {"rFFA": "idnet:layer4", "EVC": "idnet:layer1", "rpSTS": "reference:expression"}
    acts = {lyr: rng.standard_normal((len(stim), 6 + k)) for k, lyr in enumerate(LAYERS)}
    return ReportData(
        title="fake report",
        stimuli=stim,
        training={"idnet": [{"epoch": e, "train_loss": 2.0 / e, "train_accuracy": 0.2 * e,
                             "val_loss": 2.2 / e, "val_accuracy": 0.18 * e} for e in (1, 2, 3)]},
        transfer={("expression", "idnet"): transfer_result(rng, "expression", 3),
                  ("expression", "untrained"): transfer_result(rng, "expression", 0),
                  ("identity", "exnet"): transfer_result(rng, "identity", 2)},
        factors={"idnet": factor_variance(rng)},
        angles={"idnet": subspace_angles(rng)},
        responses=resp,
        rsa={"idnet": comparison_result(rng, {"rFFA": 3, "EVC": 0})},
        encoding={"idnet": encoding_result(rng, resp, {"rFFA": 3, "EVC": 0})},
        layer_rdm=lambda model, layer: 1 - np.corrcoef(acts[layer]),
        planted=planted,
        provenance={"config": "seed: 0\n", "seeds": {"seed": 0},
                    "stages": {"extract": {"key": "abc", "status": "computed", "seconds": 1.5}}},
    )
