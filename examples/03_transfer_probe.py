"""Frozen-backbone transfer: decode expression from each layer of a network, on new people.

Trains a small identity network on synthetic people for a few epochs, then probes it
(and an untrained copy) for expression with leave-identity-out cross-validation.

    python examples/03_transfer_probe.py
"""

import torch

from facebrain.activations import extract
from facebrain.models import create
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
for name, model in (("identity-trained", net), ("untrained", untrained)):
    acts = extract(model, test, layers, reduce="avgpool")
    res = probe(acts, "expression", cv="leave-identity-out", n_permutations=10, seed=0)
    print(name)
    print(res[["accuracy_mean", "p_value"]].to_dataframe().round(3))
    print(f"chance: {float(res['chance']):.3f}")
    print(factor_variance(acts).to_dataframe().round(3).head())
