"""Layer activations: ``extract`` (truncated forward, reducers, resumable zarr store).

The ``acts.fb`` accessor on ``xr.Dataset`` is registered by ``import facebrain``; the
names below load on first use (``import facebrain.activations`` does not import torch).
"""

from typing import TYPE_CHECKING

from .._lazy import attach

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__, __dir__, __all__ = attach(__name__, {
    "._accessor": ["FacebrainAccessor"],
    "._extract": ["extract"],
    "._leakage": ["check_pca_leakage"],
}, deprecated={
    "NonFiniteActivationError": ("..errors", "NonFiniteActivationError",
                                 "use facebrain.errors.NonFiniteActivationError"),
    "Reducer": ("._reduce", "Reducer", _INTERNAL.format("facebrain.activations._reduce")),
    "StoreMismatchError": ("..errors", "StoreMismatchError",
                           "use facebrain.errors.StoreMismatchError"),
    "parse_reduce": ("._reduce", "parse_reduce", _INTERNAL.format("facebrain.activations._reduce")),
    "state_sha256": ("._extract", "state_sha256", _INTERNAL.format("facebrain.activations._extract")),
})

if TYPE_CHECKING:  # eager imports for static analysis
    from ._accessor import FacebrainAccessor
    from ._extract import extract
    from ._leakage import check_pca_leakage
