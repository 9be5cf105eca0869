"""The transfer stage: every direction probes its networks and their baselines.

For each ``transfer.directions[i]`` the candidates are the direction's networks,
then (``baselines: [pixels, untrained]``) each trained network's untrained twin
(same architecture, the seed the train stage initialised it with) and the pixel
baseline (grayscale at ``pixel_size`` px). Every candidate is probed on the same
stimuli, folds, permutations and features:

``features: srp:N`` (the default, ``srp:2048``)
    spatial layers (C x H x W) go through a seeded sparse random projection that
    keeps where in the image a unit responds; 1-D layers are used as they are.
``features: avgpool``
    spatial layers are averaged over positions (the poster's final-layer protocol).
``features: extract``
    the extract stage's features as they are.

When the extract stage already produced the wanted features they are reused;
otherwise the stage extracts them itself (in memory) from the trained weights.
Each result is written as ``probe__{direction}__{candidate}.nc`` with attrs
``candidate_kind`` (network / untrained / pixels), ``baseline_of``, ``features``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._runfolder import load_activations, stage_file, write_netcdf
from ._baselines import PIXELS, model_seed, pixel_features, twin_name, untrained_twin
from ._runner import StageContext, StageError

__all__ = ["direction_candidates", "stage_transfer", "wanted_reduce"]


def direction_candidates(cfg, d) -> list[tuple[str, str, str | None]]:
    """``[(result name, kind, network it is the baseline of)]`` of direction ``d``, in order."""
    nets = list(d.models) if d.models is not None else [m.name for m in cfg.models]
    out: list[tuple[str, str, str | None]] = [(n, "network", None) for n in nets]
    if "untrained" in (d.baselines or []):
        for n in nets:
            m = cfg.model(n)
            if m.weights is None and m.train is None:
                continue  # already an untrained network: it is its own twin
            out.append((twin_name(n), "untrained", n))
    if "pixels" in (d.baselines or []):
        out.append((PIXELS, "pixels", None))
    return out


def wanted_reduce(shape, features: str | None) -> str | None:
    """The reducer a layer of per-stimulus ``shape`` gets under ``features``."""
    spatial = len(shape) == 3
    if features in (None, "none") or not spatial:
        return None
    return features


def _norm(spec, shape) -> str | None:
    spec = None if spec in (None, "none", "") else str(spec)
    if spec == "avgpool" and len(shape) != 3:
        return None  # avgpool keeps 1-D outputs as they are
    return spec


#: generated (file-less) stimulus sets up to this many bytes are rendered once per stage
_MAX_CACHED_BYTES = 512 * 2**20


def _materialised(stim):
    """A generated stimulus set with its images rendered once into memory (same pixels).

    Every candidate of every direction reads the same images; rendering synthetic
    faces again for each extraction costs more than probing them.
    """
    from ..stimuli import ArraySource, StimulusSet

    if "path" in stim.table.columns or len(stim) == 0:
        return stim
    first = stim.load(0)
    if first.nbytes * len(stim) > _MAX_CACHED_BYTES:
        return stim
    images = np.stack([first] + [stim.load(i) for i in range(1, len(stim))])
    return StimulusSet(stim.table, image_source=ArraySource(images), name=stim.name,
                       notes=dict(stim.notes or {}))


class _Features:
    """Features of every candidate, computed once per (candidate, features) in a stage.

    ``stimuli``: the stage's stimulus set when it is already at hand (a job process
    gets the parent's), else loaded on first use.
    """

    def __init__(self, ctx: StageContext, stimuli=None) -> None:
        self.ctx = ctx
        self.cfg = ctx.config
        self._cache: dict[tuple, Any] = {}
        self._stim = stimuli

    def stimuli(self):
        if self._stim is None:
            from ._stages import load_stimuli

            stim = load_stimuli(self.ctx, self.cfg, self.cfg.extract.stimuli)
            self._stim = _materialised(stim)
        return self._stim

    def extracted(self, name: str):
        key = ("extract", name)
        if key not in self._cache:
            self._cache[key] = load_activations(self.ctx.input("extract"), name)
        return self._cache[key]

    def get(self, name: str, kind: str, of: str | None, layers: list[str], d, seed: int):
        features = d.features
        key = (name, features, tuple(layers), d.pixel_size if kind == "pixels" else None, seed)
        if key in self._cache:
            return self._cache[key]
        if kind == "pixels":
            spec = None if features in ("extract", "avgpool", "none") else features
            acts = pixel_features(self.stimuli(), d.pixel_size, spec, seed)
        else:
            base = self.extracted(of or name)
            shapes = {ly: tuple(base[ly].attrs.get("shape", [])) for ly in layers}
            if features == "extract":
                acts = base[layers] if kind == "network" else None
                specs = {ly: _norm(base[ly].attrs.get("reduce"), shapes[ly]) for ly in layers}
            else:
                specs = {ly: wanted_reduce(shapes[ly], features) for ly in layers}
                have = {ly: _norm(base[ly].attrs.get("reduce"), shapes[ly]) for ly in layers}
                acts = base[layers] if kind == "network" and have == specs else None
            if acts is None:
                acts = self._extract(name, kind, of, layers, specs, seed)
        self._cache[key] = acts
        return acts

    def _extract(self, name, kind, of, layers, specs, seed):
        from ..activations import extract
        from ._stages import load_model

        train = self.ctx.input("train")
        if kind == "untrained":
            info = json.loads((Path(train) / of / "model.json").read_text())
            model = untrained_twin(self.cfg.model(of), model_seed(self.cfg, of),
                                   num_classes=info.get("num_classes"))
        else:
            model, _ = load_model(train, name)
        ex = self.cfg.extract
        return extract(model, self.stimuli(), layers, reduce=dict(specs),
                       batch_size=ex.batch_size, device=ex.device, progress=False, seed=seed)


def _summary(res) -> dict:
    best = str(res.attrs["best_layer"])
    k = [str(v) for v in res["layer"].values].index(best)
    return {
        "kind": res.attrs["candidate_kind"], "best_layer": best,
        "accuracy": float(res["accuracy_mean"].values[k]),
        "chance": float(np.asarray(res["chance"]).mean()),
        "p_value_fwe": float(res["p_value_fwe"].values[k]),
        "p_value_uncorrected": float(res["p_value"].values[k]),
        "n_layers": int(res.sizes["layer"]),
    }


def _layers(feats: _Features, d, name: str, kind: str, of: str | None) -> list[str]:
    """The layers a candidate is probed on (a StageError when none was extracted)."""
    if kind == "pixels":
        return [PIXELS]
    base = feats.extracted(of or name)
    layers = [ly for ly in (d.layers or list(base.data_vars)) if ly in base.data_vars]
    if not layers:
        raise StageError(
            f"transfer.directions ({d.label}): none of the layers {d.layers} was "
            f"extracted for {of or name!r}; extracted: {list(base.data_vars)}")
    return layers


def _probe_one(ctx: StageContext, feats: _Features, run: tuple) -> tuple[dict, str]:
    """Probe one candidate of one direction, write its file; (summary, log line)."""
    from ..transfer import probe

    cfg = ctx.config
    di, order, name, kind, of, layers = run
    d = cfg.transfer.directions[di]
    seed = d.seed if d.seed is not None else cfg.seed
    acts = feats.get(name, kind, of, layers, d, seed)
    res = probe(acts, d.target, layers=layers, cv=d.cv, n_folds=d.n_folds, head=d.head,
                n_permutations=d.n_permutations, seed=seed, client=ctx.client, **d.options)
    res.attrs.update(model=name, direction=d.label, candidate_kind=kind,
                     baseline_of=of or "", candidate_order=order,
                     features=d.features or "none")
    if kind == "pixels":
        res.attrs["pixel_size"] = int(d.pixel_size)
    write_netcdf(res, stage_file(ctx.dir, "probe", d.label, name))
    s = _summary(res)
    line = (f"[transfer] {d.label} <- {name} ({kind}, features {d.features}): best "
            f"{s['best_layer']} {s['accuracy']:.3f} (chance {s['chance']:.3f}), p "
            f"corrected for {s['n_layers']} layer(s) {s['p_value_fwe']:.3g}")
    return s, line


def _probe_runs(cfg, inputs: dict, out_dir: Path, run_dir: Path, stimuli, runs: list) -> list:
    """:func:`_probe_one` for ``runs`` in a job process (the stage's stimuli passed in)."""
    ctx = StageContext(config=cfg, stage="transfer", dir=Path(out_dir), run_dir=Path(run_dir),
                       inputs=inputs, keys={}, log=lambda _msg: None)
    feats = _Features(ctx, stimuli)
    return [_probe_one(ctx, feats, run) for run in runs]


def _split(groups: list[list[tuple]]) -> tuple[list[tuple], list[tuple]]:
    """Runs for this process and for a second one: candidates (with every direction they
    appear in, so their features are computed once) go, from the last, to the side with
    less work; the second process starts with half a candidate's work of handicap (its
    start-up: importing torch and the analysis stack). Work ~ layers probed (+1 for a
    network's extraction)."""
    cost = [sum(len(r[5]) for r in g) + (g[0][3] != "pixels") for g in groups]
    here, there = 0.0, 0.5 * sum(cost) / len(cost)
    mine, theirs = [], []
    for g, c in sorted(zip(groups, cost), key=lambda gc: -gc[1]):
        if there < here:
            theirs += g
            there += c
        else:
            mine += g
            here += c
    return sorted(mine, key=_config_order), sorted(theirs, key=_config_order)


def _config_order(run: tuple) -> tuple[int, int]:
    return run[0], run[1]


def stage_transfer(ctx: StageContext) -> dict:
    """Probe every direction's networks and baselines; write ``probe__*.nc`` files.

    With a free core (and no dask client), the candidates are shared between this
    process and a second one, both single-threaded: a probe's numbers do not depend
    on which process computes it (tested: the same files as one after another).
    """
    from ..transfer import factor_variance, subspace_angles
    from ._runner import _thread_limit
    from ._workers import BesideJob, spare_process

    cfg = ctx.config
    feats = _Features(ctx)
    groups: dict[tuple, list[tuple]] = {}
    for di, d in enumerate(cfg.transfer.directions):
        for order, (name, kind, of) in enumerate(direction_candidates(cfg, d)):
            run = (di, order, name, kind, of, _layers(feats, d, name, kind, of))
            groups.setdefault((name, kind, of), []).append(run)
    runs = sorted((r for g in groups.values() for r in g), key=_config_order)
    done: dict[tuple, tuple[dict, str]] = {}

    def probe_here(mine: list[tuple]) -> None:
        for run in mine:
            done[run[:2]] = _probe_one(ctx, feats, run)
            ctx.log(done[run[:2]][1])

    if ctx.client is None and len(groups) >= 2 and spare_process():
        mine, theirs = _split(list(groups.values()))
        stim = feats.stimuli()  # rendered once, sent along
        with BesideJob(_probe_runs, (cfg, dict(ctx.inputs), ctx.dir, ctx.run_dir, stim, theirs),
                       threads=1, name="transfer probes") as job:
            with _thread_limit(1):
                probe_here(mine)
            _disentangle(ctx, factor_variance, subspace_angles)  # at the stage's threads
            for run, out in zip(theirs, job.result()):
                done[run[:2]] = out
                ctx.log(out[1])
    else:
        probe_here(runs)
        _disentangle(ctx, factor_variance, subspace_angles)
    return {f"{cfg.transfer.directions[r[0]].label}/{r[2]}": done[r[:2]][0] for r in runs}


def _disentangle(ctx: StageContext, factor_variance, subspace_angles) -> None:
    cfg = ctx.config
    if not cfg.transfer.disentangle:
        return
    factors = list(cfg.transfer.factors)
    for m in cfg.models:
        acts = load_activations(ctx.input("extract"), m.name)
        write_netcdf(factor_variance(acts, factors=tuple(factors)),
                     stage_file(ctx.dir, "factors", m.name))
        if len(factors) >= 2:
            write_netcdf(subspace_angles(acts, factors[0], factors[1]),
                         stage_file(ctx.dir, "angles", m.name))
