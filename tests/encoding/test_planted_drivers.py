"""Acceptance: on brain.simulate data with a planted driver per ROI, RSA and encoding both rank
the planted driver first for its ROI.

Ground truth (facebrain.brain.simulate drivers): rFFA <- a network layer (``avgpool`` of a
seeded, randomly initialised ``small_resnet``), rpSTS <- expression labels, EVC <- pixels
(local contrast energy pooled by Gaussian receptive fields). The BOLD time series go through
the real pipeline (load_bids -> single_trial_betas (LSS) -> roi_responses). Candidates are the
network's layers, the pixel contrast-energy map and one-hot expression labels, every one
z-scored per unit as the simulator z-scores its feature drivers. Design: 16 synthetic
identities x 4 expressions (64 stimuli), 2 subjects, 2 runs, 2 repeats, snr=2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

LAYERS = ["layer1", "layer2", "layer3", "layer4", "avgpool"]
PLANTED = {"rFFA": "avgpool", "rpSTS": "expression", "EVC": "pixels"}


def _z(a):
    a = np.asarray(a, dtype=float)
    sd = a.std(0)
    keep = sd > 0
    return (a[:, keep] - a[:, keep].mean(0)) / sd[keep]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    import torch

    from facebrain.activations import extract
    from facebrain.brain import (
        concat_responses,
        default_rois,
        load_bids,
        roi_responses,
        simulate,
        single_trial_betas,
    )
    from facebrain.models import create
    from facebrain.stimuli import synthetic_faces

    stim = synthetic_faces(16, ["neutral", "happy", "sad", "angry"], "S", image_size=48, seed=1)
    torch.manual_seed(0)
    net = create("small_resnet")
    acts = extract(net, stim, LAYERS, progress=False)
    gray = np.stack([stim.load(i, size=24).astype(float).mean(2) for i in range(len(stim))])
    energy = np.abs(gray - gray.mean((1, 2), keepdims=True)).reshape(len(stim), -1)
    feats = {k: _z(acts[k].values) for k in LAYERS}
    feats["pixels"] = _z(energy)
    feats["expression"] = _z(pd.get_dummies(stim.table["expression"].astype(str)).values)
    root = simulate(tmp_path_factory.mktemp("planted") / "bids", stim, subjects=2, runs=2,
                    repeats=2, seed=3, snr=2.0, rois=list(PLANTED),
                    drivers={"rFFA": feats["avgpool"], "rpSTS": "expression", "EVC": "pixels"})
    resp = []
    for s in ("01", "02"):
        d = load_bids(root, subject=s, task="faces")
        betas, _ = single_trial_betas(d)
        resp.append(roi_responses(betas, default_rois(d.runs[0], names=list(PLANTED)),
                                  subject=s))
    brain = concat_responses(resp)
    ids = np.asarray(stim.table.index.astype(str))
    cand = xr.Dataset(
        {k: (("stimulus", f"{k}_unit"), v) for k, v in feats.items()},
        coords={"stimulus": ids,
                "identity": ("stimulus", np.asarray(stim.table["identity"].astype(str)))},
    )
    return cand, brain


def test_rsa_ranks_planted_driver_first(simulated):
    from facebrain.rsa import compare

    cand, brain = simulated
    res = compare(cand, brain, method="spearman")
    for roi, driver in PLANTED.items():
        scores = res["score_mean"].sel(roi=roi)
        assert scores.idxmax("layer").item() == driver, scores.to_pandas().round(3).to_dict()


def test_encoding_ranks_planted_driver_first(simulated):
    from facebrain.encoding import evaluate

    cand, brain = simulated
    res = evaluate(cand, brain, n_folds=4, inner_cv=3)  # whole identities held out
    r2 = res["r2"].groupby("roi").mean()
    for roi, driver in PLANTED.items():
        assert r2.sel(roi=roi).idxmax("layer").item() == driver, \
            r2.sel(roi=roi).to_pandas().round(3).to_dict()
