"""The ``acts.fb`` accessor on Activations Datasets."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._boundary import public
from ..errors import MissingKeyError

__all__ = ["FacebrainAccessor"]

_CANONICAL = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")


@public
@xr.register_dataset_accessor("fb")
class FacebrainAccessor:
    """facebrain helpers on an Activations ``xr.Dataset`` (``acts.fb``).

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> acts.fb.layers
    ['layer3', 'avgpool']
    >>> acts.fb.matrix("avgpool").shape
    (36, 64)
    >>> codes, cats = acts.fb.labels("expression")
    >>> list(cats), codes[:4].tolist()
    (['neutral', 'happy', 'sad'], [0, 0, 1, 1])
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def layers(self) -> list[str]:
        """Variables shaped ``(stimulus, "{name}_unit")``, in Dataset order."""
        return [
            str(name) for name, v in self._ds.data_vars.items()
            if v.dims == ("stimulus", f"{name}_unit")
        ]

    def _check_layer(self, layer: str) -> xr.DataArray:
        if layer not in self.layers:
            raise MissingKeyError(f"Activations have no layer {layer!r}; available layers: "
                                  f"{self.layers}. Use one of these or extract the layer.")
        return self._ds[layer]

    def matrix(self, layer: str, dtype=np.float64) -> np.ndarray:
        """The layer as an ndarray of shape (n_stimuli, n_units) (computes dask arrays)."""
        return np.asarray(self._check_layer(layer).values, dtype=dtype)

    def labels(self, column: str) -> tuple[np.ndarray, list[str]]:
        """Integer codes and categories of a stimulus coordinate.

        Categories are sorted, except ``expression`` which keeps the canonical
        order (neutral, happy, sad, angry, fearful, disgusted, surprised) first.
        """
        if column not in self._ds.coords or self._ds.coords[column].dims != ("stimulus",):
            stim = [str(c) for c, v in self._ds.coords.items() if v.dims == ("stimulus",)]
            raise MissingKeyError(f"no stimulus label {column!r}; available: {stim}. Use one of "
                                  "these or add the column to the StimulusSet table.")
        values = np.asarray(self._ds.coords[column].values).astype(str)
        cats = sorted(set(values.tolist()))
        if column == "expression":
            canon = [c for c in _CANONICAL if c in cats]
            cats = canon + [c for c in cats if c not in canon]
        lookup = {c: k for k, c in enumerate(cats)}
        return np.array([lookup[v] for v in values], dtype=np.int64), cats

    @property
    def stimulus_ids(self) -> np.ndarray:
        return np.asarray(self._ds["stimulus"].values).astype(str)

    def align(self, stimuli, *, exact: bool = False) -> xr.Dataset:
        """Activations of ``stimuli`` (a StimulusSet or ids), in their order.

        Raises :class:`~facebrain.errors.StimulusMismatchError` naming the ids
        the Activations lack (with ``exact=True``, also ids they have in excess).
        """
        from .._utils import check_same_stimuli
        from ..errors import StimulusMismatchError

        ids = [str(i) for i in (stimuli.ids if hasattr(stimuli, "ids") else stimuli)]
        have = self.stimulus_ids
        if exact:
            check_same_stimuli(have, ids, left_name="the Activations",
                               right_name="the requested stimuli")
        else:
            missing = sorted(set(ids) - set(have.tolist()))
            if missing:
                head = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                raise StimulusMismatchError(
                    f"the Activations lack {len(missing)} of the {len(ids)} requested stimuli: "
                    f"{head}. Extract them (facebrain.extract) or subset the StimulusSet to "
                    "the extracted ids."
                )
        return self._ds.sel(stimulus=ids)
