"""Frozen-backbone transfer: decode expression from each layer of a network, on new people.

Trains a small identity network on synthetic people for a few epochs, then probes it,
its untrained twin (the same initialisation) and raw pixels for expression with
leave-identity-out cross-validation. Spatial layers go through a seeded random projection
(srp:2048) that keeps the spatial layout; the ridge head shares one solve per fold across
permutations. The best layer is chosen by mean accuracy, so its p is ``p_value_fwe``
(corrected for choosing among the layers).

    python examples/03_transfer_probe.py
"""

import torch

from facebrain.activations import extract
from facebrain.models import create
from facebrain.pipeline import pixel_features
from facebrain.stimuli import synthetic_identities, synthetic_kdef
from facebrain.training import fit_classifier
from facebrain.transfer import factor_variance, probe

train = synthetic_identities(20, 20, seed=0, image_size=64)
test = synthetic_kdef(seed=0, image_size=64).subset("view == 'S' and session == 'A'")

torch.manual_seed(0)
untrained = create("small_resnet", num_classes=20)
torch.manual_seed(0)
net = create("small_resnet", num_classes=20)
fit_classifier(net, train, target="identity", epochs=3, seed=0)

layers = ["layer1", "layer2", "layer3", "layer4"]
reduce = {ly: "srp:2048" for ly in layers}
candidates = {"identity-trained": extract(net, test, layers, reduce=reduce),
              "untrained twin": extract(untrained, test, layers, reduce=reduce),
              "pixels (32 px, srp:2048)": pixel_features(test, 32, "srp:2048")}
for name, acts in candidates.items():
    res = probe(acts, "expression", cv="leave-identity-out", head="ridge", n_permutations=50,
                seed=0)
    best = res.attrs["best_layer"]
    print(f"{name}: best {best} {float(res.accuracy_mean.sel(layer=best)):.3f}, "
          f"p corrected for {res.sizes['layer']} layer(s) = "
          f"{float(res.p_value_fwe.sel(layer=best)):.3f} (chance {float(res['chance']):.3f})")
    print(res[["accuracy_mean", "p_value", "p_value_fwe"]].to_dataframe().round(3))
print(factor_variance(candidates["identity-trained"]).to_dataframe().round(3).head())
