"""Layer activations: ``extract`` (truncated forward, reducers, resumable zarr store).

Importing this package registers the ``acts.fb`` accessor on ``xr.Dataset``.
"""

from ._accessor import FacebrainAccessor
from ._extract import NonFiniteActivationError, extract, state_sha256
from ._leakage import check_pca_leakage
from ._reduce import Reducer, parse_reduce
from ._store import StoreMismatchError

__all__ = [
    "FacebrainAccessor",
    "NonFiniteActivationError",
    "Reducer",
    "StoreMismatchError",
    "check_pca_leakage",
    "extract",
    "parse_reduce",
    "state_sha256",
]
