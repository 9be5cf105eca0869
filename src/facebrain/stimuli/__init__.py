"""Face stimuli: StimulusSet, synthetic FACS faces, and loaders for real datasets."""

from ._align import align_faces
from ._contact_sheet import contact_sheet
from ._duplicates import find_duplicates, handle_duplicates
from ._face_chip import extract_face_chip
from ._fer2013 import load_fer2013
from ._folder import from_table, load_folder
from ._images import bbox_crop, center_crop, read_image, resize_image
from ._kdef import KDEF_VIEWS, load_kdef
from ._lfw import load_lfw, load_lfw_pairs
from ._loader_utils import data_path, read_data_table
from ._stimulus_set import CANONICAL_EXPRESSIONS, ArraySource, StimulusSet
from ._synthetic import (
    SyntheticFaceSource,
    synthetic_faces,
    synthetic_identities,
    synthetic_kdef,
)
from ._synthetic_params import ACTION_UNITS, EXPRESSION_PROTOTYPES
from ._vggface2 import load_vggface2, read_vggface2_bboxes, read_vggface2_meta

__all__ = [
    "ACTION_UNITS",
    "CANONICAL_EXPRESSIONS",
    "EXPRESSION_PROTOTYPES",
    "KDEF_VIEWS",
    "ArraySource",
    "StimulusSet",
    "SyntheticFaceSource",
    "align_faces",
    "bbox_crop",
    "center_crop",
    "contact_sheet",
    "data_path",
    "extract_face_chip",
    "find_duplicates",
    "from_table",
    "handle_duplicates",
    "load_fer2013",
    "load_folder",
    "load_kdef",
    "load_lfw",
    "load_lfw_pairs",
    "load_vggface2",
    "read_data_table",
    "read_image",
    "read_vggface2_bboxes",
    "read_vggface2_meta",
    "resize_image",
    "synthetic_faces",
    "synthetic_identities",
    "synthetic_kdef",
]
