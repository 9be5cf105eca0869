"""Small helpers shared by every room: atomic writes, hashing, seeds, id joins."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ParameterError, ParameterTypeError, ShapeError, StimulusMismatchError

__all__ = [
    "STORE_FINGERPRINT",
    "atomic_path",
    "available_cpus",
    "check_random_state",
    "check_same_stimuli",
    "environment",
    "file_sha256",
    "in_written_order",
    "shared_stimulus_ids",
    "stable_hash",
]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


#: packages whose versions can change a run's numbers (recorded, not part of stage keys)
ENV_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pandas", "xarray",
                "zarr", "nilearn", "nibabel", "rsatoolbox", "himalaya", "pillow", "numba",
                "keras", "dlib-bin", "dask")


def environment() -> dict:
    """Python, platform, CPU and package versions of this process, for a run's records.

    Stage manifests and ``run.json`` carry it, so that two runs whose numbers differ
    can be traced to a changed environment (a stage's cache key covers its config,
    inputs and code, not the installed packages). Reads package metadata only: it
    imports none of the packages. Absent packages are left out.

    Examples
    --------
    >>> env = environment()
    >>> sorted(env)[:3], "numpy" in env["packages"]
    (['cpu', 'machine', 'packages'], True)
    """
    import platform
    from importlib import metadata

    packages = {}
    for name in ENV_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": _cpu(), "machine": platform.machine(), "packages": packages,
            "platform": platform.platform(), "python": platform.python_version()}


#: SIMD extensions that decide which float kernels oneDNN, MKL/OpenBLAS and numpy run
_SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
         "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
         "asimd", "asimdhp", "sve", "sve2")


def _cpu() -> dict:
    """The CPU model, its logical CPUs (all, and those this process may use) and its SIMD.

    Trained weights and everything after them are bitwise reproducible on one machine, not
    necessarily across machines: the kernels oneDNN and the BLAS pick depend on the SIMD
    extensions (the demo's config gave other accuracies on two VMs, 2026-12-02 and -03,
    with no change to the code that computes them). On Linux the model and flags
    come from ``/proc/cpuinfo``; elsewhere the model is ``platform.processor()`` and the
    flags are left empty.
    """
    import platform

    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features"):  # x86, ARM
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"model": model or platform.processor(), "count": os.cpu_count(),
            "usable": available_cpus(), "simd": [x for x in _SIMD if x in flags]}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def stable_hash(obj, length: int = 16) -> str:
    """Deterministic short hash of a JSON-serialisable object (keys sorted)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Nothing is left at ``path`` if the body raises, so a half-written file is
    never mistaken for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_random_state(seed) -> np.random.Generator:
    """Turn ``seed`` (None, int, or Generator) into a ``numpy.random.Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise ParameterTypeError(f"seed must be None, an int or a numpy Generator; got {seed!r}")


def check_same_stimuli(
    left: Sequence[str], right: Sequence[str], *, left_name: str = "left", right_name: str = "right"
) -> None:
    """Raise :class:`StimulusMismatchError` naming ids missing on either side.

    Order is not checked; callers align with ``.sel(stimulus=...)`` afterwards.
    """
    a, b = set(map(str, left)), set(map(str, right))
    if a == b:
        return
    only_a, only_b = sorted(a - b), sorted(b - a)

    def show(ids):
        head = ", ".join(ids[:5])
        return f"{head}{' ...' if len(ids) > 5 else ''} ({len(ids)} in all)"

    parts = []
    if only_a:
        parts.append(f"in {left_name} but not {right_name}: {show(only_a)}")
    if only_b:
        parts.append(f"in {right_name} but not {left_name}: {show(only_b)}")
    raise StimulusMismatchError(
        "stimulus_id values differ; " + "; ".join(parts)
        + ". Subset both to the same stimuli, or pass align='intersection' where offered."
    )


def shared_stimulus_ids(
    left: Sequence[str], right: Sequence[str], *, align: str = "strict",
    left_name: str = "left", right_name: str = "right",
) -> list[str]:
    """The stimulus ids two labelled objects are compared on, in ``right``'s order.

    ``align="strict"`` requires the same set of ids on both sides (raising
    :class:`StimulusMismatchError` that names the missing ones);
    ``"intersection"`` keeps the ids present on both sides.
    """
    if align not in ("strict", "intersection"):
        raise ParameterError(f"align={align!r}; choose 'strict' or 'intersection'.")
    right = [str(s) for s in right]
    if align == "strict":
        check_same_stimuli(left, right, left_name=left_name, right_name=right_name)
        return right
    shared = set(map(str, left))
    return [s for s in right if s in shared]


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def check_activations(acts, name: str = "acts", where: str = ""):
    """``acts`` if it is Activations (an ``xr.Dataset`` with a ``stimulus`` dim), else an error.

    A ParameterTypeError for another type, a ShapeError for a Dataset without the dim; both
    name the parameter, what was given and where Activations come from.

    Examples
    --------
    >>> import xarray as xr
    >>> check_activations(xr.Dataset({"a": (("x",), [1.0])}), where="probe")
    Traceback (most recent call last):
    ...
    facebrain.errors.ShapeError: probe: acts has no 'stimulus' dim (dims: ['x']); pass ...
    """
    import xarray as xr

    prefix = f"{where}: " if where else ""
    if not isinstance(acts, xr.Dataset):
        raise ParameterTypeError(
            f"{prefix}{name} must be Activations (the xr.Dataset facebrain.extract returns: "
            f"dims 'stimulus' and '<layer>_unit'); got {type(acts).__name__} {_short(acts)}.")
    if "stimulus" not in acts.dims:
        raise ShapeError(
            f"{prefix}{name} has no 'stimulus' dim (dims: {list(map(str, acts.dims))}); pass "
            "Activations from facebrain.extract, or rename the stimulus dim to 'stimulus'.")
    return acts


def check_label(value, name: str, where: str = "") -> str:
    """``value`` if it is a str (a label/column/layer name), else a ParameterTypeError.

    Examples
    --------
    >>> check_label("identity", "target")
    'identity'
    """
    if not isinstance(value, str):
        prefix = f"{where}: " if where else ""
        raise ParameterTypeError(f"{prefix}{name} must be a str (a name); got "
                                 f"{type(value).__name__} {_short(value)}.")
    return value


def check_path_like(value, name: str, where: str = ""):
    """``value`` if it is a str or ``os.PathLike``, else a ParameterTypeError naming ``name``.

    Examples
    --------
    >>> check_path_like(3, "root", where="load_bids")
    Traceback (most recent call last):
    ...
    facebrain.errors.ParameterTypeError: load_bids: root must be a path (str or os.PathLike); got int 3.
    """
    if not isinstance(value, (str, os.PathLike)):
        prefix = f"{where}: " if where else ""
        raise ParameterTypeError(f"{prefix}{name} must be a path (str or os.PathLike); got "
                                 f"{type(value).__name__} {_short(value)}.")
    return value


def check_device(device, name: str = "device", where: str = "",
                 use: str = "'cpu', 'cuda', 'cuda:0' or 'mps'"):
    """``torch.device(device)``, or a ParameterError naming ``name`` (torch says RuntimeError).

    Examples
    --------
    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("gpu", where="extract")
    Traceback (most recent call last):
    ...
    facebrain.errors.ParameterError: extract: device='gpu' is not a torch device; use 'cpu', ...
    """
    import torch

    prefix = f"{where}: " if where else ""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ParameterError(f"{prefix}{name}={device!r} is not a torch device; use {use} "
                             f"({err})") from err


#: attr of an activation store holding the fingerprint it was written with (JSON)
STORE_FINGERPRINT = "facebrain_fingerprint"


def in_written_order(ds):
    """An activation store opened with xarray, its layers in the order ``extract`` wrote them.

    zarr does not promise the order in which it lists a group's arrays (zarr 3.0 and 3.1
    differ), so the order is taken from the store's fingerprint attr (its ``layers``);
    variables the fingerprint does not name keep their place after those it names.

    Examples
    --------
    >>> import json, xarray as xr
    >>> ds = xr.Dataset({"b": ("s", [1]), "a": ("s", [2])},
    ...                 attrs={STORE_FINGERPRINT: json.dumps({"layers": ["a", "b"]})})
    >>> list(in_written_order(ds).data_vars)
    ['a', 'b']
    """
    try:
        layers = json.loads(ds.attrs.get(STORE_FINGERPRINT, "{}")).get("layers") or []
    except (TypeError, ValueError, AttributeError):
        return ds
    names = [str(v) for v in ds.data_vars]
    first = [lyr for lyr in layers if lyr in names]
    order = first + [v for v in names if v not in first]
    return ds if order == names else ds[order]
