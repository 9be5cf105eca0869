"""``dlib_resnet``: dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``).

The network of dlib's ``dnn_face_recognition_ex.cpp`` (``anet_type``), rebuilt
layer for layer in torch and read from dlib's own ``.dat`` file by
:mod:`facebrain.models._dlib_format` (dlib itself is not imported):

- ``con<32,7,7,2,2>`` -> ``affine`` -> ``relu`` -> ``max_pool<3,3,2,2>``;
- five resolution levels of residual blocks (dlib's ``alevel4`` .. ``alevel0``,
  here ``level1`` .. ``level5``): ``ares<N>`` is conv3x3 -> affine -> relu ->
  conv3x3 -> affine, plus the input, then relu; ``ares_down<N>`` strides its first
  convolution by 2 and adds a 2x2/2 average pool of its input;
- ``avg_pool_everything`` -> ``fc_no_bias<128>`` (the embedding).

dlib's conventions kept exactly: stride-2 convolutions and pools have no
padding (stride-1 3x3 convolutions pad 1); ``add_prev`` adds tensors of
different shapes by zero-padding both to the larger one (aligned at channel 0,
row 0, column 0), which happens at ``level2`` (32 -> 64 channels), ``level4``
(pool 4x4 vs. convolution 3x3, 128 -> 256 channels) and ``level5`` (2x2 vs. 1x1);
``affine`` layers (a per-channel scale and shift: the trained batch norms
frozen) stand in for batch norm; the fc weight is stored (inputs, outputs) and
transposed into ``nn.Linear``.

Input (``input_rgb_image_sized<150>``): a 150 x 150 aligned RGB chip (as
``dlib.get_face_chip`` makes), each channel ``(value - mean) / 256`` with the
means stored in the file (122.782, 117.001, 104.298 for R, G, B).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError, WeightsError
from ._base import FaceNet
from ._dlib_format import read_dlib_net
from ._packaged import packaged_file
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = ["DLIB_PREPROCESS", "DlibResNet", "dlib_resnet", "dlib_resnet_default_path"]

DLIB_PREPROCESS = Preprocess(
    input_size=150, resize=150,
    mean=tuple(float(np.float32(v)) for v in (122.782, 117.001, 104.298)),
    std=(256.0, 256.0, 256.0), channel_order="RGB", value_range=255.0,
)
_DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
# (channels, blocks, first block downsamples) of level1 .. level5 (dlib's alevel4 .. alevel0)
_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def dlib_resnet_default_path() -> Path:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` in ``face-recognition-models``."""
    return packaged_file("face_recognition_models", f"models/{_DAT_NAME}",
                         distribution="face-recognition-models",
                         install="pip install face-recognition-models", model="dlib_resnet")


class _Affine(nn.Module):
    """dlib's ``affine_`` in CONV mode: ``x * weight[c] + bias[c]`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, missing values read as 0."""
    if a.shape == b.shape:
        return a + b
    shape = [max(s, t) for s, t in zip(a.shape, b.shape)]
    out = a.new_zeros(shape)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] = a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


class _Stem(nn.Module):
    """``relu<affine<con<32,7,7,2,2>>>`` (no padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine = _Affine(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.affine(self.conv(x)))


class _ResBlock(nn.Module):
    """``ares<N>`` (identity shortcut) or ``ares_down<N>`` (2x2/2 average-pool shortcut)."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = _Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.affine2 = _Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(shortcut, y))


class _PoolFlatten(nn.Module):
    """``avg_pool_everything``: the mean over rows and columns, shape (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _wrappers() -> list[tuple]:
    """dlib's ``anet_type`` as file wrappers, outermost first (see ``read_dlib_net``)."""
    def ares():
        return [("layer", "relu"), ("layer", "add_prev"), ("layer", "affine"), ("layer", "con"),
                ("layer", "relu"), ("layer", "affine"), ("layer", "con"), ("tag", 1)]

    def ares_down():
        return [("layer", "relu"), ("layer", "add_prev"), ("layer", "avg_pool"), ("skip", 1),
                ("tag", 2), ("layer", "affine"), ("layer", "con"), ("layer", "relu"),
                ("layer", "affine"), ("layer", "con"), ("tag", 1)]

    out = [("layer", "fc"), ("layer", "avg_pool")]
    for _channels, blocks, down in reversed(_LEVELS):  # alevel0 (outermost) first
        for i in reversed(range(blocks)):
            out += ares_down() if (down and i == 0) else ares()
    return out + [("layer", "max_pool"), ("layer", "relu"), ("layer", "affine"), ("layer", "con")]


@public
class DlibResNet(FaceNet):
    """dlib's 29-convolution face-recognition ResNet in facebrain stages.

    Stages and output shapes for an (N, 3, 150, 150) input: ``conv1`` (N, 32, 72, 72),
    ``maxpool`` (N, 32, 35, 35), ``level1`` (N, 32, 35, 35), ``level2`` (N, 64, 17, 17),
    ``level3`` (N, 128, 8, 8), ``level4`` (N, 256, 4, 4), ``level5`` (N, 256, 2, 2),
    ``avgpool`` (N, 256), ``embedding`` (N, 128; dlib's face descriptor, not normalised).
    """

    def __init__(self) -> None:
        super().__init__()
        s = self.stages
        s["conv1"] = _Stem()
        s["maxpool"] = nn.MaxPool2d(3, stride=2, padding=0)
        cin = 32
        for i, (cout, blocks, down) in enumerate(_LEVELS, start=1):
            s[f"level{i}"] = nn.Sequential(*[
                _ResBlock(cin if b == 0 else cout, cout, down and b == 0) for b in range(blocks)
            ])
            cin = cout
        s["avgpool"] = _PoolFlatten()
        s["embedding"] = nn.Linear(256, 128, bias=False)
        self.preprocess = DLIB_PREPROCESS
        self.head_prefix = "stages.embedding."
        self.dlib_info: dict = {}
        self._dlib_init()

    @torch.no_grad()
    def _dlib_init(self) -> None:
        """dlib's initialisation (``randomize_parameters``), drawn from torch's global RNG.

        Weights ~ U(-a, a) with ``a = sqrt(6 / (fan_in + fan_out))``, where dlib's
        ``fan_in = k*k*in_channels`` and ``fan_out = out_channels`` for a
        convolution and the sizes for the fc; biases 0; affine scale 1 and shift 0.
        Seed with ``torch.manual_seed`` (the pipeline does) for a reproducible twin.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                a = math.sqrt(6.0 / (fan_in + m.out_channels))
                m.weight.uniform_(-a, a)
                m.bias.zero_()
            elif isinstance(m, nn.Linear):
                a = math.sqrt(6.0 / (m.in_features + m.out_features))
                m.weight.uniform_(-a, a)

    def read_weight_file(self, path: str | os.PathLike):
        """Read a dlib ``.dat`` into this network's state dict; None for other formats."""
        with open(path, "rb") as f:
            head = f.read(16)
        if not (head[:3] == b"\x01\x01\x01" and head[4:9] == b"loss_"):
            return None  # not a dlib DNN (add_loss_layer version 1, then a loss name)
        layers, info = read_dlib_net(path, _wrappers())
        state = self._state_from_dlib(layers, str(path))
        self.dlib_info = info
        inp = info["input"]
        if (inp["nr"], inp["nc"]) not in ((150, 150), (None, None)):
            raise WeightsError(f"{path}: the network takes {inp['nr']}x{inp['nc']} chips; "
                               "dlib_resnet is the 150x150 face-recognition network.")
        self.preprocess = Preprocess(
            input_size=150, resize=150,
            mean=(inp["avg_red"], inp["avg_green"], inp["avg_blue"]),
            std=(256.0, 256.0, 256.0), channel_order="RGB", value_range=255.0,
        )
        return state, "dlib-dat"

    def _state_from_dlib(self, layers, source: str) -> dict[str, torch.Tensor]:
        """Map the file's layers (forward order) onto this network's parameter names."""
        it = iter(enumerate(layers))
        state: dict[str, torch.Tensor] = {}

        def take(kind: str, prefix: str, **expect):
            i, layer = next(it)
            if layer.kind != kind:
                raise WeightsError(f"{source}: layer {i} is {layer.kind!r} where dlib_resnet "
                                   f"has {kind!r} ({prefix or 'structure'}).")
            for key, value in expect.items():
                if layer.config.get(key) != value:
                    raise WeightsError(
                        f"{source}: layer {i} ({kind}, {prefix}) has {key}="
                        f"{layer.config.get(key)}, dlib_resnet expects {value}.")
            if kind == "fc":
                state[prefix + "weight"] = torch.from_numpy(layer.params["weight"].T.copy())
            else:
                for name, value in layer.params.items():
                    state[prefix + name] = torch.from_numpy(np.ascontiguousarray(value))

        def con(prefix, n, k, stride):
            take("con", prefix, num_filters=n, nr=k, nc=k, stride_y=stride, stride_x=stride,
                 padding_y=0 if stride == 2 else k // 2, padding_x=0 if stride == 2 else k // 2)

        con("stages.conv1.conv.", 32, 7, 2)
        take("affine", "stages.conv1.affine.")
        take("relu", "")
        take("max_pool", "", nr=3, nc=3, stride_y=2, stride_x=2, padding_y=0, padding_x=0)
        for li, (cout, blocks, down) in enumerate(_LEVELS, start=1):
            for b in range(blocks):
                p = f"stages.level{li}.{b}."
                is_down = down and b == 0
                con(p + "conv1.", cout, 3, 2 if is_down else 1)
                take("affine", p + "affine1.")
                take("relu", "")
                con(p + "conv2.", cout, 3, 1)
                take("affine", p + "affine2.")
                if is_down:
                    take("avg_pool", "", nr=2, nc=2, stride_y=2, stride_x=2,
                         padding_y=0, padding_x=0)
                take("add_prev", "")
                take("relu", "")
        take("avg_pool", "", nr=0, nc=0, stride_y=1, stride_x=1, padding_y=0, padding_x=0)
        take("fc", "stages.embedding.", num_outputs=128, num_inputs=256)
        return state


@public
@register_model
def dlib_resnet(*, pretrained: bool = True, num_classes: int | None = None) -> DlibResNet:
    """dlib's face-recognition ResNet (128-D identity embedding), from its own ``.dat``.

    With ``pretrained=True`` (the default) the weights are read from
    ``dlib_face_recognition_resnet_model_v1.dat`` in the installed
    ``face-recognition-models`` package (``pip install 'facebrain[faces]'``); without
    the package an error names it. ``create("dlib_resnet", weights=...)`` takes another
    ``.dat``, a torch state dict file or an in-memory state dict instead.
    ``pretrained=False`` is the untrained twin: the same architecture with dlib's
    random initialisation drawn from torch's RNG (seed it).

    Preprocessing: a 150 x 150 aligned RGB chip (resized if another size), each
    channel ``(value - mean) / 256`` with dlib's means (122.782, 117.001, 104.298).

    Layers (for ``forward_layers``/``extract``): ``conv1`` (N, 32, 72, 72),
    ``maxpool`` (N, 32, 35, 35), ``level1`` (N, 32, 35, 35), ``level2`` (N, 64, 17, 17),
    ``level3`` (N, 128, 8, 8), ``level4`` (N, 256, 4, 4), ``level5`` (N, 256, 2, 2),
    ``avgpool`` (N, 256), ``embedding`` (N, 128). ``level1`` .. ``level5`` are dlib's
    ``alevel4`` .. ``alevel0``.

    Examples
    --------
    >>> import torch
    >>> twin = dlib_resnet(pretrained=False)
    >>> twin.forward_layers(torch.zeros(1, 3, 150, 150), ["level4"])["level4"].shape
    torch.Size([1, 256, 4, 4])
    """
    if num_classes not in (None, 0, 128):
        raise ParameterError(
            f"dlib_resnet: num_classes={num_classes!r} is not supported; the network has no "
            "classifier, its last stage is the 128-D embedding. Decode labels from its layers "
            "with facebrain.transfer.probe instead."
        )
    if not isinstance(pretrained, bool):
        raise ParameterTypeError(f"dlib_resnet: pretrained must be True or False; got {pretrained!r}")
    model = DlibResNet()
    if pretrained:
        from ._weights import load_weights

        load_weights(model, dlib_resnet_default_path())
    return model
