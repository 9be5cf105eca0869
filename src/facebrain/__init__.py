"""facebrain: face networks, layer by layer, compared with face-selective brain regions.

The public face only; each room (sub-package) holds its own work:

- :mod:`facebrain.stimuli`    StimulusSet, synthetic FACS faces, dataset loaders
- :mod:`facebrain.models`     registry (``create``, ``list_models``), architectures, weights
- :mod:`facebrain.training`   ``fit_classifier``, ``fit_siamese``, evaluation
- :mod:`facebrain.activations` ``extract`` into xarray / zarr
- :mod:`facebrain.transfer`   frozen-backbone probes, CV schemes, disentanglement
- :mod:`facebrain.brain`      BIDS, single-trial betas, ROIs, reliability, ``simulate``
- :mod:`facebrain.rsa`        RDMs, comparisons, bootstraps, noise ceilings
- :mod:`facebrain.encoding`   voxelwise ridge, evaluation, variance partitioning
- :mod:`facebrain.pipeline`   typed configs, cached stages, ``run``
- :mod:`facebrain.report`     the HTML report and ``results.nc``
- :mod:`facebrain.errors`     every exception and warning facebrain raises

``import facebrain`` registers the ``acts.fb`` accessor on ``xarray.Dataset``: at once
when xarray is already imported, else as soon as it is (facebrain imports neither xarray
nor torch nor the rooms itself, so the command line starts fast).
"""

__version__ = "0.1.0"

import importlib as _importlib

from . import errors
from ._lazy import when_imported as _when_imported

_when_imported("xarray", lambda: _importlib.import_module(".activations._accessor", __name__))

# Rooms import torch, nilearn and dask; load them on first use (PEP 562) so that
# `import facebrain` and the command line start fast.
_SUBMODULES = {
    "activations", "brain", "encoding", "models", "pipeline", "report", "rsa", "stimuli",
    "training", "transfer",
}
_ATTRS = {
    "StimulusSet": "stimuli",
    "create": "models",
    "extract": "activations",
    "list_models": "models",
    "run": "pipeline",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    if name in _ATTRS:
        return getattr(_importlib.import_module(f".{_ATTRS[name]}", __name__), name)
    raise AttributeError(f"module 'facebrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_ATTRS))


__all__ = [
    "StimulusSet",
    "__version__",
    "activations",
    "brain",
    "create",
    "encoding",
    "errors",
    "extract",
    "list_models",
    "models",
    "pipeline",
    "report",
    "rsa",
    "run",
    "stimuli",
    "training",
    "transfer",
]
