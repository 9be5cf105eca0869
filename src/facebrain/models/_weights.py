"""Safe weight loading: format detection by content, restricted unpickling, strict key checks.

Formats read (detected from the file's first bytes, not its suffix):

- ``torch-zip``: ``torch.save`` files (zip archives), read with
  ``torch.load(weights_only=True)``.
- ``torch-legacy``: pre-1.6 ``torch.save`` pickles (they start with torch's magic
  number), also read with ``torch.load(weights_only=True)``.
- ``pickle``: pickled dicts of NumPy arrays such as the VGGFace2 release
  (``resnet50_ft_weight.pkl``; Python-2 pickles are decoded as latin1), read with
  :class:`SafeUnpickler`, which admits only NumPy arrays, dtypes, scalars and
  plain containers. Any other import a pickle asks for is refused before it can
  run; nothing from the file is executed.

The state dict may be wrapped as a training checkpoint (``{"model": ...}``,
``{"state_dict": ...}``, ``{"model_state_dict": ...}``) and keys may carry a
``module.`` prefix (``nn.DataParallel``). The network then renames foreign
layouts to its own (:meth:`FaceNet.convert_state_dict`) before the keys and
shapes are checked.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .._boundary import public
from .._deprecation import user_stacklevel
from .._utils import file_sha256
from ..errors import MissingFileError, WeightsError

__all__ = ["SafeUnpickler", "load_weights", "read_state_dict", "safe_pickle_load"]

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# (module, name) -> object. Only pure data constructors; nothing that touches
# the file system, imports modules or evaluates code.
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # bytes written by Python 3 with protocol <= 2 are rebuilt through _codecs.encode
    ("_codecs", "encode"): __import__("codecs").encode,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,  # protocol-0 pickles rebuild bytes this way
    ("__builtin__", "bytes"): bytes,
}
# numpy 2 moved numpy.core to numpy._core (pickles name either path); numpy 1.x has only core
_np_core = np._core if hasattr(np, "_core") else np.core
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED_GLOBALS[(_mod, "_reconstruct")] = _np_core.multiarray._reconstruct
    _ALLOWED_GLOBALS[(_mod, "scalar")] = _np_core.multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED_GLOBALS[(_mod, "_frombuffer")] = _np_core.numeric._frombuffer
# NumPy >= 1.25 may pickle dtypes through their DType classes
for _name in dir(np.dtypes):
    if _name.endswith("DType"):
        _ALLOWED_GLOBALS[("numpy.dtypes", _name)] = getattr(np.dtypes, _name)

_HEAD_HINT = 5  # how many offending keys an error message shows


class SafeUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that only rebuilds NumPy arrays, scalars and containers.

    ``find_class`` is the only way a pickle can reach code; it admits the few
    NumPy constructors an array needs (``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar``, ...) and
    ``collections.OrderedDict``, and refuses everything else (``os.system``,
    ``builtins.eval``, ``subprocess.Popen``, ...) before it is imported.

    Parameters
    ----------
    file : binary file object
    source : str
        Name shown in error messages (usually the file path).
    """

    def __init__(self, file, *, source: str = "<pickle>", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise WeightsError(
                f"{self.source}: refusing to load this pickle because it asks for "
                f"'{module}.{name}', which is not a NumPy array, scalar or plain container. "
                "A weight pickle never needs it; the file may be malicious. Nothing in it "
                "was run. Only load weight files from sources you trust, or convert them "
                "to a torch state dict."
            ) from None

    def persistent_load(self, pid):
        raise WeightsError(
            f"{self.source}: the pickle uses persistent ids ({str(pid)[:40]!r}); it is not a "
            "plain NumPy weight pickle. If it was written by torch.save, keep its .pt/.pth "
            "zip form."
        )


@public
def safe_pickle_load(path: str | os.PathLike, *, encoding: str = "latin1"):
    """Unpickle ``path`` with :class:`SafeUnpickler` (NumPy data only).

    Examples
    --------
    >>> import tempfile, pickle, numpy as np
    >>> f = tempfile.NamedTemporaryFile(suffix=".pkl", delete=False)
    >>> pickle.dump({"w": np.ones(2)}, f); f.close()
    >>> safe_pickle_load(f.name)["w"]
    array([1., 1.])
    """
    with open(path, "rb") as f:
        return _safe_pickle_read(f, str(path), encoding)


def _safe_pickle_read(f, source: str, encoding: str = "latin1"):
    try:
        return SafeUnpickler(f, source=source, encoding=encoding).load()
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise WeightsError(
            f"{source}: could not read this pickle ({type(exc).__name__}: {exc}). The file is "
            "truncated or not a weight file; download it again and check its sha256."
        ) from exc


_MAGICS = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\x89HDF": "an HDF5 file (Keras .h5 weights are not supported; convert to torch)",
    b"\x1f\x8b": "a gzip archive (unpack it first)",
    b"<": "an HTML/XML page (a failed download?)",
    b"{": "a JSON/text file",
    b"\x93NUMPY": "a single .npy array, not a dict of named weights",
}


def _sniff(path: Path) -> str:
    """Return 'torch-zip', 'pickle' (possibly torch-legacy) or raise naming what it is."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise WeightsError(f"{path}: the file is empty; download it again.")
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    for magic, what in _MAGICS.items():
        if head.startswith(magic):
            raise WeightsError(f"{path}: this is {what}, not a weight file. Pass the path of "
                               "a .pt/.pth torch state dict or a .pkl NumPy weight pickle.")
    if head[:1] in (b"(", b"}", b"c", b"]"):  # protocol 0/1 pickles
        return "pickle"
    raise WeightsError(
        f"{path}: unrecognised file format (first bytes {head[:8]!r}); expected a torch "
        "state dict (.pt/.pth, zip) or a NumPy weight pickle (.pkl)."
    )


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: torch.load(weights_only=True) refused this file: {str(exc)[:400]}. "
            "It holds objects other than tensors and plain containers (a pickled model or "
            "code). Save the model's state_dict() instead."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(
            f"{path}: torch could not read this file ({type(exc).__name__}: "
            f"{str(exc)[:300]}). It is truncated or corrupt; download it again and check "
            "its sha256."
        ) from exc


@public
def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Read a weight file into a flat ``{name: tensor}`` dict, safely.

    Parameters
    ----------
    path : str or path-like
        A torch file (zip or legacy; ``weights_only=True``) or a NumPy weight pickle.

    Returns
    -------
    state_dict : dict of str to Tensor
        Unwrapped from ``{"model": ...}`` / ``{"state_dict": ...}`` checkpoints,
        ``module.`` prefixes removed, NumPy arrays turned into tensors.
    fmt : str
        ``"torch-zip"``, ``"torch-legacy"`` or ``"pickle"``.

    Raises
    ------
    WeightsError
        Unreadable, truncated, non-weight or unsafe files.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weight file {str(path)!r} does not exist; check the path.")
    fmt = _sniff(path)
    if fmt == "torch-zip":
        obj = _torch_load(path)
    else:
        with open(path, "rb") as f:
            first = _safe_pickle_read(f, str(path))
        if isinstance(first, int) and first == _TORCH_LEGACY_MAGIC:
            fmt = "torch-legacy"
            obj = _torch_load(path)
        else:
            obj = first
    return _to_tensor_dict(_unwrap(obj, path), path), fmt


_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net", "weights")


def _unwrap(obj, path: Path) -> Mapping:
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"{path}: expected a dict of named weights, found a {type(obj).__name__}. "
            "Save model.state_dict(), not the model or a single tensor."
        )
    for _ in range(3):  # nested wrappers such as {"model": {"state_dict": ...}}
        values_are_weights = obj and all(
            isinstance(v, (torch.Tensor, np.ndarray, np.generic)) for v in obj.values()
        )
        if values_are_weights:
            break
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        else:
            break
    if not obj:
        raise WeightsError(f"{path}: the file holds no weights (an empty dict).")
    return obj


def _to_tensor_dict(sd: Mapping, path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    bad = []
    for key, value in sd.items():
        key = str(key)
        if isinstance(value, torch.Tensor):
            tensor = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            tensor = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, np.generic) and np.asarray(value).dtype.kind in "fiub":
            tensor = torch.as_tensor(np.asarray(value))
        else:
            bad.append(f"{key} ({type(value).__name__})")
            continue
        out[key] = tensor
    if bad:
        raise WeightsError(
            f"{path}: {len(bad)} entries are not numeric arrays: {', '.join(bad[:_HEAD_HINT])}"
            f"{' ...' if len(bad) > _HEAD_HINT else ''}. Expected a flat dict of weight arrays "
            "(a state dict, possibly inside {'model': ...} or {'state_dict': ...})."
        )
    if out and all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out


def _state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _show(items: list[str]) -> str:
    head = ", ".join(items[:_HEAD_HINT])
    return f"{head}{', ...' if len(items) > _HEAD_HINT else ''}"


@public
def load_weights(
    model: torch.nn.Module,
    path: str | os.PathLike | Mapping,
    *,
    sha256: str | None = None,
    strict: bool = True,
    new_head: bool = False,
) -> torch.nn.Module:
    """Load a weight file into ``model`` after checking its integrity, keys and shapes.

    Parameters
    ----------
    model : FaceNet
        A network from :func:`facebrain.models.create`. Its
        ``convert_state_dict`` renames published layouts (torchvision, the
        VGGFace2 pickle, MatConvNet ``*_dag.pth``, facenet-pytorch) to its own.
    path : str or path-like
        ``.pt``/``.pth`` (read with ``torch.load(weights_only=True)``) or ``.pkl``
        (restricted unpickler: NumPy arrays and containers only). The format is
        detected from the content. Training checkpoints (``{"model": state_dict,
        ...}``) and ``{"state_dict": ...}`` with ``module.`` prefixes are accepted.
        Networks with a ``read_weight_file(path)`` method read their own published
        formats first (dlib ``.dat``, Keras ``.hdf5``). A mapping of names to
        tensors/arrays (a state dict in memory) is accepted too; its
        ``weights_sha256`` is the SHA-256 of its sorted names and raw bytes.
    sha256 : str, optional
        Expected hex SHA-256 of the file; a mismatch raises before anything is read.
    strict : bool, default True
        Missing keys, unexpected keys and shape mismatches raise :class:`WeightsError`
        listing the first few of each with counts. ``strict=False`` loads every
        tensor whose name and shape match and warns about the rest.
    new_head : bool, default False
        Allow the classification head (``model.head_prefix``, e.g. ``stages.fc.``)
        to differ from the file's: head tensors whose shape differs (another
        ``num_classes``) or that are absent on either side are skipped, and the
        model's head keeps its random initialisation (a warning says so). Use it to
        fine-tune a pretrained trunk with a new classifier.

    Returns
    -------
    model : nn.Module
        The same module, with ``weights_sha256``, ``weights_path`` (absolute) and
        ``weights_format`` set.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    WeightsError
        Checksum mismatch, unreadable/unsafe file, or keys/shapes that do not match.

    Examples
    --------
    >>> import tempfile, torch
    >>> from facebrain.models import create, load_weights
    >>> net = create("siamese_lfw", width=8, hidden=32, embedding_dim=16, input_size=72)
    >>> f = tempfile.NamedTemporaryFile(suffix=".pt", delete=False); f.close()
    >>> torch.save({"model": net.state_dict(), "epoch": 3}, f.name)
    >>> _ = load_weights(create("siamese_lfw", width=8, hidden=32, embedding_dim=16,
    ...                         input_size=72), f.name)
    """
    from_file = not isinstance(path, Mapping)
    if not from_file:
        state = _to_tensor_dict(_unwrap(path, Path("<state dict>")), Path("<state dict>"))
        digest, fmt, path = _state_sha256(state), "state-dict", Path("<state dict>")
    else:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"weight file {str(path)!r} does not exist; check the path.")
        digest = file_sha256(path)
    if sha256 is not None and digest.lower() != str(sha256).strip().lower():
        raise WeightsError(
            f"{path}: sha256 mismatch: the file has {digest}, expected {sha256}. The file is "
            "corrupt, truncated or a different release; download it again."
        )
    if from_file:
        reader = getattr(model, "read_weight_file", None)
        own_format = reader(path) if reader is not None else None
        state, fmt = own_format if own_format is not None else read_state_dict(path)
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        try:
            state = convert(state)
        except WeightsError as exc:
            raise WeightsError(f"{path}: {exc}") from exc
    own = model.state_dict()
    head_prefix = getattr(model, "head_prefix", None) or "\0"
    model_name = getattr(model, "name", type(model).__name__)

    def optional(key: str) -> bool:  # very old files lack BatchNorm's counter
        return key.endswith("num_batches_tracked")

    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]

    skipped_head: list[str] = []
    if new_head:
        for lst in (missing, unexpected, mismatched):
            skipped_head += [k for k in lst if k.startswith(head_prefix)]
            lst[:] = [k for k in lst if not k.startswith(head_prefix)]

    if strict and (missing or unexpected or mismatched):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_show(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_show(unexpected)})")
        if mismatched:
            shown = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                     for k in mismatched]
            parts.append(f"{len(mismatched)} shape mismatches ({_show(shown)})")
        only_head = all(k.startswith(head_prefix) for k in missing + unexpected + mismatched)
        hint = (
            " Only the classification head differs: pass new_head=True to keep a randomly "
            "initialised head of the requested num_classes."
            if only_head else
            " The file is probably for another architecture; check the model name, or pass "
            "strict=False to load only the tensors whose names and shapes match."
        )
        raise WeightsError(
            f"{path} does not fit model {model_name!r} ({fmt} format): " + "; ".join(parts)
            + "." + hint
        )
    if not strict and (missing or unexpected or mismatched):
        warnings.warn(
            f"{path}: partial load into {model_name!r}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(mismatched)} shape-mismatched tensors left "
            f"out (e.g. {_show((missing + unexpected + mismatched)[:3])}).",
            stacklevel=user_stacklevel(),
        )
    if skipped_head:
        warnings.warn(
            f"{path}: new_head=True: {len(skipped_head)} head tensors not loaded "
            f"({_show(skipped_head)}); the head of {model_name!r} keeps its random "
            "initialisation and must be trained.",
            stacklevel=user_stacklevel(),
        )
    drop = set(unexpected) | set(mismatched) | set(skipped_head)
    to_load = {k: v for k, v in state.items() if k not in drop and k in own}
    with torch.no_grad():
        for key, value in to_load.items():
            own[key].copy_(value.to(own[key].dtype))
    model.weights_sha256 = digest
    model.weights_path = os.path.abspath(path) if from_file else ""
    model.weights_format = fmt
    return model

