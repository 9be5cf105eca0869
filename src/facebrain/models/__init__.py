"""Networks: registry, architectures and safe weight loading."""

from ._base import FaceNet
from ._preprocess import Preprocess
from ._registry import create, list_models, register_model

__all__ = ["FaceNet", "Preprocess", "create", "list_models", "register_model"]
