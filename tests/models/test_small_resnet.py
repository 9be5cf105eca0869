"""small_resnet: shapes, early stop, preprocessing and blocks against torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.models.resnet import BasicBlock

from facebrain.models import create, list_models
from facebrain.models._small import _BasicBlock


def test_registered():
    assert "small_resnet" in list_models()
    assert "small_resnet" in list_models("small_*")


@pytest.mark.parametrize("size", [64, 112])
def test_forward_layers_shapes(size):
    torch.manual_seed(0)
    net = create("small_resnet", num_classes=7, width=4, input_size=size).eval()
    assert net.layer_names == ("conv1", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")
    out = net.forward_layers(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)))
    s = size // 2
    assert out["conv1"].shape == (2, 4, s, s)
    assert out["layer1"].shape == (2, 4, s, s)
    assert out["layer2"].shape == (2, 8, s // 2, s // 2)
    assert out["layer3"].shape == (2, 16, s // 4, s // 4)
    assert out["layer4"].shape == (2, 32, -(-s // 8), -(-s // 8))
    assert out["avgpool"].shape == (2, 32)
    assert out["fc"].shape == (2, 7)
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(net(x), net.forward_layers(x, "fc")["fc"], rtol=0, atol=0)


def test_stop_early_skips_later_stages():
    net = create("small_resnet", num_classes=3, width=4).eval()
    called = []
    for name in ("layer3", "layer4", "fc"):
        net.stages[name].register_forward_hook(lambda m, i, o, n=name: called.append(n))
    out = net.forward_layers(torch.zeros(1, 3, 64, 64), ["layer2", "conv1"])
    assert list(out) == ["conv1", "layer2"]
    assert called == []
    net.forward_layers(torch.zeros(1, 3, 64, 64), ["layer2"], stop_early=False)
    assert called == ["layer3", "layer4", "fc"]


def test_preprocess_matches_torchvision():
    net = create("small_resnet", input_size=64)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)   # resized to 64x96, crop 64
    ref = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(),
                     T.Normalize((0.5,) * 3, (0.5,) * 3)])(Image.fromarray(img))
    got = net.preprocess(img)
    assert got.shape == (3, 64, 64)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_block_equals_torchvision_basicblock():
    torch.manual_seed(1)
    ours = _BasicBlock(4, 8, stride=2).eval()
    for p in ours.parameters():
        torch.nn.init.normal_(p)
    ref = BasicBlock(4, 8, stride=2, downsample=torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 1, 2, bias=False), torch.nn.BatchNorm2d(8))).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_residual_branch_starts_as_identity():
    net = create("small_resnet", num_classes=3, width=4)
    block = net.stages["layer1"][0]
    assert torch.count_nonzero(block.bn2.weight) == 0


@pytest.mark.parametrize("kw, word", [({"blocks": (1, 1)}, "blocks"),
                                      ({"width": 0}, "width"),
                                      ({"input_size": 8}, "input_size"),
                                      ({"num_classes": 0}, "num_classes")])
def test_bad_arguments(kw, word):
    with pytest.raises(ValueError, match=word):
        create("small_resnet", **kw)
