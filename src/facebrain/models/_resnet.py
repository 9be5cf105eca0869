"""torchvision ResNets as FaceNets: ``resnet50`` (new head) and ``resnet18_gray``.

The stages wrap torchvision's own modules, so a torchvision state dict loads
after a key rename (``conv1.weight`` -> ``stages.conv1.conv1.weight``,
``layer1.0.conv1.weight`` -> ``stages.layer1.0.conv1.weight``, ...) and the
outputs equal a plain torchvision forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .._boundary import public
from ..errors import ParameterError, WeightsError
from ._base import FaceNet
from ._preprocess import Preprocess
from ._registry import register_model

if TYPE_CHECKING:  # torchvision is imported where a network is built (1-2 s at import)
    from torchvision.models.resnet import ResNet

__all__ = [
    "IMAGENET_PREPROCESS",
    "ResNetFaceNet",
    "resnet18_gray",
    "resnet50",
    "torchvision_to_stages",
]

IMAGENET_PREPROCESS = Preprocess(
    input_size=224, resize=256, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    channel_order="RGB", value_range=1.0,
)


class _Stem(nn.Module):
    """conv1 -> bn1 -> relu, keeping torchvision's attribute names."""

    def __init__(self, conv1: nn.Module, bn1: nn.Module, relu: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = conv1, bn1, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))


class _PoolFlatten(nn.Module):
    """Global average pool then flatten to (N, C)."""

    def __init__(self, pool: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = pool if pool is not None else nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(x), 1)


_TV_ROOTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")


def torchvision_to_stages(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision-ResNet keys to :class:`ResNetFaceNet` keys.

    ``conv1.*``/``bn1.*`` -> ``stages.conv1.conv1.*``/``stages.conv1.bn1.*``;
    ``layerK.*`` and ``fc.*`` -> ``stages.layerK.*``/``stages.fc.*``. Keys already
    in the facebrain layout (``stages.``) are returned unchanged; anything else is
    an error naming the key.
    """
    if all(k.startswith("stages.") for k in state_dict):
        return dict(state_dict)
    out, unknown = {}, []
    for key, value in state_dict.items():
        root = key.split(".", 1)[0]
        if key.startswith("stages."):
            out[key] = value
        elif root in ("conv1", "bn1"):
            out[f"stages.conv1.{key}"] = value
        elif root in _TV_ROOTS:
            out[f"stages.{key}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise WeightsError(
            f"{len(unknown)} keys fit neither the torchvision ResNet layout nor facebrain's "
            f"(e.g. {', '.join(unknown[:5])}); is this a ResNet weight file?"
        )
    return out


@public
class ResNetFaceNet(FaceNet):
    """A torchvision :class:`~torchvision.models.ResNet` cut into named stages.

    Stages: ``conv1`` (conv + bn + relu), ``maxpool``, ``layer1`` .. ``layer4``,
    ``avgpool`` (global average, flattened to (N, C)), ``fc`` (logits).

    Parameters
    ----------
    net : torchvision.models.ResNet
        Its modules are reused as they are (no copies).
    preprocess : Preprocess
    """

    def __init__(self, net: ResNet, preprocess: Preprocess) -> None:
        super().__init__()
        self.stages["conv1"] = _Stem(net.conv1, net.bn1, net.relu)
        self.stages["maxpool"] = net.maxpool
        for name in ("layer1", "layer2", "layer3", "layer4"):
            self.stages[name] = getattr(net, name)
        self.stages["avgpool"] = _PoolFlatten(net.avgpool)
        self.stages["fc"] = net.fc
        self.preprocess = preprocess

    @property
    def num_classes(self) -> int:
        return self.stages["fc"].out_features

    def convert_state_dict(self, state_dict):
        return torchvision_to_stages(state_dict)


def _check_classes(num_classes, name: str) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ParameterError(f"{name}: num_classes must be a positive int; got {num_classes!r}")
    return num_classes


@public
@register_model
def resnet50(*, num_classes: int = 1000) -> ResNetFaceNet:
    """torchvision ResNet-50 (random init, no download) with a ``num_classes`` head.

    Preprocessing is ImageNet's: resize 256, center crop 224, RGB in [0, 1],
    ImageNet mean/std. Weights in torchvision's layout (``resnet50-*.pth``) load
    through :func:`facebrain.models.load_weights` (``new_head=True`` when the
    file's 1000 classes differ from ``num_classes``).

    ``forward_layers`` shapes for an (N, 3, 224, 224) input:
    ``conv1`` (N, 64, 112, 112), ``maxpool`` (N, 64, 56, 56),
    ``layer1`` (N, 256, 56, 56), ``layer2`` (N, 512, 28, 28),
    ``layer3`` (N, 1024, 14, 14), ``layer4`` (N, 2048, 7, 7),
    ``avgpool`` (N, 2048), ``fc`` (N, num_classes).

    Examples
    --------
    >>> net = resnet50(num_classes=7)
    >>> net.layer_names[-2:]
    ('avgpool', 'fc')
    """
    num_classes = _check_classes(num_classes, "resnet50")
    from torchvision.models import resnet50 as tv_resnet50

    return ResNetFaceNet(tv_resnet50(weights=None, num_classes=num_classes), IMAGENET_PREPROCESS)


@public
@register_model
def resnet18_gray(*, num_classes: int = 1000, input_size: int = 112) -> ResNetFaceNet:
    """torchvision ResNet-18 whose first convolution takes one (grayscale) channel.

    Preprocessing: resize the shorter side to ``input_size``, center crop,
    grayscale, [0, 1], mean 0.5, std 0.5. Any input of at least 32 x 32 pixels works.

    ``forward_layers`` shapes for an (N, 1, 112, 112) input:
    ``conv1`` (N, 64, 56, 56), ``maxpool`` (N, 64, 28, 28),
    ``layer1`` (N, 64, 28, 28), ``layer2`` (N, 128, 14, 14),
    ``layer3`` (N, 256, 7, 7), ``layer4`` (N, 512, 4, 4),
    ``avgpool`` (N, 512), ``fc`` (N, num_classes).

    Examples
    --------
    >>> import torch
    >>> resnet18_gray(num_classes=5)(torch.zeros(2, 1, 48, 48)).shape
    torch.Size([2, 5])
    """
    num_classes = _check_classes(num_classes, "resnet18_gray")
    if not isinstance(input_size, int) or input_size < 32:
        raise ParameterError(f"resnet18_gray: input_size must be an int >= 32; got {input_size!r}")
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None, num_classes=num_classes)
    old = net.conv1
    net.conv1 = nn.Conv2d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                          padding=old.padding, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    pre = Preprocess(input_size=input_size, resize=input_size, mean=(0.5,), std=(0.5,),
                     grayscale=True)
    return ResNetFaceNet(net, pre)
