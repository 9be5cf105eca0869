"""Running ``extract``'s batches: in this process (a DataLoader feeding the staged
forward pass) or as contiguous chunks on a dask cluster, each batch reduced per
layer and handed to a sink (an in-memory array, a store or a PCA fit)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from ..errors import NonFiniteActivationError
from ._store import ActivationStore

__all__ = ["BatchBuffer", "StoreSink", "chunk_task", "run_batches", "run_distributed"]


class StoreSink:
    """Write a computed batch into a store, then its completion marker."""

    def __init__(self, store: ActivationStore) -> None:
        self.store = store

    def __call__(self, k, start, arrays):
        self.store.write_batch(k, start, arrays)


class BatchBuffer:
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


def run_batches(model, stimuli, reducers, batches, *, layers, sink: Callable, device,
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
        collate_fn=BatchBuffer(channels_last) if num_workers == 0 else None,
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


def chunk_task(model, stimuli, reducers, batches, store_path, run, stages=None):
    """Run on a dask worker: compute ``batches``; write them or return them."""
    results = {}
    if store_path is not None:
        sink = StoreSink(ActivationStore(store_path))
    else:
        def sink(k, start, arrays):
            results[k] = (start, arrays)
    run_batches(model, stimuli, reducers, batches, sink=sink, progress=False, stages=stages,
                **run)
    return results if store_path is None else [b[0] for b in batches]


def run_distributed(client, model, stimuli, reducers, batches, *, store, progress, sink=None,
                    **run):
    """Split ``batches`` into about two contiguous chunks per dask worker and run them there.

    With ``store`` the workers write their batches into it; without, each chunk's
    arrays come back and go to ``sink``. ``run`` holds :func:`run_batches`' keywords.
    """
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
    futures = [client.submit(chunk_task, model_f, stim_f, red_f, chunk, path, run, stages_f,
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
