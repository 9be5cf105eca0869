"""``small_resnet``: a compact residual network that trains on CPU in minutes.

The stage names match torchvision's ResNets (``conv1, layer1, layer2, layer3,
layer4, avgpool, fc``) so that layer-wise analyses line up with the big
networks. The stem is a single stride-2 3x3 convolution (no max-pool), so a
64x64 input reaches ``layer4`` at 4x4 and a 112x112 input at 7x7.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._boundary import public
from ..errors import ParameterError
from ._base import FaceNet
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = ["SmallResNet", "small_resnet"]


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@public
class SmallResNet(FaceNet):
    """Compact ResNet for 64-112 px RGB faces.

    Parameters
    ----------
    num_classes : int
        Size of the ``fc`` head.
    width : int
        Channels of ``conv1`` and ``layer1``; they double at each later stage
        (``width, 2*width, 4*width, 8*width``).
    input_size : int
        Side of the square input the preprocessing produces.
    blocks : sequence of 4 int
        Basic blocks per stage.

    Notes
    -----
    Output shapes for an input of side ``s`` (``s`` divisible by 16):
    ``conv1`` and ``layer1`` (N, width, s/2, s/2), ``layer2`` (N, 2w, s/4, s/4),
    ``layer3`` (N, 4w, s/8, s/8), ``layer4`` (N, 8w, s/16, s/16),
    ``avgpool`` (N, 8w), ``fc`` (N, num_classes).
    """

    def __init__(
        self, *, num_classes: int = 100, width: int = 16, input_size: int = 64,
        blocks: Sequence[int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ParameterError(f"num_classes must be >= 1; got {num_classes!r}")
        if int(width) < 1:
            raise ParameterError(f"width must be >= 1; got {width!r}")
        if int(input_size) < 16:
            raise ParameterError(f"input_size must be >= 16 pixels; got {input_size!r}")
        blocks = tuple(int(b) for b in blocks)
        if len(blocks) != 4 or min(blocks) < 1:
            raise ParameterError(f"blocks needs 4 positive counts, one per stage; got {blocks!r}")
        self.num_classes = int(num_classes)
        self.width = int(width)
        self.input_size = int(input_size)
        self.blocks = blocks
        w = self.width
        self.stages["conv1"] = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)
        )
        in_ch = w
        for k, (mult, stride) in enumerate(zip((1, 2, 4, 8), (1, 2, 2, 2))):
            out_ch = w * mult
            layers = [_BasicBlock(in_ch, out_ch, stride)]
            layers += [_BasicBlock(out_ch, out_ch, 1) for _ in range(blocks[k] - 1)]
            self.stages[f"layer{k + 1}"] = nn.Sequential(*layers)
            in_ch = out_ch
        self.stages["avgpool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.stages["fc"] = nn.Linear(in_ch, self.num_classes)
        self.preprocess = Preprocess(
            input_size=self.input_size, resize=self.input_size,
            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero-init the last BN of each residual branch (Goyal et al. 2017): each
        # block starts as the identity, which trains faster with few epochs
        for m in self.modules():
            if isinstance(m, _BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def describe(self) -> dict:
        d = super().describe()
        d["config"] = {"num_classes": self.num_classes, "width": self.width,
                       "input_size": self.input_size, "blocks": list(self.blocks)}
        return d


@public
@register_model
def small_resnet(
    *, num_classes: int = 100, width: int = 16, input_size: int = 64,
    blocks: Sequence[int] = (1, 1, 1, 1),
) -> SmallResNet:
    """Compact residual network sized to train on synthetic faces on 2 CPU cores.

    Preprocessing: resize the shorter side to ``input_size``, center crop,
    scale to [0, 1], then mean/std 0.5 per channel.

    Examples
    --------
    >>> from facebrain.models import create
    >>> net = create("small_resnet", num_classes=10, width=8)
    >>> {k: tuple(v.shape) for k, v in net.forward_layers(torch.zeros(2, 3, 64, 64),
    ...                                                   ["layer4", "fc"]).items()}
    {'layer4': (2, 64, 4, 4), 'fc': (2, 10)}
    """
    return SmallResNet(num_classes=num_classes, width=width, input_size=input_size,
                       blocks=blocks)
