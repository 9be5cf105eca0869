"""``siamese_lfw``: the poster's verification network (twin towers with shared weights).

One convolutional tower ``f`` embeds each image; a pair ``(a, b)`` is combined
as ``|f(a) - f(b)|`` and a final linear layer ``fc`` gives two logits
(index 0 = different, 1 = same identity) for cross-entropy. Every tower layer
is followed by a ReLU except the last fully connected one (``embedding``).

The tower follows Koch, Zemel & Salakhutdinov (2015), the Siamese design most
LFW verification code starts from: four convolutions (10x10, 7x7, 4x4, 4x4 with
``width, 2*width, 2*width, 4*width`` channels; 2x2 max-pool after the first
three), then ``fc1`` and ``embedding``. Default input: 105 x 105 grayscale, the
size used by that design and a common LFW crop (the central face region of the
250 x 250 LFW images, resized). Widths and input size are configurable.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._boundary import public
from ..errors import ParameterError, ShapeError
from ._base import FaceNet
from ._preprocess import Preprocess
from ._registry import register_model

__all__ = ["SiameseNet", "siamese_lfw"]


class _ConvReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel)
        self.relu = nn.ReLU()
        if pool:
            self.pool = nn.MaxPool2d(2)


class _FlattenLinearReLU(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear = nn.Linear(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(torch.flatten(x, 1)))


@public
class SiameseNet(FaceNet):
    """Twin-tower verification net; ``forward`` embeds single images, ``forward_pair`` verifies.

    Parameters
    ----------
    num_classes : int, default 2
        Outputs of the pair head (2: different / same).
    input_size : int, default 105
    grayscale : bool, default True
    width : int, default 64
        Channels of ``conv1``; later convolutions use 2x, 2x and 4x this.
    hidden : int, default 1024
        Units of ``fc1``.
    embedding_dim : int, default 256
        Size of the tower output (``embedding``, no ReLU).

    Attributes
    ----------
    fc : nn.Linear
        The pair head, applied to ``|f(a) - f(b)|``; not a stage, since a stage
        sees one image.
    """

    def __init__(self, *, num_classes: int = 2, input_size: int = 105, grayscale: bool = True,
                 width: int = 64, hidden: int = 1024, embedding_dim: int = 256) -> None:
        super().__init__()
        for name, value, low in (("num_classes", num_classes, 2), ("width", width, 1),
                                 ("hidden", hidden, 1), ("embedding_dim", embedding_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ParameterError(f"siamese_lfw: {name} must be an int >= {low}; got {value!r}")
        min_size = self.min_input_size()
        if not isinstance(input_size, int) or input_size < min_size:
            raise ParameterError(f"siamese_lfw: input_size must be an int >= {min_size} (the four "
                                 f"convolutions and three pools need it); got {input_size!r}")
        cin = 1 if grayscale else 3
        chans = (width, 2 * width, 2 * width, 4 * width)
        kernels = (10, 7, 4, 4)
        for i, (cout, k) in enumerate(zip(chans, kernels)):
            self.stages[f"conv{i + 1}"] = _ConvReLU(cin, cout, k, pool=i < 3)
            cin = cout
        side = input_size
        for i, k in enumerate(kernels):
            side = side - k + 1
            side = side // 2 if i < 3 else side
        self.stages["fc1"] = _FlattenLinearReLU(cin * side * side, hidden)
        self.stages["embedding"] = nn.Linear(hidden, embedding_dim)
        self.fc = nn.Linear(embedding_dim, num_classes)
        self.head_prefix = "fc."
        self.feature_shape = (chans[-1], side, side)
        mean, std = ((0.0,), (1.0,)) if grayscale else ((0.0,) * 3, (1.0,) * 3)
        self.preprocess = Preprocess(input_size=input_size, resize=input_size, mean=mean,
                                     std=std, grayscale=grayscale, value_range=1.0)

    @staticmethod
    def min_input_size() -> int:
        """Smallest square input the tower accepts (conv4 output at least 1 x 1)."""
        side = 1 + 3  # before conv4
        for k in (4, 7, 10):  # undo pool then conv for conv3, conv2, conv1
            side = side * 2 + k - 1
        return side

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Tower output ``f(x)``, shape (N, embedding_dim)."""
        return self.forward(x)

    def forward_pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Verification logits for image pairs, shape (N, num_classes).

        Both images go through the same tower (shared weights); the head sees
        ``|f(a) - f(b)|``. Class 1 means "same identity".
        """
        if a.shape != b.shape:
            raise ShapeError(f"forward_pair: a and b must have the same shape; got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        fa, fb = self.forward(torch.cat([a, b], 0)).chunk(2, 0)
        return self.fc(torch.abs(fa - fb))


@public
@register_model
def siamese_lfw(*, num_classes: int = 2, input_size: int = 105, grayscale: bool = True,
                width: int = 64, hidden: int = 1024, embedding_dim: int = 256) -> SiameseNet:
    """The poster's Siamese verification network for LFW-style face pairs.

    ``forward(x)`` embeds single images (so activations can be extracted as for
    any network); ``forward_pair(a, b)`` returns same/different logits.
    Preprocessing: resize/crop to ``input_size``, grayscale (unless
    ``grayscale=False``), values in [0, 1].

    ``forward_layers`` shapes for an (N, 1, 105, 105) input with the defaults
    (``w = width = 64``): ``conv1`` (N, w, 48, 48), ``conv2`` (N, 2w, 21, 21),
    ``conv3`` (N, 2w, 9, 9), ``conv4`` (N, 4w, 6, 6), ``fc1`` (N, hidden),
    ``embedding`` (N, embedding_dim). Input side ``s`` in general:
    ``c1 = (s - 9) // 2``, ``c2 = (c1 - 6) // 2``, ``c3 = (c2 - 3) // 2``, ``c4 = c3 - 3``.

    Examples
    --------
    >>> import torch
    >>> net = siamese_lfw(width=8, hidden=32, embedding_dim=16)
    >>> net.forward_pair(torch.zeros(3, 1, 105, 105), torch.ones(3, 1, 105, 105)).shape
    torch.Size([3, 2])
    """
    return SiameseNet(num_classes=num_classes, input_size=input_size, grayscale=grayscale,
                      width=width, hidden=hidden, embedding_dim=embedding_dim)
