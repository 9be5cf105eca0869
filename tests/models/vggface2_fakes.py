"""Fakes of the VGGFace2 ResNet-50 weight files, written independently of facebrain.

Used by ``test_vggface2.py`` and ``benchmarks/bench_weights.py``: a Python-2-style
pickle writer (``str``/``bytes`` as BINSTRING, ``numpy.core`` paths, as cPickle
wrote the release's ``resnet50_ft_weight.pkl``), the MatConvNet (``resnet50_ft_dag``)
key names, and a functional forward pass written from that published definition.
"""

from __future__ import annotations

import pickle
import struct

import torch
from torch.nn import functional as F

__all__ = ["Py2Pickler", "dag_forward", "dag_name", "randomise_bn", "torchvision_names",
           "write_release_files"]


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote: str/bytes as BINSTRING, numpy.core paths."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_binstring(self, data: bytes):
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_bytes(self, obj):
        self._save_binstring(obj)
        self.memoize(obj)

    def save_str(self, obj):
        self._save_binstring(obj.encode("latin1"))
        self.memoize(obj)

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def torchvision_names(sd):
    """facebrain ResNet keys -> torchvision / VGGFace2-pickle keys (no BN counters)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        k = k.removeprefix("stages.").removeprefix("conv1.")
        out[k] = v
    return out


_PARTS = {"conv1": "1x1_reduce", "bn1": "1x1_reduce_bn", "conv2": "3x3", "bn2": "3x3_bn",
          "conv3": "1x1_increase", "bn3": "1x1_increase_bn"}


def dag_name(key: str) -> str:
    """torchvision key -> resnet50_ft_dag.pth key (mcnPyTorch names)."""
    p = key.split(".")
    if p[0] == "conv1":
        return f"conv1_7x7_s2.{p[1]}"
    if p[0] == "bn1":
        return f"conv1_7x7_s2_bn.{p[1]}"
    if p[0] == "fc":
        return f"classifier.{p[1]}"
    stage, block = int(p[0][len("layer"):]) + 1, int(p[1]) + 1
    if p[2] == "downsample":
        part, param = ("1x1_proj" if p[3] == "0" else "1x1_proj_bn"), p[4]
    else:
        part, param = _PARTS[p[2]], p[3]
    return f"conv{stage}_{block}_{part}.{param}"


def dag_forward(D, x):
    """Functional forward of the MatConvNet-converted VGGFace2 ResNet-50."""
    def bn(y, p):
        return F.batch_norm(y, D[p + ".running_mean"], D[p + ".running_var"],
                            D[p + ".weight"], D[p + ".bias"], False, 0.0, 1e-5)

    x = F.relu(bn(F.conv2d(x, D["conv1_7x7_s2.weight"], stride=2, padding=3), "conv1_7x7_s2_bn"))
    x = F.max_pool2d(x, 3, 2, 0, ceil_mode=True)
    for stage, n in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        for b in range(1, n + 1):
            p = f"conv{stage}_{b}_"
            s = 2 if (b == 1 and stage > 2) else 1
            y = F.relu(bn(F.conv2d(x, D[p + "1x1_reduce.weight"], stride=s), p + "1x1_reduce_bn"))
            y = F.relu(bn(F.conv2d(y, D[p + "3x3.weight"], padding=1), p + "3x3_bn"))
            y = bn(F.conv2d(y, D[p + "1x1_increase.weight"]), p + "1x1_increase_bn")
            if b == 1:
                x = bn(F.conv2d(x, D[p + "1x1_proj.weight"], stride=s), p + "1x1_proj_bn")
            x = F.relu(x + y)
    x = x.mean((2, 3), keepdim=True)
    return F.conv2d(x, D["classifier.weight"], D["classifier.bias"]).flatten(1)


def randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif ".bn" in name and name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model




def write_release_files(model, folder):
    """Write ``model``'s weights as the three published formats; returns (paths, dag dict)."""
    tv = {k: v.numpy().copy() for k, v in torchvision_names(model.state_dict()).items()}
    paths = {"pkl": folder / "resnet50_ft_weight.pkl", "dag": folder / "resnet50_ft_dag.pth",
             "torch": folder / "resnet50_vggface2_facebrain.pt"}
    with open(paths["pkl"], "wb") as f:
        Py2Pickler(f, protocol=2).dump(tv)
    dag = {dag_name(k): torch.from_numpy(v) for k, v in tv.items()}
    dag["classifier.weight"] = dag["classifier.weight"][:, :, None, None].contiguous()
    torch.save(dag, paths["dag"])
    torch.save(model.state_dict(), paths["torch"])
    return paths, dag
