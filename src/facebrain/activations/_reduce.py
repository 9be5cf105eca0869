"""Per-layer reducers applied batch by batch during extraction.

A reducer turns one batch of a layer's output, shape ``(n, *shape)``, into a
matrix ``(n, n_units)``. Specs are strings:

``None``
    keep everything, C-order flatten of the per-stimulus output.
``"avgpool"``
    mean over the spatial axes (``(n, C, H, W) -> (n, C)``); 1-D outputs are kept.
``"srp:N"``
    sparse random projection to ``N`` units. The projection matrix is drawn once
    per layer from ``seed`` and the layer name (scikit-learn's
    :class:`~sklearn.random_projection.SparseRandomProjection`, density
    ``1 / sqrt(n_features)``), then applied to every batch, so batching does not
    change the result.
``"pca:N"``
    :class:`~sklearn.decomposition.IncrementalPCA` with ``N`` components. It needs
    two passes over the stimuli: the first streams every batch through
    ``partial_fit``, the second transforms. Memory stays bounded by a batch
    (plus a buffer of at most ``2 N`` rows).
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError

__all__ = ["Reducer", "make_reducer", "parse_reduce"]

_SPEC = re.compile(r"^(srp|pca):(\d+)$")


@public
def parse_reduce(reduce, layers: list[str]) -> dict[str, str | None]:
    """Normalise ``reduce`` (None, a spec string, or a per-layer dict) to ``{layer: spec}``."""
    if reduce is None or isinstance(reduce, str):
        out = {layer: reduce for layer in layers}
    elif isinstance(reduce, dict):
        extra = sorted(set(reduce) - set(layers))
        if extra:
            raise ParameterError(
                f"reduce names layer(s) {extra} that are not being extracted; "
                f"requested layers: {layers}. Remove them or add them to layers=."
            )
        out = {layer: reduce.get(layer) for layer in layers}
    else:
        raise ParameterTypeError(
            f"reduce must be None, a string such as 'avgpool', 'srp:1024' or 'pca:100', "
            f"or a dict layer -> such a string; got {type(reduce).__name__}"
        )
    for layer, spec in out.items():
        if spec is None or spec == "none":
            out[layer] = None
        elif spec != "avgpool" and not _SPEC.match(spec):
            raise ParameterError(
                f"unknown reduce spec {spec!r} for layer {layer!r}; use None, 'avgpool', "
                "'srp:N' or 'pca:N' (N a positive integer)"
            )
        elif _SPEC.match(spec) and int(_SPEC.match(spec).group(2)) < 1:
            raise ParameterError(f"reduce spec {spec!r} for layer {layer!r} needs N >= 1; "
                                 f"use e.g. '{spec.split(':')[0]}:100'")
    return out


#: fitted projections of this process, {(n_components, random_state, n_features): projection}
_SRP_MEMO: dict[tuple[int, int, int], object] = {}
_SRP_MEMO_SIZE = 16


def _fitted_srp(n_components: int, random_state: int, n_features: int):
    """A fitted ``SparseRandomProjection``, drawn once per process for its arguments.

    The matrix depends on nothing else, and drawing it is most of the cost of a
    reducer (seconds for a 64 x 32 x 32 layer); every network of an architecture
    (and its untrained twin) projects a layer with the same matrix, so it is kept
    (the last ``_SRP_MEMO_SIZE``). Transforming never changes a fitted projection.
    """
    key = (int(n_components), int(random_state), int(n_features))
    srp = _SRP_MEMO.pop(key, None)
    if srp is None:
        import warnings

        from sklearn.random_projection import SparseRandomProjection

        srp = SparseRandomProjection(n_components=key[0], dense_output=True,
                                     random_state=key[1])
        # fit only reads n_features; a single zero row is enough
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_components > n_features is allowed
            srp.fit(np.zeros((1, key[2]), np.float32))
    _SRP_MEMO[key] = srp  # most recently used last
    while len(_SRP_MEMO) > _SRP_MEMO_SIZE:
        _SRP_MEMO.pop(next(iter(_SRP_MEMO)))
    return srp


@public
class Reducer:
    """Reduce one layer's batches; see the module docstring for the specs.

    Parameters
    ----------
    spec : str or None
        Reduction spec.
    layer : str
        Layer name (seeds the random projection together with ``seed``).
    shape : tuple of int
        Per-stimulus output shape of the layer, e.g. ``(C, H, W)``.
    seed : int
        Seed of the random projection.
    """

    def __init__(self, spec: str | None, layer: str, shape: tuple[int, ...], seed: int = 0):
        self.spec = spec
        self.layer = layer
        self.shape = tuple(int(s) for s in shape)
        self.seed = int(seed)
        self.n_features = int(np.prod(self.shape))
        self.kind = "none" if spec is None else spec.split(":")[0]
        self.n_components = int(spec.split(":")[1]) if self.kind in ("srp", "pca") else None
        self._srp = None
        self._pca = None
        self._buffer: list[np.ndarray] = []
        self._n_seen = 0
        if self.kind == "srp":
            # a per-layer seed, stable across processes and Python versions
            rs = (self.seed * 1_000_003 + zlib.crc32(layer.encode())) % (2**32)
            self._srp = _fitted_srp(self.n_components, rs, self.n_features)
        elif self.kind == "pca":
            from sklearn.decomposition import IncrementalPCA

            if self.n_components > self.n_features:
                raise ParameterError(
                    f"reduce={spec!r} for layer {layer!r} asks for {self.n_components} "
                    f"components but the layer has only {self.n_features} units; use "
                    f"'pca:{self.n_features}' or fewer"
                )
            self._pca = IncrementalPCA(n_components=self.n_components)

    # ---------------------------------------------------------------- info
    @property
    def needs_fit(self) -> bool:
        """True for reducers that need a first pass over the data (PCA)."""
        return self.kind == "pca"

    @property
    def fitted(self) -> bool:
        return self.kind != "pca" or hasattr(self._pca, "components_")

    @property
    def n_units(self) -> int:
        if self.kind == "none":
            return self.n_features
        if self.kind == "avgpool":
            return self.shape[0]
        return int(self.n_components)

    def unit_coords(self) -> dict[str, np.ndarray]:
        """Coordinates on the unit dim (``{layer}_channel/_y/_x`` where meaningful)."""
        L = self.layer
        if self.kind == "none":
            if len(self.shape) == 3:
                c, y, x = np.unravel_index(np.arange(self.n_features), self.shape)
                return {f"{L}_channel": c, f"{L}_y": y, f"{L}_x": x}
            if len(self.shape) == 1:
                return {f"{L}_channel": np.arange(self.n_features)}
            return {}
        if self.kind == "avgpool":
            return {f"{L}_channel": np.arange(self.shape[0])}
        return {}

    # ----------------------------------------------------------------- fit
    def partial_fit(self, batch: np.ndarray) -> None:
        """Feed one batch ``(n, n_features)`` to the PCA (first pass)."""
        if self.kind != "pca":
            return
        self._buffer.append(np.asarray(batch, np.float64).reshape(len(batch), -1))
        self._n_seen += len(batch)
        n_buf = sum(len(b) for b in self._buffer)
        k = self.n_components
        if n_buf >= 2 * k:
            # keep k rows back so the final partial_fit never has fewer than k rows
            data = np.concatenate(self._buffer)
            self._pca.partial_fit(data[: n_buf - k])
            self._buffer = [data[n_buf - k:]]

    def finish_fit(self) -> None:
        """Flush the PCA buffer at the end of the first pass."""
        if self.kind != "pca" or not self._buffer:
            return
        data = np.concatenate(self._buffer)
        self._buffer = []
        if self._n_seen < self.n_components:
            raise ParameterError(
                f"reduce='pca:{self.n_components}' for layer {self.layer!r} needs at least "
                f"{self.n_components} stimuli; the set has {self._n_seen}. Use fewer components."
            )
        self._pca.partial_fit(data)

    # ----------------------------------------------------------- transform
    def __call__(self, batch, out: np.ndarray | None = None) -> np.ndarray:
        """Reduce a batch (torch tensor or ndarray of shape ``(n, *shape)``) to float32.

        ``out`` (float32, C-contiguous, shape ``(n, n_units)``) receives the result
        when given; unreduced torch batches are then copied into it in one strided
        pass (no intermediate NCHW copy of channels-last outputs).
        """
        if hasattr(batch, "detach"):
            batch = batch.detach()
            if self.kind == "none" and batch.device.type == "cpu":
                import torch

                dst = out if out is not None else np.empty(
                    (batch.shape[0], self.n_features), np.float32)
                torch.from_numpy(dst).view(tuple(batch.shape)).copy_(batch)
                return dst
            if self.kind == "avgpool" and batch.ndim == 4:
                return batch.float().mean(dim=(2, 3)).cpu().numpy().astype(np.float32)
            batch = batch.float().reshape(batch.shape[0], -1).cpu().numpy()
        x = np.asarray(batch)
        n = x.shape[0]
        if self.kind == "avgpool":
            if x.ndim == 4:
                return x.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
            return x.reshape(n, -1).astype(np.float32)
        x = x.reshape(n, -1)
        if self.kind == "none":
            return np.ascontiguousarray(x, dtype=np.float32)
        if self.kind == "srp":
            return np.asarray(self._srp.transform(x.astype(np.float32)), dtype=np.float32)
        if not self.fitted:
            # internal invariant: extract always runs the fit pass before transforming
            raise RuntimeError(
                f"the PCA of layer {self.layer!r} is not fitted; run the first pass "
                "(partial_fit over all batches, then finish_fit) before transforming"
            )
        return self._pca.transform(x.astype(np.float64)).astype(np.float32)

    def state(self) -> dict:
        """JSON-friendly description stored in the Activations attrs."""
        return {"spec": self.spec or "none", "seed": self.seed, "n_units": self.n_units}


def make_reducer(spec, layer, shape, seed=0) -> Reducer:
    """Build a :class:`Reducer` (thin alias kept for readability at call sites)."""
    return Reducer(spec, layer, shape, seed)
