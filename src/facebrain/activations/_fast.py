"""Inference copies of a FaceNet's stages: conv-bn fusion and oneDNN convolutions.

Two oneDNN forms, tried in this order for each stage: (1) the conv-bn fused
``torch.fx`` graph with every plain convolution replaced by one oneDNN call that
also applies the ReLU and/or residual addition that follows it
(``torch.ops.mkldnn._convolution_pointwise``, prepacked weights, ordinary
channels-last tensors in and out: no elementwise passes, no layout conversion
for the outputs); (2) the stage on oneDNN tensors (:class:`MkldnnConv2d`).

Imported lazily by ``extract`` (it imports torch). The copies are private: the
model itself is never changed. They are cached per model and rebuilt when the
stage's tensors change.
"""

from __future__ import annotations

import copy
import operator
import weakref

import torch
from torch import nn

__all__ = ["MkldnnConv2d", "PointwiseConv2d", "Stages", "forward", "inference_stages"]

#: model -> {(stage name, fuse_bn): {"key", "fused", "mkldnn"}}; entries die with the model
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: a stage whose oneDNN copy has not been built yet
_UNTRIED = object()

#: a oneDNN stage must equal its plain forward to this fraction of the largest output value
_CHECK_TOL = 1e-4

_NOT_TRACEABLE = (torch.fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError,
                  AttributeError, ValueError)


class MkldnnConv2d(nn.Module):
    """An ``nn.Conv2d`` whose weight is reordered once into oneDNN's blocked layout.

    Takes and returns oneDNN (``x.is_mkldnn``) tensors; computes
    ``torch.mkldnn_convolution`` with the convolution's stride, padding,
    dilation and groups. Inference only (no autograd through the copy).

    Parameters
    ----------
    conv : torch.nn.Conv2d
        A float32 convolution with ``padding_mode="zeros"`` and numeric padding.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), int(conv.groups)
        with torch.no_grad():
            w = conv.weight.detach().to(torch.float32).to_mkldnn()
            # plain attributes, not buffers: Module.to() must not touch oneDNN tensors
            self.weight_mkldnn = torch._C._nn.mkldnn_reorder_conv2d_weight(
                w, self.padding, self.stride, self.dilation, self.groups)
            b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
            self.bias_mkldnn = b.to(torch.float32).contiguous().to_mkldnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mkldnn_convolution(x, self.weight_mkldnn, self.bias_mkldnn, self.padding,
                                        self.stride, self.dilation, self.groups)


class PointwiseConv2d(nn.Module):
    """An ``nn.Conv2d`` on oneDNN, fused with the ReLU and/or addition that follows it.

    Takes and returns ordinary channels-last tensors. ``forward(x)`` is
    ``unary(conv(x))`` and ``forward(x, other)`` is ``unary(conv(x) + other)``.

    The weight is reordered into oneDNN's blocked layout for the input's shape,
    once per kind of input (one image or several, spatial size, threads) and
    kept for the next batches: a layout chosen without the shape can be several
    times slower (3x for ResNet-50's 512-channel 3x3 convolutions at 7x7 on
    AVX2), and one chosen for a batch of one can be slow for larger batches and
    the reverse. At most :attr:`MAX_PACKED` layouts are kept (oldest dropped).

    Parameters
    ----------
    conv : torch.nn.Conv2d
        A float32 convolution with ``padding_mode="zeros"``, numeric padding and groups 1.
    unary : {"none", "relu"}
        Applied last.
    binary : bool
        Whether ``forward`` takes the tensor to add.
    """

    #: weight layouts kept per convolution
    MAX_PACKED = 3

    def __init__(self, conv: nn.Conv2d, unary: str = "none", binary: bool = False) -> None:
        super().__init__()
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), int(conv.groups)
        self.unary, self.binary = unary, binary
        with torch.no_grad():
            # plain attributes, not buffers: Module.to() must not touch oneDNN tensors
            # shares the convolution's storage (the private fused copy): never written
            self.weight = conv.weight.detach().to(torch.float32).contiguous()
            self.bias = (conv.bias.detach().to(torch.float32).clone()
                         if conv.bias is not None else None)
        self._packed: dict[tuple, torch.Tensor] = {}

    def packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The oneDNN weight laid out for inputs like ``x`` (reordered on first use)."""
        key = (x.shape[0] == 1, tuple(x.shape[1:]), torch.get_num_threads())
        w = self._packed.get(key)
        if w is None:
            with torch.no_grad():
                w = torch._C._nn.mkldnn_reorder_conv2d_weight(
                    self.weight.to_mkldnn(), self.padding, self.stride, self.dilation,
                    self.groups, list(x.shape))
            while len(self._packed) >= self.MAX_PACKED:
                self._packed.pop(next(iter(self._packed)))
            self._packed[key] = w
        return w

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        args = (self.packed_weight(x), self.bias, self.padding, self.stride, self.dilation,
                self.groups)
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(x, *args, self.unary, [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, *args, "add", None, None if self.unary == "none" else self.unary, [], "")


class Stages(nn.ModuleDict):
    """The stages to run, in order; ``on_mkldnn`` names those taking oneDNN tensors,
    ``on_pointwise`` those whose convolutions are :class:`PointwiseConv2d`."""

    def __init__(self) -> None:
        super().__init__()
        self.on_mkldnn: set[str] = set()
        self.on_pointwise: set[str] = set()


def _convertible(m: nn.Module) -> bool:
    # exact type only: a subclass may override forward (weight standardisation, ...)
    return (type(m) is nn.Conv2d and m.padding_mode == "zeros"
            and not isinstance(m.padding, str) and m.weight.dtype == torch.float32)


def _to_mkldnn(stage: nn.Module) -> nn.Module | None:
    """A copy of ``stage`` whose plain 2-D convolutions run on oneDNN; None without any."""
    if _convertible(stage):
        return MkldnnConv2d(stage)
    if not any(_convertible(m) for m in stage.modules()):
        return None
    new = copy.deepcopy(stage)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if _convertible(child):
                setattr(parent, name, MkldnnConv2d(child))
            else:
                swap(child)

    swap(new)
    return new


def _is_relu(node, mods) -> bool:
    if node.op == "call_module":
        return type(mods.get(node.target)) is nn.ReLU
    return node.op == "call_function" and node.target in (torch.relu, nn.functional.relu) \
        and len(node.args) == 1 and not node.kwargs.get("inplace", False)


def _to_pointwise(stage: nn.Module) -> nn.Module | None:
    """A copy of the fx graph ``stage`` whose plain convolutions are :class:`PointwiseConv2d`
    (fused with a following ReLU, residual addition, or both); None if none applies."""
    if not isinstance(stage, torch.fx.GraphModule):
        return None
    new = copy.deepcopy(stage)
    mods, graph, count = dict(new.named_modules()), new.graph, 0
    orig = dict(stage.named_modules())  # same names; their weights are shared, not copied
    for node in list(graph.nodes):
        if not (node.op == "call_module" and _convertible(mods[node.target])
                and mods[node.target].groups == 1 and len(node.args) == 1 and not node.kwargs):
            continue
        unary, other, last = "none", None, node
        users = list(node.users)
        if len(users) == 1 and _is_relu(users[0], mods):
            unary, last = "relu", users[0]
        elif (len(users) == 1 and users[0].op == "call_function" and not users[0].kwargs
              and users[0].target in (operator.add, torch.add) and len(users[0].args) == 2):
            a, b = users[0].args
            cand = b if a is node else a
            if isinstance(cand, torch.fx.Node) and cand is not node:
                other, last = cand, users[0]
                after = list(last.users)
                if len(after) == 1 and _is_relu(after[0], mods):
                    unary, last = "relu", after[0]
        name = f"_pointwise_conv{count}"
        count += 1
        new.add_submodule(name, PointwiseConv2d(orig[node.target], unary, other is not None))
        with graph.inserting_after(last):
            fused = graph.call_module(name, (node.args[0],) if other is None
                                      else (node.args[0], other))
        last.replace_all_uses_with(fused)
        fused.args = (node.args[0],) if other is None else (node.args[0], other)
    if not count:
        return None
    graph.eliminate_dead_code()
    new.delete_all_unused_submodules()
    new.recompile()
    return new


def _checked_pointwise(stage: nn.Module, x: torch.Tensor, ref: torch.Tensor) -> nn.Module | None:
    """The :func:`_to_pointwise` copy of ``stage`` if it runs on ``x`` and equals ``ref``."""
    if not (isinstance(x, torch.Tensor) and isinstance(ref, torch.Tensor) and x.ndim == 4
            and ref.is_floating_point() and x.dtype == torch.float32):
        return None
    try:
        pw = _to_pointwise(stage)
        if pw is None:
            return None
        with torch.inference_mode():
            y = pw(x.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError):
        return None  # an operator or argument this oneDNN build lacks: try the other forms
    return pw if _agrees(y, ref) else None


def _agrees(y, ref) -> bool:
    if not isinstance(y, torch.Tensor) or y.shape != ref.shape or y.dtype != ref.dtype:
        return False
    scale = float(ref.abs().max())
    err = float((y - ref).abs().max())
    return err <= _CHECK_TOL * max(scale, 1e-30)  # also refuses NaN


def _checked_mkldnn(stage: nn.Module, x: torch.Tensor, ref: torch.Tensor,
                    follows_mkldnn: bool) -> nn.Module | None:
    """The oneDNN copy of ``stage`` if it runs on ``x`` and equals ``ref``; else None.

    A stage without convolutions runs as it is on oneDNN tensors when it follows
    a oneDNN stage (pooling, ReLU: no conversion back and forth).
    """
    if not (isinstance(x, torch.Tensor) and isinstance(ref, torch.Tensor)
            and ref.is_floating_point() and x.dtype == torch.float32 and x.ndim >= 3):
        return None
    try:
        mk = _to_mkldnn(stage)
        if mk is None and follows_mkldnn:
            mk = stage
        if mk is None:
            return None
        with torch.inference_mode():
            y = mk(x.contiguous().to_mkldnn())
        if not isinstance(y, torch.Tensor):
            return None
        y = y.to_dense() if y.is_mkldnn else y
    except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError):
        return None  # an operator oneDNN tensors lack: the stage runs as it is
    return mk if _agrees(y, ref) else None


def _key(stage: nn.Module) -> tuple:
    # a copy is reused while the stage's tensors are the same, unmodified ones: same
    # storage, same version counter (bumped by in-place ops such as optimiser steps)
    # and same sum (catches edits through ``.data``, which skip the counter; a float32
    # sum: float64 costs ~0.3 s per call on ResNet-50, 1-2% of a 64-image run)
    with torch.no_grad():
        return tuple((t.data_ptr(), t._version, t.device.type,
                      float(t.sum()) if t.is_floating_point() else int(t.sum()))
                     for t in stage.state_dict().values())


def _fuse(stage: nn.Module, fuse_bn: bool) -> nn.Module:
    from torch.fx.experimental.optimization import fuse

    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in stage.modules())
    try:
        if fuse_bn and has_bn:
            return fuse(stage)
        if any(p.ndim == 4 for p in stage.parameters()):
            return copy.deepcopy(stage)  # may be converted to channels-last: keep a copy
        return stage
    except _NOT_TRACEABLE:  # not traceable by torch.fx: run it as it is
        return stage


def inference_stages(model, layers, fuse_bn: bool, *, mkldnn: bool = False,
                     probe: torch.Tensor | None = None) -> Stages | None:
    """Private fast copies of the stages up to the last of ``layers``, or None.

    None when nothing applies: the model overrides ``forward_layers`` (not a
    plain chain of stages), or neither BatchNorm fusion (``fuse_bn`` and a
    BatchNorm present) nor ``mkldnn`` is asked for. ``probe`` (a batch of one
    input) checks each stage's oneDNN copy against the stage's plain forward.
    """
    from ..models import FaceNet

    if type(model).forward_layers is not FaceNet.forward_layers:
        return None
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    fuse_bn = bool(fuse_bn and has_bn)
    if not fuse_bn and not mkldnn:
        return None
    mkldnn = mkldnn and probe is not None and torch.backends.mkldnn.is_available()
    cache = _CACHE.setdefault(model, {})
    names = list(model.stages)
    names = names[:names.index(layers[-1]) + 1]
    entries = {}
    for name in names:
        stage = model.stages[name]
        key = _key(stage)
        entry = cache.get((name, fuse_bn))
        if entry is None or entry["key"] != key:
            entry = {"key": key, "fused": _fuse(stage, fuse_bn), "mkldnn": _UNTRIED,
                     "pointwise": _UNTRIED}
            cache[(name, fuse_bn)] = entry
        entries[name] = entry
    if mkldnn and any(e["pointwise"] is _UNTRIED for e in entries.values()):
        # check the oneDNN copies on the probe, stage by stage, against the plain stages;
        # the tensor-form copy is only built for stages without a fused-call copy
        x, prev = probe, False
        for name in names:
            with torch.inference_mode():
                y = model.stages[name](x)
            entry = entries[name]
            if entry["pointwise"] is _UNTRIED:
                entry["pointwise"] = _checked_pointwise(entry["fused"], x, y)
                entry["mkldnn"] = _UNTRIED
            if entry["pointwise"] is None and entry["mkldnn"] is _UNTRIED:
                entry["mkldnn"] = _checked_mkldnn(entry["fused"], x, y, prev)
            x = y
            prev = entry["pointwise"] is None and entry["mkldnn"] not in (None, _UNTRIED)
    out = Stages()
    for name in names:
        entry = entries[name]
        if mkldnn and entry["pointwise"] is not None:
            out[name] = entry["pointwise"]
            out.on_pointwise.add(name)
        elif mkldnn and entry["mkldnn"] is not None:
            out[name] = entry["mkldnn"]
            out.on_mkldnn.add(name)
        else:
            out[name] = entry["fused"]
    return out


def forward(model, stages: Stages | None, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """``model.forward_layers(x, layers, stop_early=True)``, or the same on ``stages``.

    Outputs are ordinary (strided) tensors whichever stages ran on oneDNN.
    """
    if stages is None:
        return model.forward_layers(x, layers, stop_early=True)
    wanted, out = set(layers), {}
    for name, stage in stages.items():
        if name in stages.on_mkldnn:
            if not x.is_mkldnn:
                x = x.contiguous().to_mkldnn()
        elif x.is_mkldnn:
            x = x.to_dense()
        x = stage(x)
        if name in wanted:
            out[name] = x.to_dense() if x.is_mkldnn else x
            if len(out) == len(wanted):
                break
    return out
