"""Image helpers: read any format Pillow decodes, crop, resize, bounding-box crop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._boundary import public
from ..errors import DataFormatError, MissingFileError, ShapeError

__all__ = ["ALPHA_BACKGROUND", "bbox_crop", "center_crop", "pil_to_rgb", "read_image", "resize_image"]


#: Background that transparent pixels are composited on (RGB, white): a
#: face cut-out with an alpha channel shows on white, as in a browser.
ALPHA_BACKGROUND = (255, 255, 255)


@public
def read_image(path: str | os.PathLike, *,
               background: tuple[int, int, int] = ALPHA_BACKGROUND) -> np.ndarray:
    """Decode an image file to an RGB ``uint8`` array of shape (H, W, 3).

    Any format Pillow reads (JPEG, PNG, GIF, PGM, BMP, TIFF...), whatever the
    file extension. Decoding follows what the pixels mean, not Pillow's bare
    ``convert("RGB")`` (which saturates 16-bit values and zeroes floats):

    * the EXIF orientation tag is applied (a portrait shot from a phone stands up);
    * 16-bit images are scaled by 255 / 65535; 32-bit integer images holding
      16-bit values likewise; float images in [0, 1] are scaled by 255, and
      floats outside [0, 1] are stretched from their min..max to 0..255;
    * an alpha channel (RGBA, LA, or a palette with a transparent colour) is
      composited on ``background`` (default white, :data:`ALPHA_BACKGROUND`);
    * an image larger than Pillow's decompression-bomb limit
      (``PIL.Image.MAX_IMAGE_PIXELS``) is refused.

    Truncated, unreadable or oversized files raise :class:`DataFormatError`
    naming the file.

    Examples
    --------
    >>> img = read_image("face.png")  # doctest: +SKIP
    >>> img.dtype, img.shape[2]       # doctest: +SKIP
    (dtype('uint8'), 3)
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return pil_to_rgb(im, background=background)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataFormatError(
            f"refusing to decode image {path}: decompression bomb ({err}). Check the file; "
            "if it is a genuine huge image, downscale it first."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFormatError(
            f"cannot decode image {path}: {err}. Re-export it, or remove it from the set."
        ) from err


def pil_to_rgb(im, *, background: tuple[int, int, int] = ALPHA_BACKGROUND) -> np.ndarray:
    """A loaded Pillow image as RGB ``uint8`` (H, W, 3); see :func:`read_image` for the rules."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "F" or arr.dtype.kind == "f":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            if lo >= 0.0 and hi <= 1.0:
                arr = arr * 255.0
            elif hi > lo:
                arr = (arr - lo) / (hi - lo) * 255.0
            else:
                arr = np.zeros_like(arr)
        elif mode.startswith("I;16") or (arr.min() >= 0 and arr.max() <= 65535):
            arr = arr * (255.0 / 65535.0)
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in im.info) or (
        mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        im = Image.alpha_composite(base, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def _as_hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


@public
def resize_image(img: np.ndarray, size) -> np.ndarray:
    """Resize to ``size`` (int or (height, width)) with antialiasing (Pillow LANCZOS)."""
    from PIL import Image

    h, w = _as_hw(size)
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.LANCZOS))


@public
def center_crop(img: np.ndarray, size) -> np.ndarray:
    """Crop the central ``size`` region; raises if the image is smaller."""
    h, w = _as_hw(size)
    H, W = img.shape[:2]
    if h > H or w > W:
        raise ShapeError(f"cannot center-crop {(h, w)} from an image of shape {(H, W)}")
    top, left = (H - h) // 2, (W - w) // 2
    return img[top : top + h, left : left + w]


@public
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
