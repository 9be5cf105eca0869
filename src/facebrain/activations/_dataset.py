"""The Activations Dataset ``extract`` returns: stimulus and unit coordinates,
attrs, the zarr template and chunks of a store, and the in-memory Dataset."""

from __future__ import annotations

import json

import numpy as np

__all__ = ["chunks", "in_memory", "template"]

#: target size of one zarr chunk, in float32 elements (16 MiB)
_CHUNK_ELEMENTS = 1 << 22


def _unit_chunk(n_units: int, batch_size: int) -> int:
    """Units per zarr chunk: a chunk of ``batch_size`` rows stays near 16 MiB."""
    return int(max(1, min(n_units, _CHUNK_ELEMENTS // max(1, batch_size))))


def chunks(plan) -> dict[str, tuple[int, int]]:
    """Zarr chunks ``{layer: (batch_size, units)}``: each batch owns whole chunks."""
    return {ly: (plan.batch_size, _unit_chunk(plan.reducers[ly].n_units, plan.batch_size))
            for ly in plan.layers}


def _stimulus_coords(stimuli) -> dict:
    """``stimulus`` ids and every table column except ``path`` (numbers kept, others str)."""
    coords = {"stimulus": np.asarray(list(map(str, stimuli.ids)), dtype=str)}
    for col in stimuli.table.columns:
        if col == "path":
            continue
        s = stimuli.table[col]
        if s.dtype.kind in "biuf":
            coords[col] = ("stimulus", s.to_numpy())
        else:
            coords[col] = ("stimulus", np.asarray(s.astype(str).to_numpy(), dtype=str))
    return coords


def _coords(stimuli, plan) -> tuple[dict, dict[str, str]]:
    """Stimulus coords, each layer's unit coords (``{layer}_channel/_y/_x``), ``pca_fit``,
    and the unit dim of each layer."""
    coords = _stimulus_coords(stimuli)
    unit_dims = {}
    for ly in plan.layers:
        dim = f"{ly}_unit"
        unit_dims[ly] = dim
        for name, values in plan.reducers[ly].unit_coords().items():
            coords[name] = (dim, np.asarray(values, dtype=np.int64))
    if plan.fit_mask is not None:
        coords["pca_fit"] = ("stimulus", plan.fit_mask)
    return coords, unit_dims


def _fit_attrs(stimuli, fit_mask, fit_desc) -> dict:
    """``pca_fit_on`` (and the fitted identities when only some are) with a PCA; else {}."""
    if fit_mask is None:
        return {}
    out = {"pca_fit_on": fit_desc}
    if "identity" in stimuli.table.columns and not fit_mask.all():
        ident = stimuli.table["identity"].astype(str).to_numpy()[fit_mask]
        out["pca_fit_identities"] = json.dumps(sorted(set(ident)))
    return out


def _set_attrs(ds, model, stimuli, plan) -> None:
    """Per-layer attrs (``shape``, ``reduce``) and the Dataset's provenance attrs."""
    from .. import __version__

    layers, reducers = plan.layers, plan.reducers
    for ly in layers:
        ds[ly].attrs.update({"shape": list(reducers[ly].shape),
                             "reduce": reducers[ly].spec or "none"})
    ds.attrs.update({
        "model": str(getattr(model, "name", type(model).__name__)),
        "weights_sha256": str(getattr(model, "weights_sha256", None) or ""),
        "preprocess": json.dumps(model.preprocess.to_dict()),
        "layer_shapes": json.dumps({ly: list(plan.shapes[ly]) for ly in layers}),
        "reduce": json.dumps({ly: reducers[ly].spec or "none" for ly in layers}),
        "seed": int(plan.seed),
        "facebrain_version": str(__version__),
        "stimulus_set": str(getattr(stimuli, "name", "") or ""),
    })
    ds.attrs.update(_fit_attrs(stimuli, plan.fit_mask, plan.fit_desc))


def template(model, stimuli, plan):
    """The store's skeleton: a lazy all-zero Dataset with every coord and attr."""
    import dask.array as da
    import xarray as xr

    coords, unit_dims = _coords(stimuli, plan)
    layout = chunks(plan)
    data = {
        ly: (("stimulus", unit_dims[ly]),
             da.zeros((plan.n, plan.reducers[ly].n_units), dtype=np.float32,
                      chunks=layout[ly]))
        for ly in plan.layers
    }
    ds = xr.Dataset(data, coords=coords)
    _set_attrs(ds, model, stimuli, plan)
    return ds


def in_memory(out, model, stimuli, plan):
    """The Activations of arrays ``out`` ({layer: (n_stimuli, n_units)}), not copied."""
    import xarray as xr

    coords, unit_dims = _coords(stimuli, plan)
    ds = xr.Dataset({ly: (("stimulus", unit_dims[ly]), out[ly]) for ly in plan.layers},
                    coords=coords)
    _set_attrs(ds, model, stimuli, plan)
    return ds
