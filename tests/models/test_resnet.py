"""resnet50 / resnet18_gray against plain torchvision forwards (atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from facebrain.models import create, load_weights

torch.set_num_threads(2)


def randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
    return model


def tv_partial(tv, x, upto):
    """torchvision forward, stopped after ``upto`` (written out by hand)."""
    x = tv.relu(tv.bn1(tv.conv1(x)))
    if upto == "conv1":
        return x
    x = tv.maxpool(x)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        x = getattr(tv, name)(x)
        if upto == name:
            return x
    x = torch.flatten(tv.avgpool(x), 1)
    return x if upto == "avgpool" else tv.fc(x)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    tv = randomise_bn(torchvision.models.resnet50(weights=None, num_classes=9), 1).eval()
    path = tmp_path_factory.mktemp("tv") / "resnet50_tv.pth"
    torch.save(tv.state_dict(), path)  # torchvision's key layout
    torch.manual_seed(1)
    ours = create("resnet50", num_classes=9, weights=path).eval()
    return tv, ours, path


def test_torchvision_equivalence(pair):
    tv, ours, _ = pair
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=1e-5)
        got = ours.forward_layers(x, ["conv1", "layer2", "avgpool"])
        for name in ("conv1", "layer2", "avgpool"):
            torch.testing.assert_close(got[name], tv_partial(tv, x, name), rtol=0, atol=1e-5)
    assert got["avgpool"].shape == (2, 2048)


def test_stages_wrap_torchvision_modules(pair):
    _, ours, _ = pair
    assert isinstance(ours.stages["layer1"][0], torchvision.models.resnet.Bottleneck)
    assert isinstance(ours.stages["fc"], nn.Linear) and ours.stages["fc"].out_features == 9
    assert ours.layer_names == ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                "avgpool", "fc")


def test_imagenet_head_into_new_head(pair, tmp_path):
    _, _, path = pair
    net = create("resnet50", num_classes=4)
    with pytest.warns(UserWarning, match="head"):
        load_weights(net, path, new_head=True)
    assert net.stages["fc"].out_features == 4
    tv_sd = torch.load(path, weights_only=True)
    torch.testing.assert_close(net.stages["layer4"][2].conv3.weight, tv_sd["layer4.2.conv3.weight"])


def test_imagenet_preprocess():
    net = create("resnet50", num_classes=2)
    img = np.full((256, 320, 3), 128, np.uint8)
    t = net.preprocess(img)
    assert t.shape == (3, 224, 224)
    expected = (torch.tensor([128 / 255] * 3) - torch.tensor([0.485, 0.456, 0.406])) / \
        torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(t[:, 5, 7], expected, rtol=0, atol=1e-6)


def test_resnet18_gray_matches_torchvision(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None, num_classes=5)
    tv.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    tv = randomise_bn(tv, 2).eval()
    path = tmp_path / "r18g.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, path)
    net = create("resnet18_gray", num_classes=5, weights=path).eval()
    x = torch.randn(3, 1, 48, 56, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv(x), rtol=0, atol=1e-5)
    assert net.stages["conv1"].conv1.in_channels == 1
    img = np.zeros((90, 120, 3), np.uint8)
    assert net.preprocess(img).shape == (1, 112, 112)
    with pytest.raises(ValueError, match="input_size"):
        create("resnet18_gray", input_size=8)


def test_wrong_architecture_files(tmp_path):
    net = create("resnet50", num_classes=9)
    r18 = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=9).state_dict(), r18)
    with pytest.raises(Exception) as err:
        load_weights(net, r18)
    msg = str(err.value)
    assert str(r18) in msg
    assert "missing keys (stages.layer1.0.conv3.weight" in msg
    assert "shape mismatches" in msg and "another architecture" in msg
    fn = tmp_path / "facenet.pt"
    torch.save({"conv2d_1a.conv.weight": torch.zeros(32, 3, 3, 3),
                "last_linear.weight": torch.zeros(512, 1792)}, fn)
    with pytest.raises(Exception, match="conv2d_1a.conv.weight") as err:
        load_weights(net, fn)
    assert str(fn) in str(err.value) and "ResNet" in str(err.value)
