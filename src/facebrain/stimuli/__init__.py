"""Face stimuli: StimulusSet, synthetic FACS faces, and loaders for real datasets."""

from ._images import bbox_crop, center_crop, read_image, resize_image
from ._stimulus_set import CANONICAL_EXPRESSIONS, ArraySource, StimulusSet

__all__ = [
    "CANONICAL_EXPRESSIONS",
    "ArraySource",
    "StimulusSet",
    "bbox_crop",
    "center_crop",
    "read_image",
    "resize_image",
]
