"""Face stimuli: StimulusSet, synthetic FACS faces, and loaders for real datasets."""

from .._lazy import attach
from ._align import align_faces
from ._contact_sheet import contact_sheet
from ._duplicates import find_duplicates, handle_duplicates
from ._face_chip import extract_face_chip
from ._fer2013 import load_fer2013
from ._folder import from_table, load_folder
from ._kdef import KDEF_VIEWS, load_kdef
from ._lfw import load_lfw, load_lfw_pairs
from ._stimulus_set import CANONICAL_EXPRESSIONS, ArraySource, StimulusSet
from ._synthetic import (
    SyntheticFaceSource,
    synthetic_faces,
    synthetic_identities,
    synthetic_kdef,
)
from ._synthetic_params import ACTION_UNITS, EXPRESSION_PROTOTYPES
from ._vggface2 import load_vggface2

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    name: (mod, name, _INTERNAL.format(f"facebrain.stimuli{mod}"))
    for mod, names in {
        "._images": ["bbox_crop", "center_crop", "read_image", "resize_image"],
        "._loader_utils": ["data_path", "read_data_table"],
        "._vggface2": ["read_vggface2_bboxes", "read_vggface2_meta"],
    }.items() for name in names
})[0]

__all__ = [
    "ACTION_UNITS",
    "CANONICAL_EXPRESSIONS",
    "EXPRESSION_PROTOTYPES",
    "KDEF_VIEWS",
    "ArraySource",
    "StimulusSet",
    "SyntheticFaceSource",
    "align_faces",
    "contact_sheet",
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
    "synthetic_faces",
    "synthetic_identities",
    "synthetic_kdef",
]
