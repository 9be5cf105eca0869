"""Networks: registry, architectures and safe weight loading."""

from .._lazy import attach
from ._base import FaceNet
from ._densenet import DenseNetGray, densenet_gray48
from ._dlib_resnet import DlibResNet, dlib_resnet
from ._facenet import InceptionResnetV1, facenet_vggface2
from ._fer import FER2013_LABELS, FER_TO_CANONICAL, FerMiniXception, fer_minixception
from ._preprocess import Preprocess
from ._registry import create, list_models, register_model
from ._resnet import ResNetFaceNet, resnet18_gray, resnet50
from ._siamese import SiameseNet, siamese_lfw
from ._small import SmallResNet, small_resnet
from ._vggface2 import VGGFace2ResNet50, resnet50_vggface2
from ._weights import load_weights

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    name: (mod, name, _INTERNAL.format(f"facebrain.models{mod}"))
    for mod, names in {
        "._registry": ["find_builder"],
        "._vggface2": ["dag_to_torchvision", "stages_to_torchvision", "torchvision_to_dag"],
        "._weights": ["read_state_dict", "safe_pickle_load"],
    }.items() for name in names
})[0]

__all__ = [
    "FER2013_LABELS",
    "FER_TO_CANONICAL",
    "DenseNetGray",
    "DlibResNet",
    "FaceNet",
    "FerMiniXception",
    "InceptionResnetV1",
    "Preprocess",
    "ResNetFaceNet",
    "SiameseNet",
    "SmallResNet",
    "VGGFace2ResNet50",
    "create",
    "densenet_gray48",
    "dlib_resnet",
    "facenet_vggface2",
    "fer_minixception",
    "list_models",
    "load_weights",
    "register_model",
    "resnet18_gray",
    "resnet50",
    "resnet50_vggface2",
    "siamese_lfw",
    "small_resnet",
]
