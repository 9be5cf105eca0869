"""Small FaceNet subclasses used by the activation tests."""

from __future__ import annotations

import torch
from torch import nn

from facebrain.models import FaceNet, Preprocess


class TinyConvNet(FaceNet):
    """conv(3->4, 13x11 -> 7x6) -> conv(4->5) -> pool+linear(5->3); seeded init."""

    def __init__(self, seed: int = 0, fail_on_call: int | None = None, nan: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.stages["conv1"] = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
        self.stages["conv2"] = nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
        self.stages["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.stages["fc"] = nn.Linear(5, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.preprocess = Preprocess(input_size=11, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        self.name = "tiny_conv"
        self.fail_on_call = fail_on_call
        self.nan = nan
        self.calls = 0

    def forward_layers(self, x, layers=None, *, stop_early=True):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError(f"simulated crash on call {self.calls}")
        out = super().forward_layers(x, layers, stop_early=stop_early)
        if self.nan and "conv2" in out:
            out["conv2"] = out["conv2"].clone()
            out["conv2"][0, 0, 0, :2] = float("nan")
        return out


class TorchvisionResNet(FaceNet):
    """A torchvision ResNet cut into FaceNet stages (stem=conv1..maxpool, layer1-4, avgpool, fc)."""

    def __init__(self, arch: str = "resnet18", input_size: int = 64, seed: int = 0):
        super().__init__()
        import torchvision

        torch.manual_seed(seed)
        net = getattr(torchvision.models, arch)(weights=None)
        net.eval()
        self.net = net
        self.stages["conv1"] = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            self.stages[name] = getattr(net, name)
        self.stages["avgpool"] = nn.Sequential(net.avgpool, nn.Flatten())
        self.stages["fc"] = net.fc
        self.preprocess = Preprocess(input_size=input_size, mean=(0.485, 0.456, 0.406),
                                     std=(0.229, 0.224, 0.225))
        self.name = arch
