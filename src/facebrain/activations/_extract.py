"""``extract``: layer activations of a FaceNet for every stimulus of a StimulusSet.

``extract`` runs a few named steps: :func:`_prepare` (check the inputs, resolve
layers and reducers, probe the layer shapes, plan the batches), :func:`_fast_stages`
(the fused / oneDNN copy of the stages), :func:`_open_store` (create, resume or
replace a store), :func:`_fit_pca` (the first pass of ``pca:N`` reducers), then
:func:`_compute_into_store` or :func:`_compute_in_memory` (the batches, and the
Dataset). Batches run in :mod:`._batches`; the Dataset is laid out in :mod:`._dataset`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence

import numpy as np

from .._boundary import public
from .._deprecation import user_stacklevel
from .._utils import check_device, stable_hash
from ..errors import NonFiniteActivationError
from . import _dataset
from ._batches import StoreSink, run_batches, run_distributed
from ._plan import (
    Plan,
    batch_bounds,
    check_inputs,
    layer_shapes,
    memory_format,
    pca_fit_mask,
    probe,
)
from ._reduce import Reducer, parse_reduce
from ._store import ActivationStore

__all__ = ["NonFiniteActivationError", "extract", "state_sha256"]


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
    ParameterError
        A bad ``batch_size``, ``reduce`` spec or ``pca_fit_on``, an empty ``stimuli``
        (a ``ValueError``).
    ParameterTypeError
        ``model`` does not follow the FaceNet contract or ``stimuli`` is not a
        StimulusSet (a ``TypeError``).
    MissingKeyError
        ``pca_fit_on`` names stimulus ids that ``stimuli`` lacks (a ``KeyError``).
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

    plan = _prepare(model, stimuli, layers, reduce, batch_size=batch_size, device=device,
                    seed=seed, channels_last=channels_last, pca_fit_on=pca_fit_on,
                    store=store, num_workers=num_workers)
    stages = _fast_stages(model, stimuli, plan, fuse_bn=fuse_bn, mkldnn=mkldnn, client=client)
    convert_model = plan.channels_last and stages is None
    old_format = memory_format(model)
    try:
        if convert_model:
            model.to(memory_format=torch.channels_last)
        st, todo = None, plan.batches
        if store is not None:
            st, todo = _open_store(store, resume, model, stimuli, plan)
        _fit_pca(model, stimuli, plan, todo, progress=progress)
        if st is None:
            return _compute_in_memory(model, stimuli, plan, client=client, progress=progress)
        return _compute_into_store(model, stimuli, plan, st, todo, client=client,
                                   progress=progress)
    finally:
        if convert_model:
            model.to(memory_format=old_format)


# ----------------------------------------------------------------------- steps
def _prepare(model, stimuli, layers, reduce, *, batch_size, device, seed, channels_last,
             pca_fit_on, store, num_workers) -> Plan:
    """Check the inputs, resolve layers and reducers, probe the layer shapes, plan the batches.

    Puts ``model`` in eval mode on ``device``. ``channels_last=None`` becomes True for
    CPU networks with 2-D convolutions. The store fingerprint is only formed with a store.
    """
    import torch

    check_inputs(model, stimuli, batch_size)
    layers = model.check_layers(layers)
    specs = parse_reduce(reduce, layers)
    device = check_device(device, where="extract")
    model.eval()
    model.to(device)
    if channels_last is None:
        channels_last = device.type == "cpu" and any(
            isinstance(m, torch.nn.Conv2d) for m in model.modules()
        )
    n = len(stimuli)
    shapes = layer_shapes(model, stimuli, layers, device)
    reducers = {ly: Reducer(specs[ly], ly, shapes[ly], seed) for ly in layers}
    fit_mask, fit_desc = pca_fit_mask(stimuli, specs, pca_fit_on)
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
    return Plan(layers=layers, specs=specs, device=device, n=n, batch_size=batch_size, seed=seed,
                shapes=shapes, reducers=reducers, fit_mask=fit_mask, fit_desc=fit_desc,
                batches=batch_bounds(n, batch_size), fingerprint=fingerprint, run=run)


def _fast_stages(model, stimuli, plan: Plan, *, fuse_bn, mkldnn, client):
    """The stages to run instead of the model's (BatchNorm-fused, oneDNN), or None.

    ``mkldnn=None`` picks oneDNN on CPU when available and no ``client`` is given;
    stages kept off oneDNN are put channels-last when the run is. Sets
    ``plan.run["stages"]``.
    """
    import torch

    from ._fast import inference_stages

    device = plan.device
    if mkldnn is None:
        mkldnn = (device.type == "cpu" and client is None
                  and torch.backends.mkldnn.is_available())
    mkldnn = bool(mkldnn) and client is None and device.type == "cpu"
    stages = inference_stages(model, plan.layers, fuse_bn, mkldnn=mkldnn,
                              probe=probe(model, stimuli, device) if mkldnn else None)
    if stages is not None and plan.channels_last:
        for name, stage in stages.items():
            if name not in stages.on_mkldnn:
                stage.to(memory_format=torch.channels_last)
    plan.run["stages"] = stages
    return stages


def _open_store(store, resume, model, stimuli, plan: Plan):
    """Open ``store`` for this run: ``(ActivationStore, batches still to compute)``.

    ``resume=False`` removes an existing store; a half-created one (interrupted
    creation) is created again with a warning; an existing one must match
    ``plan.fingerprint`` (else :class:`~facebrain.errors.StoreMismatchError`) and
    only its batches without a completion marker are left to do; a new one is
    created from the Dataset template.
    """
    st = ActivationStore(store)
    if st.exists() and not resume:
        st.remove()
    if st.exists() and st.read_fingerprint() is not None and not st.is_complete():
        # creation was cut short (full disk, kill): no batch is done, start it afresh
        warnings.warn(f"{store}: the store was only partly created (interrupted); "
                      "creating it again", RuntimeWarning, stacklevel=user_stacklevel())
        st.remove()
    if st.exists():
        st.check_resumable(plan.fingerprint, list(map(str, stimuli.ids)))
        done = st.done_batches()
    else:
        st.create(_dataset.template(model, stimuli, plan), plan.fingerprint,
                  _dataset.chunks(plan), len(plan.batches))
        done = set()
    return st, [b for b in plan.batches if b[0] not in done]


def _fit_pca(model, stimuli, plan: Plan, todo, *, progress) -> None:
    """First pass, only with ``pca:N`` reducers and batches ``todo`` left: fit each PCA
    on the stimuli of ``plan.fit_mask``.

    The fit is deterministic, so a resumed run refits exactly the same projection.
    """
    to_fit = [ly for ly in plan.layers if plan.reducers[ly].needs_fit] if todo else []
    if not to_fit:
        return
    fit_mask, reducers = plan.fit_mask, plan.reducers

    def fit_sink(k, start, arrays):
        for ly in to_fit:
            rows = fit_mask[start:start + len(arrays[ly])]
            reducers[ly].partial_fit(arrays[ly][rows])

    fit_batches = [b for b in plan.batches if fit_mask[b[1]:b[2]].any()]
    run_batches(model, stimuli, {ly: Reducer(None, ly, plan.shapes[ly]) for ly in to_fit},
                fit_batches, sink=fit_sink, progress=progress,
                desc="extract (PCA fit pass)", **dict(plan.run, layers=to_fit))
    for ly in to_fit:
        reducers[ly].finish_fit()


def _compute_into_store(model, stimuli, plan: Plan, st: ActivationStore, todo, *, client,
                        progress):
    """Second pass into a store: compute and write the batches ``todo`` (on ``client``'s
    workers when given), mark the store finished, open it lazily as Activations."""
    if client is not None:
        run_distributed(client, model, stimuli, plan.reducers, todo, store=st,
                        progress=progress, **plan.run)
    else:
        run_batches(model, stimuli, plan.reducers, todo, sink=StoreSink(st),
                    progress=progress, desc="extract", **plan.run)
    st.finalize()
    return st.open()


def _compute_in_memory(model, stimuli, plan: Plan, *, client, progress):
    """Second pass without a store: compute every batch into float32 arrays (in place
    when run here) and wrap them in the Activations Dataset."""
    out = {ly: np.empty((plan.n, plan.reducers[ly].n_units), np.float32) for ly in plan.layers}

    def mem_sink(k, start, arrays):
        for ly, v in arrays.items():
            dst = out[ly][start:start + len(v)]
            if not np.may_share_memory(dst, v):
                dst[...] = v

    if client is not None:
        run_distributed(client, model, stimuli, plan.reducers, plan.batches, store=None,
                        progress=progress, sink=mem_sink, **plan.run)
    else:
        run_batches(model, stimuli, plan.reducers, plan.batches, sink=mem_sink,
                    progress=progress, desc="extract", out=out, **plan.run)
    return _dataset.in_memory(out, model, stimuli, plan)


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
