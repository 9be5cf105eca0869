"""Image helpers: read any format Pillow decodes, crop, resize, bounding-box crop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._errors import DataFormatError

__all__ = ["bbox_crop", "center_crop", "read_image", "resize_image"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to an RGB ``uint8`` array of shape (H, W, 3).

    Any format Pillow reads (JPEG, PNG, GIF, PGM, BMP...), whatever the file
    extension. Truncated or unreadable files raise :class:`DataFormatError`
    naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFormatError(
            f"cannot decode image {path}: {err}. Re-export it, or remove it from the set."
        ) from err


def _as_hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resize_image(img: np.ndarray, size) -> np.ndarray:
    """Resize to ``size`` (int or (height, width)) with antialiasing (Pillow LANCZOS)."""
    from PIL import Image

    h, w = _as_hw(size)
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.LANCZOS))


def center_crop(img: np.ndarray, size) -> np.ndarray:
    """Crop the central ``size`` region; raises if the image is smaller."""
    h, w = _as_hw(size)
    H, W = img.shape[:2]
    if h > H or w > W:
        raise ValueError(f"cannot center-crop {(h, w)} from an image of shape {(H, W)}")
    top, left = (H - h) // 2, (W - w) // 2
    return img[top : top + h, left : left + w]


def bbox_crop(img: np.ndarray, x: float, y: float, width: float, height: float,
              *, margin: float = 0.0) -> np.ndarray:
    """Crop a bounding box (x, y = top-left, in pixels) grown by ``margin`` x its size.

    The box is clipped to the image; an empty result raises.
    """
    H, W = img.shape[:2]
    x0 = round(x - margin * width)
    y0 = round(y - margin * height)
    x1 = round(x + width * (1 + margin))
    y1 = round(y + height * (1 + margin))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        raise DataFormatError(
            f"bounding box (x={x}, y={y}, w={width}, h={height}) lies outside the image "
            f"of shape {(H, W)}"
        )
    return img[y0:y1, x0:x1]
