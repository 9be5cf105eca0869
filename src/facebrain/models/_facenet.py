"""``facenet_vggface2``: InceptionResnetV1 (FaceNet) reading facenet-pytorch state dicts.

Written in facebrain's stage structure, with the parameter names of
``facenet_pytorch.InceptionResnetV1`` (``conv2d_1a.conv.weight``,
``repeat_1.0.branch1.1.bn.running_var``, ``block8.conv2d.weight``,
``last_linear.weight``, ``last_bn.*``, ``logits.*``) so that its published files
(``20180402-114759-vggface2.pt``, 8631 classes) load after a ``stages.`` prefix.
BatchNorm eps is 1e-3 (the TensorFlow original); the residual scales are
0.17 (block35), 0.10 (block17) and 0.20 (block8), the final block8 without ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._boundary import public
from ..errors import ParameterError
from ._base import FaceNet, check_count
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = ["FACENET_PREPROCESS", "InceptionResnetV1", "facenet_vggface2"]

FACENET_PREPROCESS = Preprocess(
    input_size=160, resize=160, mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0),
    channel_order="RGB", value_range=255.0,
)


class _ConvBN(nn.Module):
    """conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU; names ``conv``, ``bn``."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _Residual(nn.Module):
    """Inception-ResNet block: parallel branches, concat, 1x1 ``conv2d`` up, scaled residual."""

    def __init__(self, channels: int, branches: Sequence[nn.Module], mid: int, scale: float,
                 relu: bool = True) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            setattr(self, f"branch{i}", branch)
        self.n_branches = len(branches)
        self.conv2d = nn.Conv2d(mid, channels, kernel_size=1)
        self.scale, self.use_relu = scale, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], 1)
        out = self.conv2d(out) * self.scale + x
        return F.relu(out) if self.use_relu else out


def _block35(scale: float = 0.17) -> _Residual:
    return _Residual(256, [
        _ConvBN(256, 32, 1),
        nn.Sequential(_ConvBN(256, 32, 1), _ConvBN(32, 32, 3, padding=1)),
        nn.Sequential(_ConvBN(256, 32, 1), _ConvBN(32, 32, 3, padding=1),
                      _ConvBN(32, 32, 3, padding=1)),
    ], mid=96, scale=scale)


def _block17(scale: float = 0.10) -> _Residual:
    return _Residual(896, [
        _ConvBN(896, 128, 1),
        nn.Sequential(_ConvBN(896, 128, 1), _ConvBN(128, 128, (1, 7), padding=(0, 3)),
                      _ConvBN(128, 128, (7, 1), padding=(3, 0))),
    ], mid=256, scale=scale)


def _block8(scale: float = 0.20, relu: bool = True) -> _Residual:
    return _Residual(1792, [
        _ConvBN(1792, 192, 1),
        nn.Sequential(_ConvBN(1792, 192, 1), _ConvBN(192, 192, (1, 3), padding=(0, 1)),
                      _ConvBN(192, 192, (3, 1), padding=(1, 0))),
    ], mid=384, scale=scale, relu=relu)


class _Concat(nn.Module):
    """Reduction block: branches run in parallel and are concatenated on channels."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            setattr(self, f"branch{i}", branch)
        self.n_branches = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], 1)


class _PoolFlatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class _DropoutLinear(nn.Linear):
    """Dropout then a bias-free linear layer; parameters named like ``nn.Linear``."""

    def __init__(self, cin: int, cout: int, p: float) -> None:
        super().__init__(cin, cout, bias=False)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.dropout(x, self.p, self.training))


class _L2Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2, dim=1)


@public
class InceptionResnetV1(FaceNet):
    """InceptionResnetV1 in stages named after facenet-pytorch's modules.

    The chain is ``conv2d_1a ... block8, avgpool_1a, last_linear, last_bn,
    embedding`` (L2-normalised). The optional ``logits`` stage, like
    facenet-pytorch's, reads ``last_bn`` (not the normalised embedding), so
    :meth:`forward_layers` is overridden.
    """

    _TRUNK = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
              "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")

    def __init__(self, *, num_classes: int | None = 8631, dropout: float = 0.6) -> None:
        super().__init__()
        if num_classes is not None:
            num_classes = check_count(num_classes, "num_classes", minimum=0,
                                      where="InceptionResnetV1")
        if not 0.0 <= float(dropout) < 1.0:
            raise ParameterError(f"InceptionResnetV1: dropout must be in [0, 1); got {dropout!r}")
        s = self.stages
        s["conv2d_1a"] = _ConvBN(3, 32, 3, stride=2)
        s["conv2d_2a"] = _ConvBN(32, 32, 3)
        s["conv2d_2b"] = _ConvBN(32, 64, 3, padding=1)
        s["maxpool_3a"] = nn.MaxPool2d(3, stride=2)
        s["conv2d_3b"] = _ConvBN(64, 80, 1)
        s["conv2d_4a"] = _ConvBN(80, 192, 3)
        s["conv2d_4b"] = _ConvBN(192, 256, 3, stride=2)
        s["repeat_1"] = nn.Sequential(*[_block35() for _ in range(5)])
        s["mixed_6a"] = _Concat([
            _ConvBN(256, 384, 3, stride=2),
            nn.Sequential(_ConvBN(256, 192, 1), _ConvBN(192, 192, 3, padding=1),
                          _ConvBN(192, 256, 3, stride=2)),
            nn.MaxPool2d(3, stride=2),
        ])
        s["repeat_2"] = nn.Sequential(*[_block17() for _ in range(10)])
        s["mixed_7a"] = _Concat([
            nn.Sequential(_ConvBN(896, 256, 1), _ConvBN(256, 384, 3, stride=2)),
            nn.Sequential(_ConvBN(896, 256, 1), _ConvBN(256, 256, 3, stride=2)),
            nn.Sequential(_ConvBN(896, 256, 1), _ConvBN(256, 256, 3, padding=1),
                          _ConvBN(256, 256, 3, stride=2)),
            nn.MaxPool2d(3, stride=2),
        ])
        s["repeat_3"] = nn.Sequential(*[_block8() for _ in range(5)])
        s["block8"] = _block8(scale=1.0, relu=False)
        s["avgpool_1a"] = _PoolFlatten()
        s["last_linear"] = _DropoutLinear(1792, 512, dropout)
        s["last_bn"] = nn.BatchNorm1d(512, eps=1e-3, momentum=0.1)
        s["embedding"] = _L2Normalize()
        if num_classes:
            s["logits"] = nn.Linear(512, num_classes)
        self.preprocess = FACENET_PREPROCESS
        self.head_prefix = "stages.logits."

    def convert_state_dict(self, state_dict):
        if all(k.startswith("stages.") for k in state_dict):
            return dict(state_dict)
        return {k if k.startswith("stages.") else f"stages.{k}": v for k, v in state_dict.items()}

    def forward_layers(self, x, layers=None, *, stop_early: bool = True):
        """Like :meth:`FaceNet.forward_layers`; ``logits`` is computed from ``last_bn``."""
        wanted = self.check_layers(layers)
        last, wanted_set = wanted[-1], set(wanted)
        out: dict[str, torch.Tensor] = {}
        pre_norm = None
        for name, stage in self.stages.items():
            if name == "logits":
                x = stage(pre_norm)
            else:
                if name == "embedding":
                    pre_norm = x
                x = stage(x)
            if name in wanted_set:
                out[name] = x
            if stop_early and name == last:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits if the model has a ``logits`` stage, else the L2-normalised embedding."""
        return self.forward_layers(x, [self.layer_names[-1]])[self.layer_names[-1]]


@public
@register_model
def facenet_vggface2(*, num_classes: int | None = 8631, dropout: float = 0.6) -> InceptionResnetV1:
    """InceptionResnetV1 (FaceNet) loading facenet-pytorch's ``vggface2`` state dict.

    Input 160 x 160 RGB, ``(x - 127.5) / 128`` on 0-255 values.
    ``num_classes=0`` drops the ``logits`` stage (``None`` does too when the
    builder is called directly; ``create(..., num_classes=None)`` means "builder
    default", 8631); load the 8631-class file into it with ``new_head=True``.

    ``forward_layers`` shapes for an (N, 3, 160, 160) input:
    ``conv2d_1a`` (N, 32, 79, 79), ``conv2d_2a`` (N, 32, 77, 77),
    ``conv2d_2b`` (N, 64, 77, 77), ``maxpool_3a`` (N, 64, 38, 38),
    ``conv2d_3b`` (N, 80, 38, 38), ``conv2d_4a`` (N, 192, 36, 36),
    ``conv2d_4b`` (N, 256, 17, 17), ``repeat_1`` (N, 256, 17, 17),
    ``mixed_6a`` (N, 896, 8, 8), ``repeat_2`` (N, 896, 8, 8),
    ``mixed_7a`` (N, 1792, 3, 3), ``repeat_3`` and ``block8`` (N, 1792, 3, 3),
    ``avgpool_1a`` (N, 1792), ``last_linear`` and ``last_bn`` (N, 512),
    ``embedding`` (N, 512, unit L2 norm), ``logits`` (N, num_classes).

    Examples
    --------
    >>> net = facenet_vggface2(num_classes=0)
    >>> net.layer_names[-2:]
    ('last_bn', 'embedding')
    """
    if num_classes is not None and (isinstance(num_classes, bool) or
                                    not isinstance(num_classes, int) or num_classes < 0):
        raise ParameterError(f"facenet_vggface2: num_classes must be None or an int >= 0; "
                             f"got {num_classes!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ParameterError(f"facenet_vggface2: dropout must be in [0, 1); got {dropout!r}")
    return InceptionResnetV1(num_classes=num_classes, dropout=float(dropout))
