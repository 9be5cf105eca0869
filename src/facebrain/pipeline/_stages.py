"""The built-in stages: stimuli -> train -> extract -> transfer -> brain -> rsa -> encoding -> report.

Each stage function reads its config section and its inputs' folders and
writes its outputs into ``ctx.dir``. Outputs are plain files (CSV, JSON,
PyTorch state dicts, zarr stores, netCDF), so they can be opened without
facebrain. The other rooms are imported by name inside the stage functions
(so ``import facebrain.pipeline`` stays light); files shared with the report
go through :mod:`facebrain._runfolder`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._runfolder import REFERENCE, load_activations, stage_file, write_netcdf
from .._utils import atomic_path, stable_hash
from ._config import Config
from ._runner import (
    Stage,
    StageContext,
    StageError,
    cached_file_sha256,
    files_fingerprint,
    tree_fingerprint,
)
from ._sections import ModelConfig, StimulusConfig
from ._stimuli_options import loader_kwargs

__all__ = ["STAGE_NAMES", "default_stages", "load_activations", "load_model", "load_stimuli"]

# brain, rsa and encoding stages live in _brain_stages.py

STAGE_NAMES = ("stimuli", "train", "extract", "transfer", "brain", "rsa", "encoding", "report")


# --------------------------------------------------------------------- stimuli
def build_stimulus_set(spec: StimulusConfig, seed: int):
    """Build (or load) the StimulusSet described by one ``stimuli.<name>`` entry."""
    from ..stimuli import (
        StimulusSet,
        from_table,
        handle_duplicates,
        load_fer2013,
        load_folder,
        load_kdef,
        load_lfw,
        load_vggface2,
        synthetic_identities,
        synthetic_kdef,
    )

    s = spec.seed if spec.seed is not None else seed
    src = spec.source
    opts = loader_kwargs(spec)
    if src == "synthetic_kdef":
        stim = synthetic_kdef(seed=s, image_size=spec.image_size)
    elif src == "synthetic_identities":
        stim = synthetic_identities(spec.n_identities, spec.images_per_identity, seed=s,
                                    image_size=spec.image_size)
    elif src == "kdef":
        stim = load_kdef(spec.root, views=spec.views, expressions=spec.expressions,
                         sessions=spec.sessions, **opts)
    elif src == "lfw":
        stim = load_lfw(spec.root, **opts)
    elif src == "folder":
        stim = load_folder(spec.root, spec.pattern, **opts)
    elif src == "manifest":
        stim = StimulusSet.load_manifest(spec.path)
    elif src == "table":
        stim = from_table(spec.path, spec.root, **opts)
    elif src == "fer2013":
        stim = load_fer2013(spec.path, **opts)
    elif src == "vggface2":
        stim = load_vggface2(spec.root, spec.split, max_per_identity=spec.max_per_identity,
                             **opts)
    else:  # pragma: no cover - Literal-checked by the config
        raise StageError(f"unknown stimulus source {src!r}")
    if spec.on_duplicate is not None and "on_duplicate" not in opts:
        stim = handle_duplicates(stim, spec.on_duplicate)
    table = stim.table
    mask = np.ones(len(stim), dtype=bool)
    for col, wanted in (("view", spec.views), ("expression", spec.expressions),
                        ("session", spec.sessions)):
        if wanted is not None and src != "kdef":
            if col not in table.columns:
                raise StageError(f"stimulus set {src!r} has no {col!r} column to select {wanted}")
            mask &= table[col].astype(str).isin([str(w) for w in wanted]).to_numpy()
    if spec.identities is not None:
        keep = sorted(table["identity"].astype(str).unique())[: spec.identities]
        mask &= table["identity"].astype(str).isin(keep).to_numpy()
    if not mask.all():
        stim = stim.subset(mask)
    if spec.query:
        stim = stim.subset(spec.query)
    if spec.max_per_identity is not None and src != "vggface2":
        pos = stim.table.groupby("identity", sort=False).cumcount().to_numpy()
        stim = stim.subset(pos < spec.max_per_identity)
    if len(stim) == 0:
        raise StageError(f"stimulus set from source {src!r} is empty after selection; "
                         "loosen views/expressions/sessions/identities/query.")
    return stim


def _stimuli_fingerprint(cfg: Config):
    """Content of every input file of every stimulus set (images, tables, manifests)."""
    out = {}
    for name, spec in cfg.stimuli.items():
        part = {}
        if spec.root is not None and spec.root.is_dir():
            part["root"] = tree_fingerprint(spec.root)
        if spec.path is not None and spec.path.is_file():
            part["path"] = cached_file_sha256(spec.path)
            part["images"] = _table_images_fingerprint(spec)
        out[name] = part
    return out


def _table_images_fingerprint(spec: StimulusConfig):
    """Hashes of the image files a manifest / table lists (they may live outside ``root``)."""
    if spec.source not in ("manifest", "table") or spec.path.suffix.lower() != ".csv":
        return None
    import pandas as pd

    try:
        table = pd.read_csv(spec.path, dtype=str, keep_default_na=False)
    except Exception:  # noqa: BLE001 - the loader reports a malformed table itself
        return None
    if "path" not in table.columns:
        return None
    base = spec.root if spec.root is not None else spec.path.parent
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in table["path"] if p]
    if spec.root is not None and spec.root.is_dir():  # files under root: in its tree hash
        root = spec.root.resolve()
        paths = [p for p in paths if not p.resolve().is_relative_to(root)]
    return stable_hash(sorted(files_fingerprint(paths).items()), length=32)


def stage_stimuli(ctx: StageContext) -> dict:
    summary = {}
    for name, spec in ctx.config.stimuli.items():
        stim = build_stimulus_set(spec, ctx.seed)
        if spec.align is not None:
            from ._align_stage import align_stimuli

            stim = align_stimuli(ctx, name, spec, stim)
        table = stim.table.copy()
        if "path" in table.columns and spec.align is None:
            table["path"] = [str(stim.path_of(i)) if stim.path_of(i) else "" for i in range(len(stim))]
        with atomic_path(ctx.dir / f"{name}.csv", suffix=".csv") as tmp:
            table.reset_index().to_csv(tmp, index=False)
        summary[name] = {
            "n": len(stim), "identities": int(stim.table["identity"].nunique()),
            "expressions": int(stim.table["expression"].nunique()),
            "rejected": len(stim.rejected),
        }
        if spec.align is not None:
            summary[name]["align"] = stim.notes.get("align", {})
        ctx.log(f"[stimuli] {name}: {len(stim)} images, {summary[name]['identities']} identities")
    return summary


_GENERATED = {"synthetic_kdef", "synthetic_identities", "fer2013"}


def load_stimuli(ctx_or_dir, config: Config, name: str):
    """Stimulus set ``name`` as the stimuli stage recorded it.

    File-backed sets are read back from the stage's table (absolute paths), so later
    stages never walk the dataset again; generated or in-memory sets are rebuilt from
    the config (deterministic) and checked against the table.
    """
    import pandas as pd

    from ..stimuli import StimulusSet

    folder = ctx_or_dir.input("stimuli") if isinstance(ctx_or_dir, StageContext) else Path(ctx_or_dir)
    table_path = folder / f"{name}.csv"
    spec = config.stimuli[name]
    if spec.source not in _GENERATED or spec.align is not None:
        from ..stimuli._stimulus_set import read_manifest_csv

        table = read_manifest_csv(table_path)
        if "path" in table.columns and (table["path"] != "").all():
            # aligned chips live in the stage folder (relative paths); data files are absolute
            missing = [p for p in table["path"].head(50) if not (folder / p).is_file()]
            if missing:
                raise StageError(
                    f"stimulus set {name!r}: files recorded by the stimuli stage are gone "
                    f"(e.g. {missing[0]}); the data moved or changed. Rerun with --from stimuli."
                )
            return StimulusSet(table, root=folder, name=name)
    stim = _generated_set(spec, config.seed)
    saved = pd.read_csv(table_path, usecols=["stimulus_id"], dtype=str,
                        keep_default_na=False)["stimulus_id"]
    if list(saved) != [str(i) for i in stim.ids]:
        raise StageError(
            f"stimulus set {name!r} no longer matches the table written by the stimuli stage "
            f"({table_path}): the data on disk changed. Rerun with --from stimuli."
        )
    return stim


#: sources that are a pure function of their config entry and the seed (no file read)
_PURE = {"synthetic_kdef", "synthetic_identities"}
#: generated stimulus sets of the current run, {(config entry, seed): StimulusSet}
_GENERATED_MEMO: dict[str, Any] = {}


def clear_stimuli_memo() -> None:
    """Forget the generated stimulus sets (done at the start of every run)."""
    _GENERATED_MEMO.clear()


def _generated_set(spec: StimulusConfig, seed: int):
    """``build_stimulus_set(spec, seed)``, built once per run for the synthetic sources.

    Every stage after ``stimuli`` rebuilds the same synthetic set (generating
    every parameter row of the full design, then selecting); a synthetic set
    depends on nothing but its config entry and the seed, so one build serves
    them all. Each call gets its own copy (a fresh table).
    """
    if spec.source not in _PURE or spec.align is not None:
        return build_stimulus_set(spec, seed)
    from ._typed import to_plain

    key = stable_hash([to_plain(spec), int(seed)], length=32)
    if key not in _GENERATED_MEMO:
        _GENERATED_MEMO[key] = build_stimulus_set(spec, seed)
    stim = _GENERATED_MEMO[key]
    return stim.subset(np.arange(len(stim)))


# ----------------------------------------------------------------------- train
def _train_section(cfg: Config):
    return [{"name": m.name, "arch": m.arch, "weights": str(m.weights) if m.weights else None,
             "num_classes": m.num_classes, "new_head": m.new_head, "train": m.train,
             "seed": m.seed, "options": m.options, "sha256": m.sha256} for m in cfg.models]


def _train_fingerprint(cfg: Config):
    """Content of weight files and verification pairs files."""
    out = {m.name: cached_file_sha256(m.weights) for m in cfg.models
           if m.weights is not None and m.weights.is_file()}
    pairs = [m.train.pairs_file for m in cfg.models
             if m.train is not None and m.train.pairs_file is not None]
    if pairs:
        out["pairs_files"] = files_fingerprint(pairs)
    return out


def _seeded_create(arch: str, seed: int, **kwargs):
    import torch

    from ..models import create

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create(arch, **kwargs)


def _n_classes(stim, target: str) -> int:
    if target == "verification":
        return 2
    return int(stim.table[target].nunique())


def stage_train(ctx: StageContext) -> dict:
    """Create, train or load every model; trainings run side by side when cores allow.

    Networks train independently (own seed, own folder), so with ``threads: N``
    on a machine of C cores, ``min(C // N, n)`` of them run at once in separate
    processes of N threads each (see :func:`stage_processes`); each gives the
    same weights as when trained alone in this process.
    """
    from ._workers import run_in_processes, stage_processes

    cfg = ctx.config
    jobs = [i for i, m in enumerate(cfg.models) if m.train is not None]
    processes = stage_processes(cfg.threads, len(jobs))
    done: dict[int, dict] = {}
    if processes > 1:
        ctx.log(f"[train] training {len(jobs)} networks in {processes} processes of "
                f"{cfg.threads} thread(s) each")
        args = [(cfg, i, ctx.input("stimuli"), ctx.dir) for i in jobs]
        done = dict(zip(jobs, run_in_processes(_train_model, args, processes, cfg.threads)))
    else:
        _prerender_training_faces(ctx, jobs)
    return {m.name: done[i] if i in done else _train_model(cfg, i, ctx, ctx.dir)
            for i, m in enumerate(cfg.models)}


def _prerender_training_faces(ctx: StageContext, jobs: list[int]) -> None:
    """Render the synthetic training faces in parallel before training here, one after another.

    Rendering is single-threaded numpy (about 3 ms per 64 px face); the networks
    that follow read the faces from this process's memo. Uses up to ``threads``
    processes (every core with ``threads: null``); pixels are the same wherever
    they are rendered.
    """
    from ..stimuli import SyntheticFaceSource
    from ._workers import available_cpus, run_in_processes

    cfg = ctx.config
    n = min(available_cpus(), cfg.threads or available_cpus())
    if n < 2:
        return
    for name in dict.fromkeys(cfg.models[i].train.stimuli for i in jobs):
        stim = load_stimuli(ctx, cfg, name)
        if isinstance(stim.image_source, SyntheticFaceSource):
            t = time.perf_counter()
            k = stim.image_source.prerender(
                stim.source_index, chunks=n,
                map_chunks=lambda fn, js: run_in_processes(fn, js, n, None))
            if k:
                ctx.log(f"[train] {name}: {k} faces rendered in {n} processes "
                        f"({time.perf_counter() - t:.1f} s)")


def _train_model(cfg: Config, i: int, stimuli, stage_dir: Path) -> dict:
    """Train (or create / load) ``cfg.models[i]`` into ``stage_dir``; its summary entry.

    ``stimuli`` is the stage context or the stimuli stage's folder (in a worker process).
    """
    import torch

    m = cfg.models[i]
    mdir = stage_dir / m.name
    mdir.mkdir(parents=True, exist_ok=True)
    seed = m.seed if m.seed is not None else cfg.seed + i
    kw: dict[str, Any] = dict(m.options)
    info: dict[str, Any] = {"name": m.name, "arch": m.arch, "options": m.options, "seed": seed}
    if m.train is not None:
        stim = load_stimuli(stimuli, cfg, m.train.stimuli)
        n_cls = m.num_classes or _n_classes(stim, m.train.target)
        try:
            if m.weights is not None:
                model = _seeded_create(m.arch, seed, weights=m.weights, num_classes=n_cls,
                                       new_head=m.new_head,
                                       **({"sha256": m.sha256} if m.sha256 else {}), **kw)
            else:
                model = _seeded_create(m.arch, seed, num_classes=n_cls, **kw)
        except Exception as err:
            raise StageError(f"models[{i}] ({m.name}): {err}") from err
        t = m.train
        tseed = t.seed if t.seed is not None else seed
        common: dict[str, Any] = {"epochs": t.epochs, "batch_size": t.batch_size,
                                      "augment": t.augment, "val_fraction": t.val_fraction,
                                      "out_dir": mdir, "seed": tseed,
                                      "resume": (mdir / "last.pt").is_file()}
        if t.lr is not None:
            common["lr"] = t.lr
        if t.optimizer is not None:
            common["optimizer"] = t.optimizer
        if t.schedule is not None:
            common["schedule"] = None if t.schedule.lower() == "none" else t.schedule
        common.update(t.options)
        from ..training import fit_classifier, fit_siamese
        from ..training._checkpoint import reconcile_best

        if t.target == "verification":
            if t.pairs_file is not None:
                from ..stimuli import load_lfw_pairs

                pairs = load_lfw_pairs(t.pairs_file, stim)
            else:
                from ..training import sample_pairs

                pairs = sample_pairs(stim, t.n_pairs, seed=tseed)
            result = fit_siamese(model, pairs, stim, **common)
        else:
            result = fit_classifier(model, stim, target=t.target, **common)

        # best.pt must be the epoch last.pt names as best (a kill between the two
        # writes is repaired here; best.pt from another run raises)
        best = reconcile_best(mdir)
        weights = best if best is not None and best.is_file() else mdir / "last.pt"
        if not weights.is_file():
            raise StageError(f"training {m.name!r} wrote no checkpoint into {mdir}")
        info.update(num_classes=n_cls, weights=weights.name, trained=True,
                    target=t.target, train_stimuli=t.stimuli)
        summary = _fit_summary(result, mdir)
    else:
        try:
            if m.weights is not None:
                model = _seeded_create(m.arch, seed, weights=m.weights,
                                       num_classes=m.num_classes, new_head=m.new_head,
                                       **({"sha256": m.sha256} if m.sha256 else {}), **kw)
                info.update(weights=str(Path(m.weights).resolve()),
                            weights_sha256=cached_file_sha256(m.weights))
            else:
                model = _seeded_create(m.arch, seed, num_classes=m.num_classes, **kw)
                with atomic_path(mdir / "weights.pt", suffix=".pt") as tmp, \
                        open(tmp, "wb") as f:  # a file object: ENOSPC stays an OSError
                    torch.save(model.state_dict(), f)
                info.update(weights="weights.pt")
                if getattr(model, "weights_sha256", None):  # packaged pretrained weights
                    info.update(pretrained_from=model.weights_path,
                                pretrained_sha256=model.weights_sha256)
        except StageError:
            raise
        except Exception as err:
            raise StageError(
                f"models[{i}].weights ({m.weights}): cannot be loaded into {m.arch!r}: {err}"
            ) from err
        info.update(num_classes=m.num_classes, trained=False)
        summary = {"trained": False, "weights": str(
            m.weights or info.get("pretrained_from") or "random init")}
    info["layer_names"] = list(model.layer_names)
    with atomic_path(mdir / "model.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(info, indent=1, default=str))
    return summary


def _fit_summary(result, mdir: Path) -> dict:
    out = {"trained": True}
    metrics = mdir / "metrics.jsonl"
    if metrics.is_file():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        if rows:
            out["last_epoch"] = {k: v for k, v in rows[-1].items()
                                 if isinstance(v, (int, float, str))}
    best = getattr(result, "best_epoch", None)
    if best is not None:
        out["best_epoch"] = int(best)
    classes = getattr(result, "classes", None)
    if classes is not None:
        out["n_classes"] = len(classes)
    return out


def load_model(train_dir: Path, name: str):
    """Recreate model ``name`` from the train stage's folder."""
    mdir = Path(train_dir) / name
    info = json.loads((mdir / "model.json").read_text())
    weights = info["weights"]
    path = Path(weights) if Path(weights).is_absolute() else mdir / weights
    from ..models import create

    kw = dict(info.get("options") or {})
    model = create(info["arch"], weights=path, num_classes=info.get("num_classes"), **kw)
    model.name = info["arch"]
    model.eval()
    return model, info


# --------------------------------------------------------------------- extract
def _layers_for(cfg: Config, m: ModelConfig, layer_names) -> list[str]:
    if m.layers is not None:
        return list(m.layers)
    if cfg.extract.layers is not None:
        return [lyr for lyr in cfg.extract.layers if lyr in layer_names]
    return [lyr for lyr in layer_names if lyr not in ("fc", "logits")]


def stage_extract(ctx: StageContext) -> dict:
    from ..activations import extract

    cfg = ctx.config
    stim = load_stimuli(ctx, cfg, cfg.extract.stimuli)
    summary = {}
    for m in cfg.models:
        model, info = load_model(ctx.input("train"), m.name)
        layers = _layers_for(cfg, m, info["layer_names"])
        acts = extract(model, stim, layers, reduce=cfg.extract.reduce,
                       batch_size=cfg.extract.batch_size, device=cfg.extract.device,
                       store=ctx.dir / f"{m.name}.zarr", resume=True, client=ctx.client,
                       pca_fit_on=cfg.extract.pca_fit_on)
        summary[m.name] = {"layers": list(acts.data_vars), "n_stimuli": int(acts.sizes["stimulus"])}
    ref = reference_features(stim)
    write_netcdf(ref, stage_file(ctx.dir, REFERENCE))
    summary[REFERENCE] = {"layers": list(ref.data_vars)}
    return summary


def reference_features(stim, pixel_size: int = 24):
    """Label and pixel features of the stimuli: the reference 'model' beside the networks.

    Returns an Activations-shaped Dataset with variables

    - ``pixels``: local contrast energy of the grayscale image at ``pixel_size`` x
      ``pixel_size`` (``|g - mean(g)|``), the low-level model that the simulator's
      ``"pixels"`` driver pools with Gaussian receptive fields;
    - ``identity_labels`` / ``expression_labels``: one-hot labels (their RDMs are the
      categorical model RDMs).

    RSA and encoding rank them beside the network layers, so a planted label or pixel
    driver can be recovered like a planted layer.
    """
    import xarray as xr

    ids = [str(i) for i in stim.ids]
    gray = np.stack([stim.load(i, size=pixel_size).astype(np.float64).mean(axis=2)
                     for i in range(len(stim))])
    energy = np.abs(gray - gray.mean(axis=(1, 2), keepdims=True)).reshape(len(stim), -1)
    data = {"pixels": (("stimulus", "pixels_unit"), energy.astype(np.float32))}
    for col in ("identity", "expression"):
        codes, cats = stim.labels(col)
        onehot = np.zeros((len(stim), len(cats)), np.float32)
        onehot[np.arange(len(stim)), codes] = 1.0
        data[f"{col}_labels"] = (("stimulus", f"{col}_labels_unit"), onehot)
    coords = {"stimulus": ids}
    for col in stim.table.columns:
        if col != "path":
            coords[col] = ("stimulus", stim.table[col].astype(str).to_numpy())
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(model=REFERENCE, weights_sha256="", facebrain_version=_version(),
                    pixels=f"contrast energy |g - mean(g)| of grayscale at {pixel_size}px")
    for v in ds.data_vars:
        ds[v].attrs.update(shape=[int(ds[v].shape[1])], reduce="none")
    return ds


def _version() -> str:
    from .. import __version__

    return __version__


def _model_names(cfg: Config, wanted: list[str] | None) -> list[str]:
    return list(wanted) if wanted is not None else [m.name for m in cfg.models]


# -------------------------------------------------------------------- transfer
def stage_transfer(ctx: StageContext) -> dict:
    # networks, their untrained twins and pixels on the direction's features
    from ._transfer_stage import stage_transfer as run_transfer

    return run_transfer(ctx)


# ---------------------------------------------------------------------- report
def stage_report(ctx: StageContext) -> dict:
    from ..report import build_report
    from ._workers import BesideJob, spare_process

    stim = None
    if ctx.inputs.get("stimuli") is not None:  # the contact sheet's faces
        stim = load_stimuli(ctx, ctx.config, ctx.config.extract.stimuli)
    # results.nc (~1.5 s for the demo) is written by a second process while
    # the figures are drawn here, when a core is free
    beside = (lambda fn, args: BesideJob(fn, args, threads=None, name="results.nc")) \
        if spare_process() else None
    return build_report(ctx, stimuli=stim, beside=beside)


def _without_runtime(d: dict) -> dict:
    """The config minus settings that change how, not what, is computed."""
    return {k: v for k, v in d.items() if k not in ("threads", "scheduler", "source")}


def _brain_fingerprint(cfg: Config):
    """Content of the BIDS dataset (bold, events, sidecars, confounds, masks) and mask files."""
    b = cfg.brain
    if b.source != "bids":
        return None
    out = {}
    if b.root is not None and b.root.is_dir():
        out["root"] = tree_fingerprint(b.root, exclude=("sourcedata",))  # raw DICOMs: unread
    if b.derivatives is not None and b.derivatives.is_dir():
        inside = b.root is not None and b.derivatives.resolve().is_relative_to(b.root.resolve())
        if not inside:
            out["derivatives"] = tree_fingerprint(b.derivatives)
    if b.masks:
        out["masks"] = files_fingerprint(b.masks[k] for k in sorted(b.masks))
    return out


def default_stages() -> list[Stage]:
    """The eight built-in stages, in order.

    Each key covers the stage's config section, its inputs' keys and the source of
    the facebrain sub-packages it calls (``code``), so an upgrade that changes a
    default recomputes what it affects.
    """
    from ._brain_stages import stage_brain, stage_encoding, stage_rsa

    return [
        Stage("stimuli", stage_stimuli, (), lambda c: c.stimuli, _stimuli_fingerprint,
              code=("pipeline", "stimuli", "data")),
        Stage("train", stage_train, ("stimuli",), _train_section, _train_fingerprint,
              resumable=True, code=("pipeline", "models", "training")),
        Stage("extract", stage_extract, ("stimuli", "train"),
              lambda c: {"extract": c.extract, "layers": {m.name: m.layers for m in c.models}},
              heavy=True, resumable=True, version="2",
              code=("pipeline", "models", "activations", "_runfolder.py")),
        Stage("transfer", stage_transfer, ("stimuli", "train", "extract"), lambda c: c.transfer,
              heavy=True, enabled=lambda c: bool(c.transfer.directions) or c.transfer.disentangle,
              code=("pipeline", "transfer", "models", "activations", "_runfolder.py")),
        Stage("brain", stage_brain, ("stimuli", "extract"), lambda c: c.brain, _brain_fingerprint,
              enabled=lambda c: c.brain.source != "none",
              code=("pipeline", "brain", "_runfolder.py")),
        Stage("rsa", stage_rsa, ("stimuli", "train", "extract", "brain"), lambda c: c.rsa,
              heavy=True,
              enabled=lambda c: c.rsa.enabled and c.brain.source != "none",
              code=("pipeline", "rsa", "activations", "models", "_selection.py",
                    "_runfolder.py")),
        Stage("encoding", stage_encoding, ("stimuli", "train", "extract", "brain"),
              lambda c: c.encoding, heavy=True,
              enabled=lambda c: c.encoding.enabled and c.brain.source != "none",
              code=("pipeline", "encoding", "activations", "models", "_selection.py",
                    "_runfolder.py")),
        Stage("report", stage_report,
              ("stimuli", "train", "extract", "transfer", "brain", "rsa", "encoding"),
              lambda c: {"report": c.report, "config": _without_runtime(c.to_dict())},
              enabled=lambda c: c.report.enabled, code=("pipeline", "report", "_runfolder.py")),
    ]
