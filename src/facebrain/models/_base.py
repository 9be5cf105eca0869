"""The FaceNet contract every registered network follows.

A FaceNet is an ``nn.Module`` whose trunk is an ordered sequence of named
*stages* (``self.stages``, an ``nn.ModuleDict``); each stage maps the previous
stage's output to its own. ``forward_layers`` runs the stages in order,
collects the requested outputs and stops after the last one requested
(timm's ``forward_intermediates(..., stop_early=True)``). Networks whose
forward pass is not a plain chain override ``forward_layers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .._boundary import public
from ..errors import MissingKeyError, ParameterError, ShapeError
from ._preprocess import Preprocess

__all__ = ["FaceNet", "check_count"]


def check_count(value, name: str, *, minimum: int = 1, where: str = "") -> int:
    """``value`` as an int, or a ParameterError naming ``name`` when it is not an int >= ``minimum``.

    Examples
    --------
    >>> check_count(7, "num_classes")
    7
    >>> check_count(-3, "num_classes", where="small_resnet")
    Traceback (most recent call last):
    ...
    facebrain.errors.ParameterError: small_resnet: num_classes must be an int >= 1; got -3
    """
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{prefix}{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


@public
class FaceNet(nn.Module):
    """Base class of facebrain networks.

    Subclasses fill ``self.stages`` (ordered, names are the public layer
    names) and set ``self.preprocess``. ``forward(x)`` runs every stage.

    Attributes
    ----------
    name : str
        Registry name (set by :func:`facebrain.models.create`).
    preprocess : Preprocess
        What these weights expect as input.
    weights_sha256 : str or None
        SHA-256 of the weight file loaded, None for random initialisation.
    head_prefix : str
        State-dict prefix of the classification head (``"stages.fc."``);
        ``load_weights(..., new_head=True)`` may skip these tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleDict()
        self.name: str = type(self).__name__
        self.preprocess: Preprocess | None = None
        self.weights_sha256: str | None = None
        self.weights_path: str | None = None
        self.weights_format: str | None = None
        self.head_prefix: str = "stages.fc."

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename a published weight layout to this network's keys.

        The base class returns ``state_dict`` unchanged; networks that accept
        other layouts (torchvision, VGGFace2 pickles, facenet-pytorch) override it.
        """
        return state_dict

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Ordered names of the layers ``forward_layers`` can return."""
        return tuple(self.stages.keys())

    def check_layers(self, layers: Iterable[str] | str | None) -> list[str]:
        """Validate layer names; returns them in network order (all if None)."""
        if layers is None:
            return list(self.layer_names)
        if isinstance(layers, str):
            layers = [layers]
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ParameterError(
                f"layers is empty; pass one or more of {list(self.layer_names)} or None for all"
            )
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise MissingKeyError(
                f"{self.name} has no layer(s) {unknown}; available layers: "
                f"{list(self.layer_names)}"
            )
        order = {n: i for i, n in enumerate(self.layer_names)}
        return sorted(layers, key=order.__getitem__)

    def forward_layers(
        self, x: torch.Tensor, layers: Sequence[str] | str | None = None, *,
        stop_early: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Run the network and return ``{layer: output}`` for the requested layers.

        With ``stop_early`` the forward pass ends at the deepest requested layer.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            what = (f"a {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor)
                    else type(x).__name__)
            raise ShapeError(f"{self.name}.forward_layers: x must be a float tensor (N, C, H, W) "
                             f"as self.preprocess makes it; got {what}.")
        wanted = self.check_layers(layers)
        last = wanted[-1]
        wanted_set = set(wanted)
        out: dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in wanted_set:
                out[name] = x
            if stop_early and name == last:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return x

    def describe(self) -> dict:
        """JSON-friendly description used in provenance attrs."""
        return {
            "model": self.name,
            "weights_sha256": self.weights_sha256 or "",
            "weights_path": self.weights_path or "",
            "weights_format": self.weights_format or "",
            "preprocess": self.preprocess.to_dict() if self.preprocess else {},
            "layer_names": list(self.layer_names),
        }
