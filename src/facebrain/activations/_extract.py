"""``extract``: layer activations of a FaceNet for every stimulus of a StimulusSet."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import warnings
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from .._boundary import public
from .._utils import stable_hash
from ..errors import NonFiniteActivationError
from ._reduce import Reducer, parse_reduce
from ._store import ActivationStore

__all__ = ["NonFiniteActivationError", "extract"]

#: target size of one zarr chunk, in float32 elements (16 MiB)
_CHUNK_ELEMENTS = 1 << 22

#: model -> {(layers, input shape, dtype, device, state key): layer shapes}
_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@public
def extract(
    model,
    stimuli,
    layers: Sequence[str] | str | None = None,
    *,
    reduce: str | dict | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    store: str | os.PathLike | None = None,
    resume: bool = True,
    num_workers: int = 0,
    client=None,
    progress: bool = True,
    seed: int = 0,
    channels_last: bool | None = None,
    fuse_bn: bool = True,
    pca_fit_on: str | Sequence[str] | None = None,
    mkldnn: bool | None = None,
):
    """Compute layer activations of ``model`` for every image of ``stimuli``.

    The forward pass stops at the deepest requested layer and runs under
    ``torch.inference_mode()``. Images are decoded by a ``DataLoader``
    (``num_workers`` processes), so decoding overlaps compute.

    Parameters
    ----------
    model : FaceNet
        A network following the FaceNet contract (``stages``, ``preprocess``,
        ``forward_layers``). It is put in eval mode.
    stimuli : StimulusSet
        The images; the table columns (except ``path``) become stimulus coords.
    layers : str or list of str, optional
        Layer names (``model.layer_names``); all layers if None.
    reduce : None, str or dict
        ``None`` (keep ``C x H x W``), ``"avgpool"``, ``"srp:N"`` (seeded sparse
        random projection) or ``"pca:N"`` (incremental PCA, two passes over the
        stimuli: fit, then transform); a dict ``{layer: spec}`` for per-layer choices.
    batch_size : int
        Images per forward pass; also the chunk size of the store along ``stimulus``.
    device : str
        torch device.
    store : path, optional
        A zarr directory. Batches are written as they are computed, each followed
        by a completion marker; the returned Dataset opens the store lazily (dask).
        Without a store everything stays in memory.
    resume : bool
        With an existing store written by the same model, weights, layers,
        reducers, batch size and stimuli, compute only the batches without a
        completion marker. A store from a different run is refused (the message
        says which field differs). ``resume=False`` overwrites the store.
    num_workers : int
        DataLoader worker processes for decoding.
    client : dask.distributed.Client, optional
        Split the batches into contiguous chunks computed on the cluster's
        workers (written to the same store when given). The batches are the same
        as in a local run, so values are identical. A ``pca:N`` reducer is fitted
        in this process first.
    progress : bool
        Show a tqdm progress bar.
    seed : int
        Seed of ``srp:N`` projections.
    channels_last : bool, optional
        Run convolutions in channels-last memory format; None picks it for
        CPU networks with 2-D convolutions (faster in ``bench_extract.py``).
        The model's memory format is restored afterwards.
    fuse_bn : bool
        Fold eval-mode BatchNorm into the preceding convolution (``torch.fx``
        conv-bn fusion) in a private copy of the stages that are run; the
        model itself is not changed. Applies to plain-chain FaceNets (those
        that keep ``FaceNet.forward_layers``); values change by ~1e-6 relative.
        The fused copy is cached per model and rebuilt when its weights change.
    pca_fit_on : str or list of str, optional
        Fit ``pca:N`` reducers on this subset only: a query on the stimulus table
        (``"split == 'pca'"``) or stimulus ids. The Activations get a boolean
        stimulus coordinate ``pca_fit`` (True for the stimuli inside the fit; all
        True without ``pca_fit_on``) and the attr ``pca_fit_on``. Cross-validated
        analyses (``transfer.probe``, ``encoding.evaluate``) refuse PCA-reduced
        layers on stimuli inside the fit (their test folds would have shaped the
        projection), so analyse the stimuli outside it.
    mkldnn : bool, optional
        Run the 2-D convolutions of the stages on oneDNN (MKL-DNN) with weights
        reordered once into oneDNN's blocked layout; None picks it on CPU when
        oneDNN is available and no ``client`` is given. With ``fuse_bn``, each
        convolution of a traced stage becomes one oneDNN call that also applies
        the ReLU and/or residual addition after it (channels-last tensors in and
        out); other stages run on oneDNN tensors. Applies to plain-chain
        FaceNets with float32 weights; each stage is checked once against its
        plain forward on the first stimulus (1e-4 of the output's largest
        value) and runs as it is when it fails or uses an operator oneDNN
        lacks. Values change by ~1e-6 relative.

    Returns
    -------
    acts : xarray.Dataset
        One variable per layer, dims ``("stimulus", "{layer}_unit")``, float32.

    Raises
    ------
    KeyError
        A layer name the model lacks (the message lists the available ones).
    NonFiniteActivationError
        A layer produced NaN/inf values (the message names the layer and count).
    StoreMismatchError
        ``store`` exists and was written by a different run.

    Examples
    --------
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> model = create("small_resnet", width=8)
    >>> acts = extract(model, faces, ["layer3", "avgpool"], reduce={"layer3": "srp:32"},
    ...                progress=False)
    >>> acts.fb.matrix("layer3").shape, acts.fb.matrix("avgpool").shape
    ((36, 32), (36, 64))
    """
    import torch

    _check_inputs(model, stimuli, batch_size)
    layers = model.check_layers(layers)
    specs = parse_reduce(reduce, layers)
    device = torch.device(device)
    model.eval()
    model.to(device)
    if channels_last is None:
        channels_last = device.type == "cpu" and any(
            isinstance(m, torch.nn.Conv2d) for m in model.modules()
        )
    n = len(stimuli)
    shapes = _layer_shapes(model, stimuli, layers, device)
    reducers = {ly: Reducer(specs[ly], ly, shapes[ly], seed) for ly in layers}
    fit_mask, fit_desc = _pca_fit_mask(stimuli, specs, pca_fit_on)
    batches = [(k, s, min(s + batch_size, n)) for k, s in enumerate(range(0, n, batch_size))]
    fingerprint = None if store is None else {
        "model": getattr(model, "name", type(model).__name__),
        "weights_sha256": getattr(model, "weights_sha256", None) or "",
        "state_sha256": state_sha256(model),
        "layers": layers,
        "reduce": {ly: specs[ly] or "none" for ly in layers},
        "seed": int(seed),
        "batch_size": int(batch_size),
        "n_stimuli": n,
        "stimulus_ids": stable_hash(list(map(str, stimuli.ids))),
        "pca_fit_on": fit_desc,
        "preprocess": model.preprocess.to_dict() if model.preprocess is not None else {},
    }
    run = {"layers": layers, "device": str(device), "num_workers": num_workers,
           "channels_last": channels_last}
    if mkldnn is None:
        mkldnn = (device.type == "cpu" and client is None
                  and torch.backends.mkldnn.is_available())
    from ._fast import inference_stages

    mkldnn = bool(mkldnn) and client is None and device.type == "cpu"
    stages = inference_stages(model, layers, fuse_bn, mkldnn=mkldnn,
                              probe=_probe(model, stimuli, device) if mkldnn else None)
    convert_model = channels_last and stages is None
    old_format = _memory_format(model)
    if stages is not None and channels_last:
        for name, stage in stages.items():
            if name not in stages.on_mkldnn:
                stage.to(memory_format=torch.channels_last)
    run["stages"] = stages
    try:
        if convert_model:
            model.to(memory_format=torch.channels_last)
        coords, unit_dims = _coords(stimuli, layers, reducers)
        if fit_mask is not None:
            coords["pca_fit"] = ("stimulus", fit_mask)
        st, todo = None, batches
        if store is not None:
            st = ActivationStore(store)
            if st.exists() and not resume:
                st.remove()
            if st.exists() and st.read_fingerprint() is not None and not st.is_complete():
                # creation was cut short (full disk, kill): no batch is done, start it afresh
                warnings.warn(f"{store}: the store was only partly created (interrupted); "
                              "creating it again", RuntimeWarning, stacklevel=2)
                st.remove()
            if st.exists():
                st.check_resumable(fingerprint, list(map(str, stimuli.ids)))
                done = st.done_batches()
            else:
                template = _template(coords, unit_dims, reducers, layers, n, batch_size)
                _set_attrs(template, model, stimuli, layers, shapes, reducers, seed)
                template.attrs.update(_fit_attrs(stimuli, fit_mask, fit_desc))
                chunks = {ly: (batch_size, _unit_chunk(reducers[ly].n_units, batch_size))
                          for ly in layers}
                st.create(template, fingerprint, chunks, len(batches))
                done = set()
            todo = [b for b in batches if b[0] not in done]
        # ---- first pass (only with pca:N): fit the PCA over the whole set; it is
        # deterministic, so a resumed run refits exactly the same projection
        to_fit = [ly for ly in layers if reducers[ly].needs_fit] if todo else []
        if to_fit:
            fit_run = dict(run, layers=to_fit)

            def fit_sink(k, start, arrays):
                for ly in to_fit:
                    rows = fit_mask[start:start + len(arrays[ly])]
                    reducers[ly].partial_fit(arrays[ly][rows])

            fit_batches = [b for b in batches if fit_mask[b[1]:b[2]].any()]
            _run_batches(model, stimuli, {ly: Reducer(None, ly, shapes[ly]) for ly in to_fit},
                         fit_batches, sink=fit_sink, progress=progress,
                         desc="extract (PCA fit pass)", **fit_run)
            for ly in to_fit:
                reducers[ly].finish_fit()
        # ---- second pass: compute and write
        if st is not None:
            if client is not None:
                _run_distributed(client, model, stimuli, reducers, todo, store=st,
                                 progress=progress, **run)
            else:
                _run_batches(model, stimuli, reducers, todo, sink=_StoreSink(st),
                             progress=progress, desc="extract", **run)
            st.finalize()
            return st.open()
        out = {ly: np.empty((n, reducers[ly].n_units), np.float32) for ly in layers}

        def mem_sink(k, start, arrays):
            for ly, v in arrays.items():
                dst = out[ly][start:start + len(v)]
                if not np.may_share_memory(dst, v):
                    dst[...] = v

        if client is not None:
            _run_distributed(client, model, stimuli, reducers, batches, store=None,
                             progress=progress, sink=mem_sink, **run)
        else:
            _run_batches(model, stimuli, reducers, batches, sink=mem_sink, progress=progress,
                         desc="extract", out=out, **run)
        ds = _in_memory(out, coords, unit_dims, model, stimuli, layers, shapes, reducers, seed)
        ds.attrs.update(_fit_attrs(stimuli, fit_mask, fit_desc))
        return ds
    finally:
        if convert_model:
            model.to(memory_format=old_format)


# --------------------------------------------------------------------- helpers
def _fit_attrs(stimuli, fit_mask, fit_desc) -> dict:
    if fit_mask is None:
        return {}
    out = {"pca_fit_on": fit_desc}
    if "identity" in stimuli.table.columns and not fit_mask.all():
        ident = stimuli.table["identity"].astype(str).to_numpy()[fit_mask]
        out["pca_fit_identities"] = json.dumps(sorted(set(ident)))
    return out


def _pca_fit_mask(stimuli, specs, pca_fit_on):
    """Which stimuli the ``pca:N`` reducers are fitted on (None without PCA) and a description."""
    has_pca = any(s is not None and s.startswith("pca:") for s in specs.values())
    if not has_pca:
        if pca_fit_on is not None:
            raise ValueError(
                f"pca_fit_on={pca_fit_on!r} was given but no layer is reduced with 'pca:N' "
                f"(reduce: {specs}); drop pca_fit_on or use reduce='pca:N'.")
        return None, ""
    n = len(stimuli)
    if pca_fit_on is None:
        return np.ones(n, dtype=bool), "all stimuli"
    if isinstance(pca_fit_on, str):
        fit_ids = set(map(str, stimuli.subset(pca_fit_on).ids))
        desc = f"query: {pca_fit_on}"
    else:
        wanted = [str(i) for i in pca_fit_on]
        have = set(map(str, stimuli.ids))
        missing = [i for i in wanted if i not in have]
        if missing:
            raise KeyError(f"pca_fit_on names {len(missing)} stimulus ids that are not in the "
                           f"StimulusSet, e.g. {missing[:5]}; give ids of these stimuli.")
        fit_ids = set(wanted)
        desc = f"{len(fit_ids)} stimulus ids (sha256 {stable_hash(sorted(fit_ids))})"
    mask = np.array([str(i) in fit_ids for i in stimuli.ids], dtype=bool)
    if not mask.any():
        raise ValueError(f"pca_fit_on={pca_fit_on!r} selects no stimulus; the PCA needs some.")
    return mask, desc


def _check_inputs(model, stimuli, batch_size) -> None:
    for attr in ("forward_layers", "check_layers", "preprocess"):
        if not hasattr(model, attr):
            raise TypeError(
                f"model must follow the FaceNet contract (facebrain.models); "
                f"{type(model).__name__} has no {attr!r}"
            )
    if model.preprocess is None:
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no preprocess; set "
            "model.preprocess to a facebrain.models.Preprocess describing its input"
        )
    if not (hasattr(stimuli, "table") and hasattr(stimuli, "to_torch")):
        raise TypeError(f"stimuli must be a StimulusSet; got {type(stimuli).__name__}")
    if len(stimuli) == 0:
        raise ValueError("stimuli is empty; nothing to extract")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


def _memory_format(model):
    import torch

    for p in model.parameters():
        if p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) \
                and not p.is_contiguous():
            return torch.channels_last
    return torch.contiguous_format


@public
def state_sha256(model) -> str:
    """SHA-256 of a model's parameters and buffers (names, shapes and bytes)."""
    import torch

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _probe(model, stimuli, device):
    """The first stimulus, preprocessed, as a batch of one on ``device``."""
    return model.preprocess(stimuli.load(0))[None].to(device)


def _layer_shapes(model, stimuli, layers, device) -> dict[str, tuple[int, ...]]:
    """Output shape of each layer for the first stimulus; cached per model, layers,
    input shape and device while the model's structure (its repr, tensor names,
    shapes and dtypes) is unchanged (a batch-1 forward of a large network takes ~0.5 s)."""
    import torch

    x = _probe(model, stimuli, device)
    structure = (repr(model), tuple((k, tuple(t.shape), str(t.dtype))
                                    for k, t in model.state_dict().items()))
    key = (tuple(layers), tuple(x.shape), str(x.dtype), str(device), structure)
    cache = _SHAPES.setdefault(model, {})
    if key not in cache:
        with torch.inference_mode():
            outs = model.forward_layers(x, layers, stop_early=True)
        cache.clear()  # one entry per model: the last run
        cache[key] = {ly: tuple(int(s) for s in outs[ly].shape[1:]) for ly in layers}
    return dict(cache[key])


def _unit_chunk(n_units: int, batch_size: int) -> int:
    return int(max(1, min(n_units, _CHUNK_ELEMENTS // max(1, batch_size))))


class _StoreSink:
    """Write a computed batch into a store, then its completion marker."""

    def __init__(self, store: ActivationStore) -> None:
        self.store = store

    def __call__(self, k, start, arrays):
        self.store.write_batch(k, start, arrays)


class _BatchBuffer:
    """DataLoader ``collate_fn``: stack the images into one buffer reused across batches.

    Saves a fresh allocation (page faults) and the channels-last conversion per
    batch. Only for in-process loading: a batch is consumed (reduced, copied
    out) before the next one overwrites it. Other samples go to default_collate.
    """

    def __init__(self, channels_last: bool) -> None:
        self.channels_last = channels_last
        self.buf = None

    def __call__(self, samples):
        import torch
        from torch.utils.data import default_collate

        xs = [s[0] for s in samples]
        x0 = xs[0]
        if not (isinstance(x0, torch.Tensor) and x0.ndim == 3 and x0.device.type == "cpu"
                and all(isinstance(x, torch.Tensor) and x.shape == x0.shape
                        and x.dtype == x0.dtype for x in xs)):
            return default_collate(samples)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        b = self.buf
        if b is None or b.shape[1:] != x0.shape or b.dtype != x0.dtype or len(b) < len(xs):
            b = self.buf = torch.empty((len(xs), *x0.shape), dtype=x0.dtype, memory_format=fmt)
        out = b[:len(xs)]
        for i, x in enumerate(xs):
            out[i].copy_(x)
        return out, torch.tensor([s[1] for s in samples])


def _run_batches(model, stimuli, reducers, batches, *, layers, sink: Callable, device,
                 num_workers, channels_last, progress=False, desc="extract",
                 out: dict | None = None, stages=None) -> None:
    """Forward ``batches`` [(k, start, stop)], reduce each layer, hand results to ``sink``.

    With ``out`` ({layer: (n_stimuli, n_units) array}) results are written in place.
    """
    import torch
    from torch.utils.data import DataLoader

    from ._fast import forward

    if not batches:
        return
    if stages is not None and next(iter(stages), None) in stages.on_mkldnn:
        channels_last = False  # the input goes straight to oneDNN's layout
    loader = DataLoader(
        stimuli.to_torch(model.preprocess),
        batch_sampler=[list(range(s, e)) for _, s, e in batches],
        num_workers=num_workers,
        # in this process: images go straight into one reused (channels-last) batch
        collate_fn=_BatchBuffer(channels_last) if num_workers == 0 else None,
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(e - s for _, s, e in batches), desc=desc, unit="img")
    try:
        for (k, start, stop), (x, idx) in zip(batches, loader):
            x = x.to(device)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                outs = forward(model, stages, x, layers)
                arrays = {}
                for ly in layers:
                    y = outs[ly]
                    # one reduction pass: the sum is finite iff every value is (barring
                    # float overflow, which the exact count below sorts out)
                    if y.is_floating_point() and not bool(torch.isfinite(y.sum())) and (
                            bad := int((~torch.isfinite(y)).sum())):
                        raise NonFiniteActivationError(
                            f"layer {ly!r} produced {bad} non-finite values (NaN/inf) in batch "
                            f"{k} (stimuli {stimuli.ids[start]!r}..{stimuli.ids[stop - 1]!r}). "
                            "Check the weights and the preprocessing of the inputs."
                        )
                    dst = out[ly][start:stop] if out is not None else None
                    arrays[ly] = reducers[ly](y, out=dst) if dst is not None else reducers[ly](y)
            sink(k, start, arrays)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()


def _chunk_task(model, stimuli, reducers, batches, store_path, run, stages=None):
    """Run on a dask worker: compute ``batches``; write them or return them."""
    results = {}
    if store_path is not None:
        sink = _StoreSink(ActivationStore(store_path))
    else:
        def sink(k, start, arrays):
            results[k] = (start, arrays)
    _run_batches(model, stimuli, reducers, batches, sink=sink, progress=False, stages=stages,
                 **run)
    return results if store_path is None else [b[0] for b in batches]


def _run_distributed(client, model, stimuli, reducers, batches, *, store, progress, sink=None,
                     **run):
    if not batches:
        return
    from dask.distributed import as_completed

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_chunks = min(len(batches), 2 * n_workers)
    bounds = np.linspace(0, len(batches), n_chunks + 1).round().astype(int)
    chunks = [batches[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    # workers only convert their inputs; the (shared) model was converted here
    [model_f] = client.scatter([model], broadcast=True, hash=False)
    [stim_f] = client.scatter([stimuli], broadcast=True, hash=False)
    [red_f] = client.scatter([reducers], broadcast=True, hash=False)
    stages = run.pop("stages", None)
    stages_f = client.scatter([stages], broadcast=True, hash=False)[0] if stages is not None else None
    path = str(store.path) if store is not None else None
    futures = [client.submit(_chunk_task, model_f, stim_f, red_f, chunk, path, run, stages_f,
                             pure=False)
               for chunk in chunks]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(batches), desc="extract (dask)", unit="batch")
    try:
        for fut in as_completed(futures):
            res = fut.result()
            if store is None:
                for k, (start, arrays) in res.items():
                    sink(k, start, arrays)
                if bar is not None:
                    bar.update(len(res))
            elif bar is not None:
                bar.update(len(res))
    finally:
        if bar is not None:
            bar.close()


def _stimulus_coords(stimuli) -> dict:
    coords = {"stimulus": np.asarray(list(map(str, stimuli.ids)), dtype=str)}
    for col in stimuli.table.columns:
        if col == "path":
            continue
        s = stimuli.table[col]
        if s.dtype.kind in "biuf":
            coords[col] = ("stimulus", s.to_numpy())
        else:
            coords[col] = ("stimulus", np.asarray(s.astype(str).to_numpy(), dtype=str))
    return coords


def _coords(stimuli, layers, reducers):
    coords = _stimulus_coords(stimuli)
    unit_dims = {}
    for ly in layers:
        dim = f"{ly}_unit"
        unit_dims[ly] = dim
        for name, values in reducers[ly].unit_coords().items():
            coords[name] = (dim, np.asarray(values, dtype=np.int64))
    return coords, unit_dims


def _var_attrs(reducer) -> dict:
    return {"shape": list(reducer.shape), "reduce": reducer.spec or "none"}


def _set_attrs(ds, model, stimuli, layers, shapes, reducers, seed) -> None:
    from .. import __version__

    for ly in layers:
        ds[ly].attrs.update(_var_attrs(reducers[ly]))
    ds.attrs.update({
        "model": str(getattr(model, "name", type(model).__name__)),
        "weights_sha256": str(getattr(model, "weights_sha256", None) or ""),
        "preprocess": json.dumps(model.preprocess.to_dict()),
        "layer_shapes": json.dumps({ly: list(shapes[ly]) for ly in layers}),
        "reduce": json.dumps({ly: reducers[ly].spec or "none" for ly in layers}),
        "seed": int(seed),
        "facebrain_version": str(__version__),
        "stimulus_set": str(getattr(stimuli, "name", "") or ""),
    })


def _template(coords, unit_dims, reducers, layers, n, batch_size):
    import dask.array as da
    import xarray as xr

    data = {
        ly: (("stimulus", unit_dims[ly]),
             da.zeros((n, reducers[ly].n_units), dtype=np.float32,
                      chunks=(batch_size, _unit_chunk(reducers[ly].n_units, batch_size))))
        for ly in layers
    }
    return xr.Dataset(data, coords=coords)


def _in_memory(out, coords, unit_dims, model, stimuli, layers, shapes, reducers, seed):
    import xarray as xr

    ds = xr.Dataset({ly: (("stimulus", unit_dims[ly]), out[ly]) for ly in layers}, coords=coords)
    _set_attrs(ds, model, stimuli, layers, shapes, reducers, seed)
    return ds
