"""Machine-readable results: every result Dataset as a group of one netCDF file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._utils import atomic_path

__all__ = ["clean_attrs", "read_results", "write_netcdf", "write_results"]


def _clean_value(v):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if v is None:
        return ""
    if isinstance(v, (str, int, float, np.integer, np.floating)):
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.ndim == 1:
        return v
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return list(v)
    if isinstance(v, (list, tuple)) and v and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return np.asarray(v)
    return json.dumps(v, default=str, sort_keys=True)


def clean_attrs(ds):
    """Copy of ``ds`` whose attrs (dataset, variables, coords) netCDF can store.

    Nested values become JSON strings, booleans ints and None an empty string;
    pandas string / object coordinates become fixed numpy unicode arrays.
    """
    import xarray as xr

    ds = ds.copy(deep=False)
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name or "data")
    ds.attrs = {str(k): _clean_value(v) for k, v in ds.attrs.items()}
    for name in list(ds.variables):
        var = ds.variables[name]
        var.attrs = {str(k): _clean_value(v) for k, v in var.attrs.items()}
        var.encoding = {}
        if var.dtype == object or var.dtype.kind == "O" or str(var.dtype).startswith("string"):
            ds[name] = var.copy(data=np.asarray(var.values).astype(str))
    return ds


def write_netcdf(ds, path: str | os.PathLike) -> Path:
    """Write one Dataset (or DataArray) to ``path`` atomically (h5netcdf engine)."""
    path = Path(path)
    ds = clean_attrs(ds)
    if hasattr(ds, "compute"):
        ds = ds.compute()
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
        tmp.chmod(0o644)
    return path


def write_results(groups: Mapping[str, object], path: str | os.PathLike) -> Path:
    """Write ``{"group/sub": Dataset}`` into one netCDF file, one group each (atomically).

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> ds = xr.Dataset({"accuracy": ("layer", np.array([0.4, 0.6]))},
    ...                 coords={"layer": ["layer3", "avgpool"]})
    >>> write_results({"transfer/expression/net": ds}, "results.nc").name
    'results.nc'
    >>> with xr.open_dataset("results.nc", group="transfer/expression/net") as back:
    ...     back["accuracy"].values.tolist()
    [0.4, 0.6]
    """
    path = Path(path)
    with atomic_path(path, suffix=".nc") as tmp:
        tmp.unlink()
        index = {}
        for group, ds in groups.items():
            ds = clean_attrs(ds)
            if hasattr(ds, "compute"):
                ds = ds.compute()
            ds.to_netcdf(tmp, group=group, mode="a" if tmp.exists() else "w", engine="h5netcdf")
            index[group] = sorted(map(str, ds.data_vars))
        import xarray as xr

        root = xr.Dataset(attrs={"groups": json.dumps(index, sort_keys=True),
                                 "title": "facebrain results"})
        root.to_netcdf(tmp, mode="a" if tmp.exists() else "w", engine="h5netcdf")
        tmp.chmod(0o644)
    return path


def read_results(path: str | os.PathLike) -> dict:
    """Load every group of a ``results.nc`` written by :func:`write_results`."""
    import xarray as xr

    root = xr.open_dataset(path, engine="h5netcdf")
    groups = json.loads(root.attrs["groups"])
    root.close()
    return {g: xr.load_dataset(path, group=g, engine="h5netcdf") for g in groups}
