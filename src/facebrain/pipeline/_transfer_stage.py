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
    """Features of every candidate, computed once per (candidate, features) in a stage."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config
        self._cache: dict[tuple, Any] = {}
        self._stim = None

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


def stage_transfer(ctx: StageContext) -> dict:
    """Probe every direction's networks and baselines; write ``probe__*.nc`` files."""
    from ..transfer import factor_variance, probe, subspace_angles

    cfg = ctx.config
    summary: dict[str, Any] = {}
    feats = _Features(ctx)
    for d in cfg.transfer.directions:
        seed = d.seed if d.seed is not None else cfg.seed
        for order, (name, kind, of) in enumerate(direction_candidates(cfg, d)):
            if kind == "pixels":
                layers = [PIXELS]
            else:
                base = feats.extracted(of or name)
                layers = [ly for ly in (d.layers or list(base.data_vars)) if ly in base.data_vars]
                if not layers:
                    raise StageError(
                        f"transfer.directions ({d.label}): none of the layers {d.layers} was "
                        f"extracted for {of or name!r}; extracted: {list(base.data_vars)}")
            acts = feats.get(name, kind, of, layers, d, seed)
            res = probe(acts, d.target, layers=layers, cv=d.cv, n_folds=d.n_folds, head=d.head,
                        n_permutations=d.n_permutations, seed=seed, client=ctx.client,
                        **d.options)
            res.attrs.update(model=name, direction=d.label, candidate_kind=kind,
                             baseline_of=of or "", candidate_order=order,
                             features=d.features or "none")
            if kind == "pixels":
                res.attrs["pixel_size"] = int(d.pixel_size)
            write_netcdf(res, stage_file(ctx.dir, "probe", d.label, name))
            s = _summary(res)
            summary[f"{d.label}/{name}"] = s
            ctx.log(f"[transfer] {d.label} <- {name} ({kind}, features {d.features}): best "
                    f"{s['best_layer']} {s['accuracy']:.3f} (chance {s['chance']:.3f}), p "
                    f"corrected for {s['n_layers']} layer(s) {s['p_value_fwe']:.3g}")
    if cfg.transfer.disentangle:
        factors = list(cfg.transfer.factors)
        for m in cfg.models:
            acts = load_activations(ctx.input("extract"), m.name)
            write_netcdf(factor_variance(acts, factors=tuple(factors)),
                         stage_file(ctx.dir, "factors", m.name))
            if len(factors) >= 2:
                write_netcdf(subspace_angles(acts, factors[0], factors[1]),
                             stage_file(ctx.dir, "angles", m.name))
    return summary
