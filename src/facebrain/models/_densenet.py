"""``densenet_gray48``: the small DenseNet of identity/expression transfer studies.

Matched to the widely used Keras DenseNet of S. Majumdar (``titu1994/DenseNet``,
``create_dense_net`` / keras-contrib ``DenseNet``) with ``depth=13,
growth_rate=32, reduction=0.5`` on 48 x 48 grayscale faces (FER2013 size):
``nb_dense_block=3``, ``(depth - 4) / 3 = 3`` layers per block, no bottleneck,
initial filters ``2 * growth_rate = 64``, compression ``1 - reduction = 0.5``.

- initial 3x3 convolution, 64 filters, stride 1, no bias ("initial_conv2D");
- dense block = 3 x (BN -> ReLU -> 3x3 conv, 32 filters, no bias), each layer's
  output concatenated onto its input;
- transition = BN -> ReLU -> 1x1 conv to ``int(channels * 0.5)`` -> 2x2 average pool;
- after the last block: BN -> ReLU -> global average pool -> dense layer.

Depth 13 = 1 initial conv + 9 block convs + 2 transition convs + 1 dense layer.
Keras' BatchNormalization defaults (eps 1e-3, momentum 0.99) are used.
Optional ``bottleneck=True`` gives the DenseNet-BC variant (1x1 conv to 4k
channels before each 3x3; half as many layers per block), as in the original.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._boundary import public
from ..errors import ParameterError
from ._base import FaceNet, check_count
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = ["DenseNetGray", "densenet_gray48"]


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras defaults: epsilon 1e-3, momentum 0.99 (torch momentum = 1 - 0.99)
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bottleneck: bool, dropout: float) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        if bottleneck:
            self.norm0 = _bn(cin)
            self.conv0 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
            cin = 4 * growth
        self.norm = _bn(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.bottleneck:
            y = F.dropout(self.conv0(F.relu(self.norm0(y))), self.dropout, self.training)
        y = F.dropout(self.conv(F.relu(self.norm(y))), self.dropout, self.training)
        return torch.cat([x, y], 1)


class _Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm = _bn(cin)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class _Head(nn.Module):
    """BN -> ReLU -> global average pool -> (N, C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _bn(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1), 1)


@public
class DenseNetGray(FaceNet):
    """DenseNet-C for small grayscale faces (see the module docstring for provenance).

    Stages: ``conv0``, ``dense1``, ``transition1``, ``dense2``, ``transition2``,
    ``dense3``, ``avgpool`` (BN, ReLU, global mean; (N, C)), ``fc``.
    """

    def __init__(self, *, num_classes: int = 7, depth: int = 13, growth_rate: int = 32,
                 reduction: float = 0.5, n_blocks: int = 3, bottleneck: bool = False,
                 dropout: float = 0.0, input_size: int = 48) -> None:
        super().__init__()
        num_classes = check_count(num_classes, "num_classes", where="DenseNetGray")
        growth_rate = check_count(growth_rate, "growth_rate", where="DenseNetGray")
        if (depth - 4) % 3 != 0 or depth < 7:
            raise ParameterError(f"densenet_gray48: depth must be 3 * n + 4 (7, 10, 13, ...); "
                                 f"got {depth!r}")
        if not 0.0 <= reduction < 1.0:
            raise ParameterError(f"densenet_gray48: reduction must be in [0, 1); got {reduction!r}")
        n_layers = (depth - 4) // 3
        if bottleneck:
            n_layers //= 2
            if n_layers < 1:
                raise ParameterError(f"densenet_gray48: depth={depth} leaves no layers per block "
                                     "with bottleneck=True; use depth >= 10")
        channels = 2 * growth_rate
        self.stages["conv0"] = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        for b in range(1, n_blocks + 1):
            layers = []
            for _ in range(n_layers):
                layers.append(_DenseLayer(channels, growth_rate, bottleneck, dropout))
                channels += growth_rate
            self.stages[f"dense{b}"] = nn.Sequential(*layers)
            if b < n_blocks:
                out = int(channels * (1.0 - reduction))
                self.stages[f"transition{b}"] = _Transition(channels, out)
                channels = out
        self.stages["avgpool"] = _Head(channels)
        self.stages["fc"] = nn.Linear(channels, num_classes)
        self.num_features = channels
        for m in self.modules():  # Keras he_uniform for convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        self.preprocess = Preprocess(input_size=input_size, resize=input_size, mean=(0.0,),
                                     std=(1.0,), grayscale=True, value_range=1.0)


@public
@register_model
def densenet_gray48(*, num_classes: int = 7, depth: int = 13, growth_rate: int = 32,
                    reduction: float = 0.5, bottleneck: bool = False, dropout: float = 0.0,
                    input_size: int = 48) -> DenseNetGray:
    """Small DenseNet (depth 13, growth 32, reduction 0.5) for 48 x 48 grayscale faces.

    Preprocessing: resize/crop to ``input_size``, grayscale, values in [0, 1].

    ``forward_layers`` shapes for an (N, 1, 48, 48) input with the defaults:
    ``conv0`` (N, 64, 48, 48), ``dense1`` (N, 160, 48, 48),
    ``transition1`` (N, 80, 24, 24), ``dense2`` (N, 176, 24, 24),
    ``transition2`` (N, 88, 12, 12), ``dense3`` (N, 184, 12, 12),
    ``avgpool`` (N, 184), ``fc`` (N, num_classes).

    Examples
    --------
    >>> import torch
    >>> densenet_gray48(num_classes=7)(torch.zeros(2, 1, 48, 48)).shape
    torch.Size([2, 7])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ParameterError(f"densenet_gray48: num_classes must be a positive int; "
                             f"got {num_classes!r}")
    return DenseNetGray(num_classes=num_classes, depth=depth, growth_rate=growth_rate,
                        reduction=reduction, bottleneck=bottleneck, dropout=dropout,
                        input_size=input_size)
