"""Networks: registry, architectures and safe weight loading."""

from ._base import FaceNet
from ._densenet import DenseNetGray, densenet_gray48
from ._dlib_resnet import DlibResNet, dlib_resnet
from ._facenet import InceptionResnetV1, facenet_vggface2
from ._fer import FER2013_LABELS, FER_TO_CANONICAL, FerMiniXception, fer_minixception
from ._preprocess import Preprocess
from ._registry import create, find_builder, list_models, register_model
from ._resnet import ResNetFaceNet, resnet18_gray, resnet50
from ._siamese import SiameseNet, siamese_lfw
from ._small import SmallResNet, small_resnet
from ._vggface2 import (
    VGGFace2ResNet50,
    dag_to_torchvision,
    resnet50_vggface2,
    stages_to_torchvision,
    torchvision_to_dag,
)
from ._weights import load_weights, read_state_dict, safe_pickle_load

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
    "dag_to_torchvision",
    "densenet_gray48",
    "dlib_resnet",
    "facenet_vggface2",
    "fer_minixception",
    "find_builder",
    "list_models",
    "load_weights",
    "read_state_dict",
    "register_model",
    "resnet18_gray",
    "resnet50",
    "resnet50_vggface2",
    "safe_pickle_load",
    "siamese_lfw",
    "small_resnet",
    "stages_to_torchvision",
    "torchvision_to_dag",
]
