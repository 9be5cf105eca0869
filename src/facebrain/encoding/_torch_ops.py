"""The ridge GEMMs on a torch device (``device="cuda"``; ``"cpu"`` runs the same code on
the CPU and is what the tests compare against numpy). torch is imported only here."""

from __future__ import annotations

import numpy as np

from .._utils import check_device as _check_torch_device
from ..errors import ParameterError

__all__ = ["check_device", "dual_refit_torch", "fold_sse_torch"]

#: elements of the (n_alphas * n_test) x block prediction tensor held at once on the device
_DEVICE_CHUNK = 50_000_000


def check_device(device):
    """None, or a torch device string that exists here (error names the fix)."""
    if device is None:
        return None
    import torch

    dev = _check_torch_device(device, use="None (numpy), 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} but torch.cuda.is_available() is False; use "
                             "device=None (numpy) or 'cpu'.")
    return str(dev)


def fold_sse_torch(left: np.ndarray, right: np.ndarray, Yt: np.ndarray, n_alphas: int,
                   device: str) -> np.ndarray:
    """``sum_test (Yt - (left @ right)_alpha)^2`` per alpha and target, on ``device``.

    ``left`` (n_alphas * n_test, k) sets the GEMM precision; residuals are squared and
    summed in float64.
    """
    import torch

    dev = torch.device(device)
    dt = torch.float32 if left.dtype == np.float32 else torch.float64
    L = torch.as_tensor(left, device=dev)
    n_test, n_t = Yt.shape
    out = np.empty((n_alphas, n_t))
    chunk = max(1, _DEVICE_CHUNK // max(1, left.shape[0]))
    for a in range(0, n_t, chunk):
        b = min(a + chunk, n_t)
        R = torch.as_tensor(np.ascontiguousarray(right[:, a:b]), device=dev).to(dt)
        P = (L @ R).reshape(n_alphas, n_test, b - a).to(torch.float64)
        P -= torch.as_tensor(np.ascontiguousarray(Yt[:, a:b]), device=dev)[None]
        out[:, a:b] = (P * P).sum(1).cpu().numpy()
        del P, R
    return out


def dual_refit_torch(U: np.ndarray, s: np.ndarray, Yc: np.ndarray, alphas: np.ndarray,
                     device: str) -> np.ndarray:
    """``U diag(1 / (s + alpha_j)) U.T Yc[:, j]`` for every target j, float64 on ``device``."""
    import torch

    dev = torch.device(device)
    Ut = torch.as_tensor(U, device=dev)
    B = Ut.T @ torch.as_tensor(Yc, device=dev)
    B /= torch.as_tensor(s, device=dev)[:, None] + torch.as_tensor(alphas, device=dev)[None, :]
    return (Ut @ B).cpu().numpy()
