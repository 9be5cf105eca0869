"""Image pipeline for training: decode once into a uint8 cache, normalise per batch.

A network's :class:`~facebrain.models.Preprocess` is split in two:

* the *geometry* (resize, crop, grayscale) runs once per image through
  ``stimuli.to_torch`` and a DataLoader and yields ``uint8`` tensors; the
  whole set is kept in memory when it fits (``cache``), otherwise decoded
  again every epoch;
* the *arithmetic* (channel order, value range, mean/std) runs on each batch
  in torch, after augmentation.

Both paths give the same numbers as ``model.preprocess(image)`` (elementwise
float32 operations in the same order), so caching changes speed, never results.
Networks whose preprocessing is an arbitrary callable are cached as float
tensors (or decoded per epoch) and augmented spatially only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from ..models._preprocess import Preprocess

__all__ = ["ImagePipeline", "load_images"]

#: Sets up to this many bytes of decoded pixels are cached in memory by default.
CACHE_LIMIT_BYTES = 2 << 30


class ImagePipeline:
    """Split a network's preprocessing into a cacheable part and a batch part.

    Parameters
    ----------
    preprocess : Preprocess or callable
        The network's ``preprocess``.
    """

    def __init__(self, preprocess: Callable) -> None:
        if preprocess is None:
            raise ValueError(
                "the model has no .preprocess; set one (a facebrain.models.Preprocess) "
                "so that images can be turned into input tensors."
            )
        self.preprocess = preprocess
        self.structured = isinstance(preprocess, Preprocess)
        if self.structured:
            n = preprocess.channels
            # geometry only: output is exactly the uint8 pixels, as float32
            self.geometry = dataclasses.replace(
                preprocess, mean=(0.0,) * n, std=(1.0,) * n, value_range=255.0,
                channel_order="RGB",
            )
            self.scale = np.float32(preprocess.value_range / 255.0)
            self.mean = torch.tensor(preprocess.mean, dtype=torch.float32).view(1, n, 1, 1)
            self.std = torch.tensor(preprocess.std, dtype=torch.float32).view(1, n, 1, 1)
            self.bgr = preprocess.channel_order == "BGR" and n == 3
        else:
            self.geometry = preprocess

    # -------------------------------------------------------------- decoding
    def encode(self, img: np.ndarray) -> torch.Tensor:
        """What is stored per image: uint8 (C, H, W) or the float tensor."""
        x = self.geometry(img)
        if self.structured:
            return x.to(torch.uint8)
        return x

    def bytes_per_image(self, example: torch.Tensor) -> int:
        return example.numel() * example.element_size()

    # --------------------------------------------------------------- batches
    def to_unit(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> float32 in [0, 1] (identity for unstructured tensors)."""
        if self.structured:
            return batch.to(torch.float32)
        return batch

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        """Float batch of raw pixel values -> the network's input tensor.

        For structured preprocessing ``batch`` holds pixel values in 0..255
        (possibly augmented); the same float32 operations as
        :meth:`Preprocess.__call__` are applied in the same order.
        """
        if not self.structured:
            return batch
        if self.bgr:
            batch = batch.flip(1)
        batch = batch * self.scale
        return (batch - self.mean) / self.std


def _quiet_generator() -> torch.Generator:
    # a DataLoader draws its workers' base seed from the global torch RNG unless
    # given a generator; decoding is deterministic, so a fixed one keeps the
    # caller's RNG untouched
    return torch.Generator().manual_seed(0)


class _Encoded(torch.utils.data.Dataset):
    def __init__(self, stimuli, pipeline: ImagePipeline) -> None:
        self.base = stimuli.to_torch(pipeline.encode)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.base[i]


def load_images(
    stimuli, pipeline: ImagePipeline, positions: np.ndarray, *, num_workers: int = 0,
    batch_size: int = 256, progress: bool = False, desc: str = "decode",
) -> torch.Tensor:
    """Decode the rows ``positions`` of ``stimuli`` into one stacked tensor.

    Decoding goes through ``stimuli.to_torch(pipeline.encode)`` and a
    DataLoader (``num_workers`` processes), in order.
    """
    from tqdm.auto import tqdm

    positions = np.asarray(positions, dtype=np.int64)
    ds = torch.utils.data.Subset(_Encoded(stimuli, pipeline), positions.tolist())
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        generator=_quiet_generator(),
    )
    parts = []
    for x, _ in tqdm(loader, desc=desc, disable=not progress, leave=False):
        parts.append(x)
    if not parts:
        raise ValueError("no images to decode: the selection is empty")
    return torch.cat(parts)


class ImageStore:
    """Pixels of some rows of a StimulusSet, cached in memory or decoded on demand.

    ``get(idx)`` returns the stored tensors (uint8 or float) for store
    positions ``idx`` (indices into ``positions``).
    """

    def __init__(
        self, stimuli, pipeline: ImagePipeline, positions: np.ndarray, *,
        cache: bool | str = "auto", num_workers: int = 0, progress: bool = False,
    ) -> None:
        self.stimuli = stimuli
        self.pipeline = pipeline
        self.positions = np.asarray(positions, dtype=np.int64)
        self.num_workers = num_workers
        if cache not in (True, False, "auto"):
            raise ValueError(f"cache must be True, False or 'auto'; got {cache!r}")
        if cache == "auto" and len(self.positions):
            example = pipeline.encode(stimuli.load(int(self.positions[0])))
            need = pipeline.bytes_per_image(example) * len(self.positions)
            cache = need <= CACHE_LIMIT_BYTES
        self.cached = bool(cache)
        self.data: torch.Tensor | None = None
        if self.cached and len(self.positions):
            self.data = load_images(stimuli, pipeline, self.positions,
                                    num_workers=num_workers, progress=progress)

    def __len__(self) -> int:
        return len(self.positions)

    def get(self, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.to(torch.int64)
        else:
            idx = torch.as_tensor(np.array(idx, dtype=np.int64))
        if self.data is not None:
            return self.data[idx]
        return torch.stack([self.pipeline.encode(self.stimuli.load(int(self.positions[i])))
                            for i in idx.tolist()])

    def batches(self, order: np.ndarray, batch_size: int, *, drop_last: bool = False):
        """Yield ``(store_indices, pixels)`` in ``order``, ``batch_size`` at a time.

        When not cached, images are decoded by a DataLoader with
        ``num_workers`` processes (decode-from-source every epoch).
        """
        order = np.asarray(order, dtype=np.int64)
        n = len(order)
        starts = list(range(0, n, batch_size))
        stops = [min(a + batch_size, n) for a in starts]
        if drop_last and stops and stops[-1] - starts[-1] < batch_size:
            starts, stops = starts[:-1], stops[:-1]
        if self.data is not None:
            for a, b in zip(starts, stops):
                idx = order[a:b]
                yield idx, self.data[torch.from_numpy(idx)]
            return
        ds = torch.utils.data.Subset(_Encoded(self.stimuli, self.pipeline),
                                     self.positions[order].tolist())
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                             num_workers=self.num_workers,
                                             drop_last=drop_last,
                                             generator=_quiet_generator())
        for (a, b), (x, _) in zip(zip(starts, stops), loader):
            yield order[a:b], x
