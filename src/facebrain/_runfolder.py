"""Run-folder I/O: the files a pipeline run writes and the report reads.

The pipeline's stages write their results into stage folders; the report (and
``results.nc`` written without a report) reads them back. This module holds
both sides of that contract, so that neither room imports the other's
private helpers (the house's one direction: ``pipeline -> report -> neutral``,
see ``CONTRACTS.md``). It is neutral: it imports no room, only numpy, xarray,
netCDF4, :mod:`facebrain._utils` and :mod:`facebrain.errors`.

Layout of a stage folder (``<out>/<stage>/<key>/``):

- ``extract``: ``{model}.zarr`` (an activation store), ``reference.nc``
  (the reference features, see :data:`REFERENCE`);
- ``train``: ``{model}/metrics.jsonl`` (one JSON object per epoch);
- ``transfer``: ``probe__{direction}__{candidate}.nc`` (attrs ``direction``,
  ``candidate_order``), ``factors__{model}.nc``, ``angles__{model}.nc``;
- ``brain``: ``responses.nc`` (variable ``responses``);
- ``rsa`` / ``encoding``: ``{stage}__{candidate}.nc``, ``{stage}__selection.nc``,
  ``{stage}__contrasts.nc``; ``rsa`` also ``baseline__{candidate}.nc`` (the
  baselines' features on the brain's stimuli).

Every file name comes from :func:`stage_file`; every ``.nc`` file is written by
:func:`write_netcdf` (atomically, attrs made storable) and read by
:func:`read_netcdf`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ._utils import STORE_FINGERPRINT, atomic_path, in_written_order
from .errors import DataFormatError, MissingFileError, ParameterError

__all__ = [
    "METRICS",
    "REFERENCE",
    "RESPONSES",
    "clean_attrs",
    "load_activations",
    "read_metrics",
    "read_netcdf",
    "read_probes",
    "read_responses",
    "read_results",
    "read_scores",
    "stage_file",
    "write_netcdf",
    "write_results",
]

#: name of the pseudo-model holding label and pixel features (reference rows)
REFERENCE = "reference"
#: the brain stage's output (variable ``responses``)
RESPONSES = "responses.nc"
#: per-epoch training metrics inside ``train/<key>/<model>/``
METRICS = "metrics.jsonl"
#: attr of activation stores that only the store itself uses
_STORE_ATTRS = (STORE_FINGERPRINT,)
#: pooled results of an rsa / encoding stage (not candidates)
_POOLED = ("selection", "contrasts")


def stage_file(folder: str | os.PathLike, *parts: str) -> Path:
    """``folder / "part1__part2.nc"``: the name of a stage's netCDF output.

    Examples
    --------
    >>> stage_file("transfer", "probe", "expression", "net").as_posix()
    'transfer/probe__expression__net.nc'
    """
    return Path(folder) / ("__".join(parts) + ".nc")


# ----------------------------------------------------------------- netCDF files
#: xarray engine of every netCDF file facebrain reads; every file it writes goes through
#: :func:`_write_groups`, which is this engine's own data store (``NetCDF4DataStore``)
#: driven directly. netCDF-C (the ``netCDF4`` package) writes and reads a stage file's
#: variables about 6x faster than h5netcdf, which resolves each variable's HDF5 object
#: again on every access (``benchmarks/bench_netcdf.py``); the files are the same
#: netCDF-4/HDF5 either way, and h5netcdf, nc-tools or netCDF4 read them alike.
ENGINE = "netcdf4"


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
    """Write one Dataset (or DataArray) to ``path`` atomically (netCDF-4, see :data:`ENGINE`)."""
    path = Path(path)
    ds = clean_attrs(ds)
    if hasattr(ds, "compute"):
        ds = ds.compute()
    with atomic_path(path, suffix=".nc") as tmp:
        _write_groups(tmp, {}, ds)  # the file ds.to_netcdf(engine=ENGINE) writes, faster
        tmp.chmod(0o644)
    return path


def read_netcdf(path: str | os.PathLike):
    """Load a netCDF file written by :func:`write_netcdf` into memory (file closed)."""
    import xarray as xr

    return xr.load_dataset(path, engine=ENGINE)


def write_results(groups: Mapping[str, object], path: str | os.PathLike) -> Path:
    """Write ``{"group/sub": Dataset}`` into one netCDF file, one group each (atomically).

    Groups may lie inside each other (``"a"`` and ``"a/b"``). The root holds the index of
    the groups (attr ``groups``) that :func:`read_results` reads.

    Raises
    ------
    ParameterError
        A group path names the root (``"/"`` or ``""``).

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
    import xarray as xr

    path = Path(path)
    for group in groups:
        if not str(group).strip("/"):
            raise ParameterError(f"write_results: group {group!r} names the file's root, which "
                                 "holds the index of the groups; give each dataset a group "
                                 "path below it, e.g. 'rsa/net'")
    cleaned = {}
    for group, ds in groups.items():
        ds = clean_attrs(ds)
        if hasattr(ds, "compute"):
            ds = ds.compute()
        cleaned[group] = ds
    index = {group: sorted(map(str, ds.data_vars)) for group, ds in cleaned.items()}
    root = xr.Dataset(attrs={"groups": json.dumps(index, sort_keys=True),
                             "title": "facebrain results"})
    with atomic_path(path, suffix=".nc") as tmp:
        tmp.unlink()
        _write_groups(tmp, cleaned, root)
        tmp.chmod(0o644)
    return path


class _DeferredWrites:
    """xarray's array writer for a data store, with every write held back until asked.

    netCDF-C syncs the whole file's metadata when a write follows a definition, so
    writing each variable as it is defined (xarray's way for numpy values) costs
    O(variables in the file) per variable: quadratic in the file.
    """

    def __init__(self) -> None:
        self.writes: list = []

    def add(self, source, target, region=None) -> None:
        self.writes.append((source, target, region))

    def write(self) -> None:
        for source, target, region in self.writes:
            target[region if region else ...] = source
        self.writes.clear()


def _write_groups(path: Path, groups: Mapping[str, object], root) -> None:
    """Every group (nested paths too), then ``root``, into one new netCDF-4 file opened once.

    Each group goes through xarray's own encoding and data store, as ``Dataset.to_netcdf``
    and ``DataTree.to_netcdf`` write it; only the values wait until every variable of the
    file is defined (:class:`_DeferredWrites`). ``root`` (a dataset, or the index of
    ``results.nc`` as attrs) goes last.
    240 groups of demo stage files (5,838 variables): 4.4 s, against 23.3 s through
    ``DataTree.to_netcdf`` with every variable dask-backed (dask deferred the writes, at
    the cost of its graph handling per array) and more with numpy values (quadratic).
    """
    import netCDF4
    from xarray import conventions
    from xarray.backends import NetCDF4DataStore

    writer = _DeferredWrites()
    nc = netCDF4.Dataset(path, mode="w", format="NETCDF4")
    try:
        for group, ds in [*groups.items(), (None, root)]:
            node = nc if group is None else nc.createGroup(group.strip("/"))
            store = NetCDF4DataStore(node)  # closing it would close the file: not closed
            variables, attrs = conventions.encode_dataset_coordinates(ds)
            store.store(variables, attrs, set(), writer)
        writer.write()
    finally:
        nc.close()


def read_results(path: str | os.PathLike) -> dict:
    """Load every group of a ``results.nc`` written by :func:`write_results`.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    DataFormatError
        ``path`` is not netCDF-4, has no ``groups`` index (a single-group file: use
        :func:`read_netcdf`), or lacks a group its index lists.
    """
    import netCDF4
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (a run writes results.nc into its "
                               "folder at the report stage)")
    # one open file for every group: opening it once per group re-reads the metadata of
    # the whole file each time (~6x slower for the demo's 35 groups)
    try:
        nc = netCDF4.Dataset(path, mode="r")
    except OSError as err:
        raise DataFormatError(f"{path}: not a netCDF-4 file ({err}); expected a results.nc "
                              "written by write_results or `facebrain run`") from err
    with nc:
        if "groups" not in nc.ncattrs():
            raise DataFormatError(
                f"{path}: no 'groups' attribute, so not a results.nc written by write_results; "
                "open a single-group netCDF file with read_netcdf or xarray.open_dataset")
        groups = json.loads(nc.getncattr("groups"))
        out = {}
        for g in groups:
            try:
                node = nc[g]
            except (KeyError, IndexError):
                raise DataFormatError(f"{path}: group {g!r} is listed in the 'groups' attribute "
                                      "but missing from the file (truncated or edited?); "
                                      "rerun the report stage (facebrain run --from report)"
                                      ) from None
            ds = xr.open_dataset(xr.backends.NetCDF4DataStore(node)).load()
            ds.set_close(None)  # closing a group's store would close the whole file
            out[g] = ds
    return out


# ---------------------------------------------------------------- stage outputs
def load_activations(extract_dir: str | os.PathLike, name: str):
    """The Activations of model ``name`` from an extract stage folder (or the reference).

    Opens ``{name}.zarr`` lazily (dask-backed) without the store's private
    variables (``_``-prefixed markers) and attrs; :data:`REFERENCE` is read from
    ``reference.nc``.
    """
    import xarray as xr

    extract_dir = Path(extract_dir)
    if name == REFERENCE:
        return read_netcdf(stage_file(extract_dir, REFERENCE))
    ds = in_written_order(xr.open_zarr(str(extract_dir / f"{name}.zarr"), consolidated=None))
    ds = ds.drop_vars([v for v in ds.data_vars if str(v).startswith("_")])
    for key in _STORE_ATTRS:
        ds.attrs.pop(key, None)
    return ds


def read_metrics(train_dir: str | os.PathLike, model: str) -> list[dict] | None:
    """Per-epoch training metrics of ``model`` (None when it was not trained)."""
    f = Path(train_dir) / model / METRICS
    if not f.is_file():
        return None
    return [json.loads(x) for x in f.read_text().splitlines() if x.strip()]


def read_responses(brain_dir: str | os.PathLike):
    """The brain stage's BrainResponses (an ``xr.DataArray``), or None when absent."""
    f = Path(brain_dir) / RESPONSES
    return read_netcdf(f)["responses"] if f.is_file() else None


def read_probes(transfer_dir: str | os.PathLike, direction: str) -> dict:
    """``{candidate: TransferResult}`` of one direction, in the stage's candidate order."""
    found = []
    for f in Path(transfer_dir).glob(f"probe__{direction}__*.nc"):
        ds = read_netcdf(f)
        if str(ds.attrs.get("direction", direction)) != direction:
            continue  # another direction whose name starts with this one's
        name = f.name[len(f"probe__{direction}__"):-len(".nc")]
        found.append((int(ds.attrs.get("candidate_order", 0)), name, ds))
    return {name: ds for _, name, ds in sorted(found, key=lambda t: (t[0], t[1]))}


def read_scores(folder: str | os.PathLike, stage: str,
                first: Iterable[str] = ()) -> tuple[dict, object, object]:
    """``(results, selection, contrasts)`` of an rsa / encoding stage folder.

    ``results`` maps a candidate to its result Dataset: the names in ``first``
    (in that order, those present), then every other candidate (baselines) in
    file-name order. ``selection`` / ``contrasts`` are the pooled Datasets or None.
    """
    folder = Path(folder)
    results: dict = {}
    for name in first:
        f = stage_file(folder, stage, name)
        if f.is_file():
            results[name] = read_netcdf(f)
    pooled: dict = {}
    for f in sorted(folder.glob(f"{stage}__*.nc")):
        name = f.name[len(stage) + 2:-len(".nc")]
        if name in _POOLED:
            pooled[name] = read_netcdf(f)
        elif name not in results:
            results[name] = read_netcdf(f)
    return results, pooled.get("selection"), pooled.get("contrasts")
