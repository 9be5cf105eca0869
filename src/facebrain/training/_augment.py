"""Light, seeded data augmentation on batches of pixels.

An augmentation is any callable ``augment(batch, generator) -> batch`` where
``batch`` is a float32 tensor of shape (N, C, H, W) holding raw pixel values
(0..255, before the network's normalisation) and ``generator`` is the
``torch.Generator`` that must supply every random draw, so that runs are
reproducible and resumable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .._boundary import public

__all__ = ["LightAugment"]


@public
@dataclass(frozen=True)
class LightAugment:
    """Random shift of a few pixels, horizontal flip and brightness scaling.

    Parameters
    ----------
    max_shift : int
        Each image moves by up to this many pixels in x and y (edges replicated).
    flip : bool
        Mirror half of the images left-right.
    brightness : float
        Multiply each image by a factor drawn from ``[1 - b, 1 + b]`` and clip
        to ``[0, max_value]``; 0 disables it.
    max_value : float
        Largest pixel value (255 for raw pixels).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> LightAugment()(torch.full((2, 3, 8, 8), 100.0), g).shape
    torch.Size([2, 3, 8, 8])
    """

    max_shift: int = 4
    flip: bool = True
    brightness: float = 0.2
    max_value: float = 255.0

    def __post_init__(self) -> None:
        if int(self.max_shift) < 0:
            raise ValueError(f"max_shift must be >= 0; got {self.max_shift!r}")
        if not 0 <= float(self.brightness) < 1:
            raise ValueError(f"brightness must be in [0, 1); got {self.brightness!r}")

    def to_dict(self) -> dict:
        return {"name": "LightAugment", **asdict(self)}

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = batch.shape
        # draw everything first, in a fixed order, so the stream never depends on data
        flips = torch.rand(n, generator=generator) < 0.5
        s = int(self.max_shift)
        shifts = torch.randint(-s, s + 1, (n, 2), generator=generator)
        factors = 1 + (torch.rand(n, generator=generator) * 2 - 1) * float(self.brightness)
        out = batch
        if self.flip and bool(flips.any()):
            out = torch.where(flips.view(n, 1, 1, 1), out.flip(-1), out)
        if s > 0:
            padded = F.pad(out, (s, s, s, s), mode="replicate")
            out = torch.stack([
                padded[i, :, s + int(dy): s + int(dy) + h, s + int(dx): s + int(dx) + w]
                for i, (dy, dx) in enumerate(shifts.tolist())
            ])
        if self.brightness > 0:
            out = (out * factors.view(n, 1, 1, 1)).clamp_(0, self.max_value)
        return out


def describe_augment(augment) -> dict | str | None:
    """JSON-friendly description of an augmentation for configs and checkpoints."""
    if augment is None:
        return None
    if hasattr(augment, "to_dict"):
        return augment.to_dict()
    return getattr(augment, "__qualname__", type(augment).__qualname__)
