"""``resnet50_vggface2``: the Caffe-style ResNet-50 of the VGGFace2 release, every weight format.

Architecture (Cao et al. 2018, "VGGFace2"; Caffe model converted by the
authors to PyTorch): torchvision's ResNet-50 except that each downsampling
bottleneck strides on its first 1x1 convolution (not the 3x3), the stem's
max-pool is 3x3/2 without padding and with ``ceil_mode=True``, BatchNorm eps is
1e-5 and the classifier has 8631 identities. The global pool is adaptive: at
224 x 224 it equals the release's 7x7/1 average pool, and smaller inputs work.

Weight formats read by :func:`facebrain.models.load_weights`:

1. The pickled NumPy dicts ``resnet50_ft_weight.pkl`` / ``resnet50_scratch_weight.pkl``
   (Python-2 pickles, decoded as latin1; keys in torchvision's names
   ``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``,
   ``layer1.0.downsample.0.weight``, ``fc.weight``), read by the restricted unpickler.
2. The MatConvNet-converted state dict ``resnet50_ft_dag.pth`` (S. Albanie's
   ``mcnPyTorch``; names ``conv1_7x7_s2``, ``conv1_7x7_s2_bn``,
   ``conv{s}_{b}_1x1_reduce``, ``_3x3``, ``_1x1_increase``, ``_1x1_proj`` each with a
   ``_bn`` twin, and ``classifier`` as a (8631, 2048, 1, 1) convolution).
3. A plain torch state dict of this model (``stages.`` keys), or a training checkpoint.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .._boundary import public
from ..errors import WeightsError
from ._preprocess import Preprocess
from ._registry import register_model
from ._resnet import ResNetFaceNet, _check_classes, torchvision_to_stages

__all__ = [
    "VGGFACE2_PREPROCESS",
    "VGGFace2ResNet50",
    "dag_to_torchvision",
    "resnet50_vggface2",
    "stages_to_torchvision",
    "torchvision_to_dag",
]

VGGFACE2_PREPROCESS = Preprocess(
    input_size=224, resize=256, mean=(91.4953, 103.8827, 131.0912), std=(1.0, 1.0, 1.0),
    channel_order="BGR", value_range=255.0,
)

# bottleneck part in torchvision names <-> MatConvNet/Caffe names
_BLOCK_PARTS = {
    "conv1": "1x1_reduce", "bn1": "1x1_reduce_bn",
    "conv2": "3x3", "bn2": "3x3_bn",
    "conv3": "1x1_increase", "bn3": "1x1_increase_bn",
    "downsample.0": "1x1_proj", "downsample.1": "1x1_proj_bn",
}
_PART_TO_TV = {v: k for k, v in _BLOCK_PARTS.items()}
_DAG_BLOCK = re.compile(r"^conv(\d)_(\d+)_(.+)\.(weight|bias|running_mean|running_var|"
                        r"num_batches_tracked)$")


@public
def dag_to_torchvision(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a ``resnet50_ft_dag.pth`` (MatConvNet/Caffe names) state dict to torchvision names.

    ``conv{s}_{b}_{part}`` becomes ``layer{s-1}.{b-1}.{conv1|bn1|...|downsample.k}``;
    ``conv1_7x7_s2(_bn)`` becomes ``conv1``/``bn1``; the 1x1-convolution
    ``classifier`` becomes the linear ``fc`` (weight reshaped to (classes, 2048)).
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith("conv1_7x7_s2_bn."):
            out["bn1." + key.split(".", 1)[1]] = value
        elif key.startswith("conv1_7x7_s2."):
            out["conv1." + key.split(".", 1)[1]] = value
        elif key.startswith("classifier."):
            suffix = key.split(".", 1)[1]
            out["fc." + suffix] = value.reshape(value.shape[0], -1) if suffix == "weight" else value
        elif (m := _DAG_BLOCK.match(key)) and m.group(3) in _PART_TO_TV:
            stage, block, part, param = m.groups()
            out[f"layer{int(stage) - 1}.{int(block) - 1}.{_PART_TO_TV[part]}.{param}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise WeightsError(
            f"{len(unknown)} keys are not VGGFace2 ResNet-50 (MatConvNet) layer names, e.g. "
            f"{', '.join(unknown[:5])}."
        )
    return out


@public
def torchvision_to_dag(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`dag_to_torchvision` (writes the ``*_dag.pth`` layout).

    ``num_batches_tracked`` counters are dropped (the release has none).
    """
    out: dict[str, torch.Tensor] = {}
    block = re.compile(r"^layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.\d)\.(.+)$")
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        root, _, param = key.partition(".")
        if root == "conv1":
            out[f"conv1_7x7_s2.{param}"] = value
        elif root == "bn1":
            out[f"conv1_7x7_s2_bn.{param}"] = value
        elif root == "fc":
            out[f"classifier.{param}"] = value[:, :, None, None] if param == "weight" else value
        elif m := block.match(key):
            layer, idx, part, param = m.groups()
            out[f"conv{int(layer) + 1}_{int(idx) + 1}_{_BLOCK_PARTS[part]}.{param}"] = value
        else:
            raise WeightsError(f"key {key!r} is not a torchvision ResNet-50 name")
    return out


@public
def stages_to_torchvision(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename facebrain ResNet keys (``stages.``) back to torchvision's (and the ``.pkl``'s)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("stages.conv1."):
            out[key[len("stages.conv1."):]] = value
        elif key.startswith("stages."):
            out[key[len("stages."):]] = value
        else:
            out[key] = value
    return out


@public
class VGGFace2ResNet50(ResNetFaceNet):
    """ResNet-50 (Caffe layout) reading the VGGFace2 release's pickle, ``_dag.pth`` and torch files."""

    def convert_state_dict(self, state_dict):
        if any(k.startswith(("conv1_7x7_s2", "classifier.")) for k in state_dict):
            state_dict = dag_to_torchvision(state_dict)
        return torchvision_to_stages(state_dict)


@public
@register_model
def resnet50_vggface2(*, num_classes: int = 8631) -> VGGFace2ResNet50:
    """Caffe-style ResNet-50 of the VGGFace2 release (random init; load the published weights).

    Preprocessing: resize 256, center crop 224, RGB -> BGR, 0-255, minus the
    BGR mean (91.4953, 103.8827, 131.0912), std 1.

    ``forward_layers`` shapes for an (N, 3, 224, 224) input:
    ``conv1`` (N, 64, 112, 112), ``maxpool`` (N, 64, 56, 56),
    ``layer1`` (N, 256, 56, 56), ``layer2`` (N, 512, 28, 28),
    ``layer3`` (N, 1024, 14, 14), ``layer4`` (N, 2048, 7, 7),
    ``avgpool`` (N, 2048), ``fc`` (N, num_classes).

    Examples
    --------
    >>> import torch
    >>> net = resnet50_vggface2(num_classes=4).eval()
    >>> net.forward_layers(torch.zeros(1, 3, 64, 64), ["layer1"])["layer1"].shape
    torch.Size([1, 256, 16, 16])
    """
    num_classes = _check_classes(num_classes, "resnet50_vggface2")
    from torchvision.models import resnet50 as tv_resnet50

    net = tv_resnet50(weights=None, num_classes=num_classes)
    net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    for name in ("layer2", "layer3", "layer4"):
        first = getattr(net, name)[0]
        first.conv1.stride = (2, 2)  # Caffe: stride on the 1x1 reduce ...
        first.conv2.stride = (1, 1)  # ... not on the 3x3 (torchvision's v1.5)
    model = VGGFace2ResNet50(net, VGGFACE2_PREPROCESS)
    return model
