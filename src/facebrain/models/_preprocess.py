"""Per-network preprocessing as a small frozen dataclass (timm's pretrained cfg habit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .._boundary import public
from ..errors import ParameterError

__all__ = ["Preprocess"]


@public
@dataclass(frozen=True)
class Preprocess:
    """Turn an RGB ``uint8`` image (H, W, 3) into the tensor a network expects.

    Steps, in order: resize the shorter side to ``resize`` (if set), center
    crop to ``input_size``, convert to grayscale (if ``grayscale``), reorder
    channels (``"RGB"`` or ``"BGR"``), scale to ``value_range`` (1.0 -> [0, 1],
    255.0 -> [0, 255]), subtract ``mean`` and divide by ``std`` per channel.

    Examples
    --------
    >>> p = Preprocess(input_size=224, resize=256, mean=(0.485, 0.456, 0.406),
    ...                std=(0.229, 0.224, 0.225))
    >>> p(np.zeros((300, 200, 3), np.uint8)).shape
    torch.Size([3, 224, 224])
    """

    input_size: int
    resize: int | None = None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"
    value_range: float = 1.0
    grayscale: bool = False

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ParameterError(f"channel_order must be 'RGB' or 'BGR'; got {self.channel_order!r}")
        n = 1 if self.grayscale else 3
        if len(self.mean) != n or len(self.std) != n:
            raise ParameterError(f"mean and std need {n} values; got {self.mean}, {self.std}")

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        from PIL import Image

        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        pil = Image.fromarray(img.astype(np.uint8, copy=False))
        if self.resize is not None:
            w, h = pil.size
            s = self.resize / min(w, h)
            pil = pil.resize((max(1, round(w * s)), max(1, round(h * s))),
                             Image.Resampling.BILINEAR)
        w, h = pil.size
        size = self.input_size
        if (w, h) != (size, size):
            if w < size or h < size:
                pil = pil.resize((max(size, w), max(size, h)), Image.Resampling.BILINEAR)
                w, h = pil.size
            left, top = (w - size) // 2, (h - size) // 2
            pil = pil.crop((left, top, left + size, top + size))
        if self.grayscale:
            pil = pil.convert("L")
        arr = np.asarray(pil, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if self.channel_order == "BGR":
            arr = arr[:, :, ::-1]
        arr = arr * (self.value_range / 255.0)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
