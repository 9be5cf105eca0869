"""Registry, documented layer shapes, stop-early, and the small networks' structure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from facebrain.models import create, list_models

torch.set_num_threads(2)

NAMES = ["densenet_gray48", "dlib_resnet", "facenet_vggface2", "fer_minixception",
         "resnet18_gray", "resnet50", "resnet50_vggface2", "siamese_lfw", "small_resnet"]

# shapes documented in each builder's docstring (batch N = 1)
RESNET50_224 = {"conv1": (64, 112, 112), "maxpool": (64, 56, 56), "layer1": (256, 56, 56),
                "layer2": (512, 28, 28), "layer3": (1024, 14, 14), "layer4": (2048, 7, 7),
                "avgpool": (2048,)}
DOCUMENTED = {
    "densenet_gray48": ({}, (1, 48, 48), {
        "conv0": (64, 48, 48), "dense1": (160, 48, 48), "transition1": (80, 24, 24),
        "dense2": (176, 24, 24), "transition2": (88, 12, 12), "dense3": (184, 12, 12),
        "avgpool": (184,), "fc": (7,)}),
    "resnet18_gray": ({"num_classes": 6}, (1, 112, 112), {
        "conv1": (64, 56, 56), "maxpool": (64, 28, 28), "layer1": (64, 28, 28),
        "layer2": (128, 14, 14), "layer3": (256, 7, 7), "layer4": (512, 4, 4),
        "avgpool": (512,), "fc": (6,)}),
    "siamese_lfw": ({}, (1, 105, 105), {
        "conv1": (64, 48, 48), "conv2": (128, 21, 21), "conv3": (128, 9, 9),
        "conv4": (256, 6, 6), "fc1": (1024,), "embedding": (256,)}),
    "facenet_vggface2": ({}, (3, 160, 160), {
        "conv2d_1a": (32, 79, 79), "conv2d_2a": (32, 77, 77), "conv2d_2b": (64, 77, 77),
        "maxpool_3a": (64, 38, 38), "conv2d_3b": (80, 38, 38), "conv2d_4a": (192, 36, 36),
        "conv2d_4b": (256, 17, 17), "repeat_1": (256, 17, 17), "mixed_6a": (896, 8, 8),
        "repeat_2": (896, 8, 8), "mixed_7a": (1792, 3, 3), "repeat_3": (1792, 3, 3),
        "block8": (1792, 3, 3), "avgpool_1a": (1792,), "last_linear": (512,),
        "last_bn": (512,), "embedding": (512,), "logits": (8631,)}),
    "resnet50": ({"num_classes": 5}, (3, 224, 224), {**RESNET50_224, "fc": (5,)}),
    "resnet50_vggface2": ({"num_classes": 3}, (3, 224, 224), {**RESNET50_224, "fc": (3,)}),
    "dlib_resnet": ({"pretrained": False}, (3, 150, 150), {
        "conv1": (32, 72, 72), "maxpool": (32, 35, 35), "level1": (32, 35, 35),
        "level2": (64, 17, 17), "level3": (128, 8, 8), "level4": (256, 4, 4),
        "level5": (256, 2, 2), "avgpool": (256,), "embedding": (128,)}),
    "fer_minixception": ({"pretrained": False}, (1, 64, 64), {
        "conv1": (8, 62, 62), "conv2": (8, 60, 60), "block1": (16, 30, 30),
        "block2": (32, 15, 15), "block3": (64, 8, 8), "block4": (128, 4, 4),
        "class_maps": (7, 4, 4), "logits": (7,)}),
}


def test_list_models_has_every_name():
    assert set(NAMES) <= set(list_models())
    assert list_models("resnet50*") == ["resnet50", "resnet50_vggface2"]


def test_unknown_model_suggests_close_matches():
    with pytest.raises(KeyError, match="Did you mean 'resnet50'") as err:
        create("resnet_50")
    assert "siamese_lfw" in str(err.value)  # lists what is registered
    with pytest.raises(KeyError, match="facenet_vggface2"):
        create("facenet_vgg")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_shapes_and_stop_early(name):
    kw, in_shape, shapes = DOCUMENTED[name]
    torch.manual_seed(0)
    net = create(name, **kw).eval()
    assert list(net.layer_names) == list(shapes)
    # the network's own preprocessing produces its input shape
    img = np.random.default_rng(0).integers(0, 256, (131, 97, 3), dtype=np.uint8)
    assert tuple(net.preprocess(img).shape) == in_shape
    x = torch.randn(1, *in_shape, generator=torch.Generator().manual_seed(1))
    names = list(shapes)
    big = name in ("resnet50", "resnet50_vggface2", "facenet_vggface2")
    early = names[1] if big else names[len(names) // 2]
    later = names[names.index(early) + 1:]
    fired = []
    for n in later:
        net.stages[n].register_forward_hook(lambda m, i, o, n=n: fired.append(n))
    with torch.no_grad():
        out = net.forward_layers(x, [early, names[0]])
        assert list(out) == [names[0], early]
        assert fired == []  # stop early: nothing after `early` ran
        out = net.forward_layers(x, None, stop_early=False)
        assert fired == later
    for n, o in out.items():
        assert tuple(o.shape) == (1, *shapes[n]), n
    json.dumps(net.describe())


def test_unknown_and_empty_layers():
    net = create("densenet_gray48")
    with pytest.raises(KeyError, match=r"no layer\(s\) \['layer9'\].*'dense1'"):
        net.forward_layers(torch.zeros(1, 1, 48, 48), ["layer9"])
    with pytest.raises(ValueError, match="empty"):
        net.forward_layers(torch.zeros(1, 1, 48, 48), [])


def test_densenet_structure_matches_keras_reference():
    net = create("densenet_gray48")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(dense) == 13  # depth 13
    assert all(c.bias is None for c in convs)
    assert [c.out_channels for c in convs] == [64, 32, 32, 32, 80, 32, 32, 32, 88, 32, 32, 32]
    assert net.stages["fc"].in_features == 184
    bc = create("densenet_gray48", depth=16, bottleneck=True)
    assert len(bc.stages["dense1"]) == 2  # (16 - 4) / 3 // 2
    with pytest.raises(ValueError, match="3 \\* n \\+ 4"):
        create("densenet_gray48", depth=12)


def test_siamese_pair_head_and_relus():
    torch.manual_seed(0)
    net = create("siamese_lfw", width=8, hidden=64, embedding_dim=32, input_size=80).eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(4, 1, 80, 80, generator=g), torch.rand(4, 1, 80, 80, generator=g)
    with torch.no_grad():
        logits = net.forward_pair(a, b)
        ea, eb = net(a), net(b)
        torch.testing.assert_close(logits, net.fc((ea - eb).abs()), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(logits, net.forward_pair(b, a), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(net.forward_pair(a, a), net.fc(torch.zeros(4, 32)).expand(4, 2))
        out = net.forward_layers(a)
    assert logits.shape == (4, 2)
    for n in ("conv1", "conv2", "conv3", "conv4", "fc1"):
        assert out[n].min() >= 0, n  # ReLU after every layer ...
    assert out["embedding"].min() < 0  # ... but the tower's last FC
    rgb = create("siamese_lfw", grayscale=False, width=4, hidden=8, embedding_dim=4)
    assert rgb.preprocess(np.zeros((120, 120, 3), np.uint8)).shape == (3, 105, 105)
    assert net.min_input_size() == 65
    create("siamese_lfw", input_size=65, width=2, hidden=4, embedding_dim=2)(torch.zeros(1, 1, 65, 65))
    with pytest.raises(ValueError, match="input_size must be an int >= 65"):
        create("siamese_lfw", input_size=64)
    with pytest.raises(ValueError, match="same shape"):
        net.forward_pair(a, b[:2])
