"""Compare network layers with (simulated) face-selective regions: RSA and encoding.

The simulator plants known drivers (rFFA <- the network's layer4, rpSTS <- expression,
EVC <- pixels) so you can check that the analysis recovers them before trusting it on
real data. For your own BIDS data use load_bids(root, subject=..., task=...) instead.

    python examples/04_compare_with_brain.py
"""

import tempfile
from pathlib import Path

import torch

from facebrain.activations import extract
from facebrain.brain import (
    concat_responses,
    load_bids,
    load_roi_masks,
    roi_responses,
    simulate,
    single_trial_betas,
)
from facebrain.encoding import evaluate
from facebrain.models import create
from facebrain.rsa import compare
from facebrain.stimuli import synthetic_kdef

frontal = synthetic_kdef(seed=0, image_size=64).subset("view == 'S' and session == 'A'")
people = sorted(frontal.table["identity"].unique())[:10]
faces = frontal.subset(frontal.table["identity"].isin(people).to_numpy())  # 10 x 7 expressions
torch.manual_seed(0)
model = create("small_resnet", num_classes=10)
acts = extract(model, faces, ["layer2", "layer4"], reduce="avgpool")

root = Path(tempfile.mkdtemp()) / "bids"
simulate(root, faces, subjects=2, runs=2, repeats=2, rois=["rFFA", "rpSTS", "EVC"],
         drivers={"rFFA": acts["layer4"], "rpSTS": "expression", "EVC": "pixels"}, seed=0)

parts = []
for sub in ("01", "02"):
    runs = load_bids(root, subject=sub, task="faces")
    betas, _ = single_trial_betas(runs, method="lss", stimuli=faces, average_repeats=False)
    rois = load_roi_masks(root / "derivatives" / "facebrain-rois", sub, runs.runs[0])
    parts.append(roi_responses(betas, rois, subject=sub))
brain = concat_responses(parts)

rsa = compare(acts, brain, method="spearman", n_bootstrap=100, seed=0)
print(rsa["score_mean"].to_pandas().round(3))
enc = evaluate(acts, brain, cv="leave-identity-out", n_folds=5, n_bootstrap=500, seed=0)
print(enc["r2"].groupby("roi").mean("voxel").to_pandas().round(3))
# what was selected per ROI, by how much it leads the runner-up (paired bootstrap interval)
# and the p of that lead corrected for having picked the pair from the data
print(rsa[["best_layer", "runnerup_layer", "diff_best_runnerup", "diff_ci_low", "diff_ci_high",
           "p_diff_fwe"]].to_dataframe().round(3))
print(enc[["best_layer", "diff_best_runnerup", "diff_ci_low", "diff_ci_high",
           "p_diff_fwe"]].to_dataframe().round(3))
