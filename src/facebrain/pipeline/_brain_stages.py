"""The brain-side stages: brain (simulate or BIDS) -> rsa -> encoding."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._deprecation import user_stacklevel
from .._runfolder import (
    REFERENCE,
    RESPONSES,
    load_activations,
    read_responses,
    stage_file,
    write_netcdf,
)
from ._config import Config
from ._runner import StageContext, StageError
from ._stages import _model_names, load_stimuli

__all__ = ["load_responses", "stage_brain", "stage_encoding", "stage_rsa", "standardize_units"]


# ----------------------------------------------------------------------- brain
def _driver_value(ctx: StageContext, roi: str, d, stim):
    """Turn a ``brain.drivers.<roi>`` entry into what ``brain.simulate`` accepts."""
    if d.kind == "layer":
        acts = load_activations(ctx.input("extract"), d.model)
        if d.layer not in acts.data_vars:
            raise StageError(
                f"brain.drivers.{roi}.layer: {d.model!r} has no extracted layer {d.layer!r}; "
                f"extracted: {list(acts.data_vars)}"
            )
        ids = [str(i) for i in stim.ids]
        missing = sorted(set(ids) - set(map(str, acts["stimulus"].values)))
        if missing:
            raise StageError(
                f"brain.drivers.{roi}: the brain's stimuli {missing[:3]} ... are not in the "
                "extracted set; brain.stimuli must be a subset of extract.stimuli."
            )
        return acts[d.layer].sel(stimulus=ids).load()
    if d.kind == "labels":
        labels = list(d.labels or [])
        if len(labels) == 1:
            return labels[0]
        weights = list(d.weights or [1.0] * len(labels))
        if sorted(labels) != ["expression", "identity"]:
            raise StageError(f"brain.drivers.{roi}.labels: mixtures support identity and "
                             f"expression only; got {labels}")
        w = dict(zip(labels, weights))
        return {"kind": "labels", "identity": w["identity"] / (w["identity"] + w["expression"])}
    return "pixels"


def stage_brain(ctx: StageContext) -> dict:
    from ..brain import concat_responses, load_bids, roi_responses, simulate, single_trial_betas

    cfg = ctx.config
    b = cfg.brain
    stim = load_stimuli(ctx, cfg, b.stimuli)
    seed = b.seed if b.seed is not None else cfg.seed
    if b.source == "simulate":
        drivers = {roi: _driver_value(ctx, roi, d, stim) for roi, d in b.drivers.items()}
        rois = b.rois if b.rois is not None else (list(drivers) or None)
        root = ctx.dir / "bids"
        simulate(root, stim, subjects=b.subjects, runs=b.runs, repeats=b.repeats, rois=rois,
                 drivers=drivers or None, tr=b.tr, snr=b.snr, seed=seed, overwrite=True,
                 **b.options)
        task, derivatives = "faces", None
        if b.options.get("confounds"):  # the simulator wrote fMRIPrep-style derivatives
            derivatives = root / "derivatives" / "fmriprep"
        subjects = _subjects(root, b.subjects)
        source = "simulated"
    else:
        root, task, derivatives = b.root, b.task, b.derivatives
        subjects = _subjects(root, b.subjects)
        source = str(root)
    parts = []
    for sub in subjects:
        data = load_bids(root, subject=sub, task=task, space=b.space,
                               derivatives=derivatives)
        reference = data.runs[0]
        rois = _rois_for(root, sub, b, derivatives, reference)
        mask = _union_mask(rois, reference)
        conf = _confounds_for(b, data)
        # fMRIPrep's cosine basis replaces nilearn's drift (both would make the design singular)
        drift = None if conf and "high_pass" in conf["strategy"] else "cosine"
        betas, _ = single_trial_betas(
            data, method=b.method, hrf_model=b.hrf_model, high_pass=b.high_pass, mask=mask,
            average_repeats=False, stimuli=stim, confounds=conf, drift_model=drift,
            signal_scaling=b.signal_scaling, slice_time_ref=b.slice_time_ref,
            out_of_range=b.out_of_range)
        ctx.log(f"[brain] sub-{sub}: confounds {betas.attrs['confounds']}, "
                f"{betas.attrs['n_confounds']} columns per run; slice_time_ref "
                f"{betas.attrs['slice_time_ref']:g} ({betas.attrs['slice_time_ref_source']})")
        parts.append(roi_responses(betas, rois, subject=sub, source=source))
        ctx.log(f"[brain] sub-{sub}: {parts[-1].sizes['voxel']} ROI voxels, "
                f"{parts[-1].sizes['stimulus']} stimuli")
    responses = concat_responses(parts) if len(parts) > 1 else parts[0]
    responses.name = "responses"
    write_netcdf(responses.to_dataset(name="responses"), ctx.dir / RESPONSES)
    return {"subjects": subjects, "n_voxels": int(responses.sizes["voxel"]),
            "n_stimuli": int(responses.sizes["stimulus"]),
            "rois": sorted(set(map(str, responses["roi"].values)))}


def _confounds_for(b, data):
    """``brain.confounds`` as single_trial_betas takes it: False without fMRIPrep tables."""
    if b.confounds is None or not data.confounds:
        return False
    import dataclasses

    return dataclasses.asdict(b.confounds)


def _subjects(root: Path, subjects) -> list[str]:
    found = sorted(p.name.removeprefix("sub-") for p in Path(root).glob("sub-*") if p.is_dir())
    if isinstance(subjects, list):
        wanted = [str(s).removeprefix("sub-") for s in subjects]
        missing = [s for s in wanted if s not in found]
        if missing:
            raise StageError(f"brain.subjects: no sub-{missing[0]} folder in {root}; found "
                             f"{', '.join(found) or 'none'}")
        return wanted
    if not found:
        raise StageError(f"brain.root: no sub-* folders in {root}; is it a BIDS dataset?")
    if subjects == "all":
        return found
    if len(found) < subjects:
        raise StageError(f"brain.subjects: asked for {subjects} subjects; {root} has "
                         f"{len(found)} ({', '.join(found)})")
    return found[:subjects]


def _rois_for(root: Path, subject: str, b, derivatives, reference):
    """ROIs for one subject: masks from the config, the dataset's ROI masks, or MNI spheres."""
    from ..brain import default_rois, load_roi_masks, rois_from_masks

    if b.masks:
        return rois_from_masks({k: str(v) for k, v in b.masks.items()}, reference)
    deriv = Path(derivatives) if derivatives else Path(root) / "derivatives"
    roi_dir = deriv / "facebrain-rois"
    if roi_dir.is_dir():
        rois = load_roi_masks(roi_dir, subject, reference)
    else:
        rois = default_rois(reference, names=b.rois)
    if b.rois is not None:
        missing = [r for r in b.rois if r not in rois]
        if missing:
            raise StageError(f"brain.rois: no mask for {missing} of subject {subject}; "
                             f"available: {sorted(rois)}")
        rois = {r: rois[r] for r in b.rois}
    return rois


def _union_mask(rois: dict, reference):
    import nibabel as nib
    from nilearn.image import resample_to_img

    ref = reference if hasattr(reference, "affine") else nib.load(reference)
    shape = ref.shape[:3]
    union = np.zeros(shape, dtype=bool)
    for img in rois.values():
        img = img if hasattr(img, "affine") else nib.load(img)
        if img.shape[:3] != shape or not np.allclose(img.affine, ref.affine):
            img = resample_to_img(img, ref.slicer[..., 0] if len(ref.shape) == 4 else ref,
                                  interpolation="nearest", force_resample=True,
                                  copy_header=True)
        union |= np.asarray(img.dataobj) > 0
    return nib.Nifti1Image(union.astype(np.uint8), ref.affine)


def load_responses(brain_dir: Path):
    """The brain stage's BrainResponses; a StageError when the stage wrote none."""
    responses = read_responses(brain_dir)
    if responses is None:
        raise StageError(f"the brain stage's folder {brain_dir} has no {RESPONSES}; rerun with "
                         "--from brain.")
    return responses


# ------------------------------------------------------------- rsa / encoding
def _aligned(acts, responses):
    ids = [str(s) for s in responses["stimulus"].values]
    have = set(map(str, acts["stimulus"].values))
    missing = [i for i in ids if i not in have]
    if missing:
        raise StageError(
            f"brain stimuli missing from the activations: {missing[:5]} ({len(missing)} in all); "
            "brain.stimuli must be a subset of extract.stimuli."
        )
    return acts.sel(stimulus=ids)


def _candidates(cfg: Config, wanted: list[str] | None) -> list[str]:
    names = _model_names(cfg, wanted)
    return names + ([REFERENCE] if wanted is None else [])


def _baseline_acts(ctx: StageContext, baselines: list[str], responses, pixel_size: int,
                   models: list[str]) -> dict:
    """Baseline candidates on the brain's stimuli: ``pixels`` and each network's untrained twin.

    The twin has the network's architecture and the seed its training started from
    (``_baselines.model_seed``), extracted at the network's layers with the run's
    reducer; networks that are already untrained (no weights, no training) get none.
    """
    if not baselines:
        return {}
    import json

    from ._baselines import PIXELS, model_seed, pixel_features, twin_name, untrained_twin

    cfg = ctx.config
    ids = [str(s) for s in responses["stimulus"].values]
    stim = load_stimuli(ctx, cfg, cfg.extract.stimuli).subset(ids)
    reduce = cfg.extract.reduce
    out = {}
    if "pixels" in baselines:
        out[PIXELS] = pixel_features(stim, size=pixel_size,
                                     reduce=reduce if isinstance(reduce, str) else None,
                                     seed=cfg.seed)
    if "untrained" in baselines:
        from ..activations import extract

        for name in models:
            m = cfg.model(name)
            if m.train is None and m.weights is None:
                continue  # already an untrained network
            info = json.loads((Path(ctx.input("train")) / name / "model.json").read_text())
            twin = untrained_twin(m, model_seed(cfg, name), num_classes=info.get("num_classes"))
            layers = list(load_activations(ctx.input("extract"), name).data_vars)
            out[twin_name(name)] = extract(twin, stim, layers, reduce=reduce,
                                           batch_size=cfg.extract.batch_size,
                                           device=cfg.extract.device, progress=False)
    return out


def _contrast_pairs(cfg: Config, names: list[str]) -> list[tuple[str, str]]:
    """Each network against its untrained twin, and every pair of configured networks."""
    from ._baselines import twin_name

    nets = [n for n in names if n in {m.name for m in cfg.models}]
    pairs = [(n, twin_name(n)) for n in nets if twin_name(n) in names]
    pairs += [(a, b) for i, a in enumerate(nets) for b in nets[i + 1:]]
    return pairs


def _select_and_save(ctx: StageContext, stage: str, results: dict, point: str, boot: str,
                     roi_dim: str, ci: float = 0.95) -> dict:
    """Pool every candidate, select per ROI, save ``{stage}__selection.nc`` and contrasts."""
    from .._selection import network_contrasts, select_candidates

    pooled = select_candidates(results, point, boot, roi_dim=roi_dim, ci=ci, what=stage)
    write_netcdf(pooled, stage_file(ctx.dir, stage, "selection"))
    con = network_contrasts(pooled, _contrast_pairs(ctx.config, list(results)), ci=ci)
    write_netcdf(con, stage_file(ctx.dir, stage, "contrasts"))
    return selection_summary(pooled)


def selection_summary(pooled) -> dict:
    """Per ROI: the selected candidate, the runner-up, their paired difference and corrected p."""
    out = {}

    def num(x):
        x = float(x)
        return x if np.isfinite(x) else None

    for roi in map(str, pooled["roi"].values):
        r = pooled.sel(roi=roi)
        best = str(r["best_candidate"].values)
        if not best:
            continue
        out[roi] = {"selected": best, "score": float(r["score"].sel(candidate=best)),
                    "runner_up": str(r["runnerup_candidate"].values),
                    "diff": num(r["diff_best_runnerup"]),
                    "diff_ci": [num(r["diff_ci_low"]), num(r["diff_ci_high"])],
                    "p_diff_fwe": num(r["p_diff_fwe"]),
                    "p_fwe": num(r["p_value_fwe"].sel(candidate=best))}
    return out


def _stage_candidates(ctx: StageContext, section, responses) -> tuple[dict, list[str]]:
    """``({name: Activations aligned to responses}, baseline names)`` for an rsa/encoding
    section: the section's networks (and reference features), then its baselines."""
    cfg = ctx.config
    cands = {name: _aligned(load_activations(ctx.input("extract"), name), responses)
             for name in _candidates(cfg, section.models)}
    baselines = _baseline_acts(ctx, section.baselines, responses, section.pixel_size,
                               _model_names(cfg, section.models))
    cands.update(baselines)
    return cands, list(baselines)


def _scorable_layers(ctx: StageContext, stage: str, name: str, acts, wanted, *, keep_all: bool,
                     constant_ok: bool, consequence: str) -> tuple[list[str], dict[str, str]]:
    """``(layers, bad)``: the selected layers of candidate ``name`` and the degenerate ones
    among them (warned about and logged; scored NaN by the caller). ``layers`` is empty (and
    the skip logged) when nothing is selected or every selected layer is degenerate."""
    layers = _selected_layers(acts, wanted, name, keep_all=keep_all)
    if not layers:
        ctx.log(f"[{stage}] {name}: none of {stage}.layers {wanted} was extracted; skipped")
        return [], {}
    bad = {k: v for k, v in degenerate_layers(acts[layers]).items()
           if not (constant_ok and v == "constant")}
    for lyr, why in bad.items():
        msg = (f"{stage}: {name} layer {lyr!r} is {why}{consequence} (the other layers are "
               "scored)")
        warnings.warn(msg, RuntimeWarning, stacklevel=user_stacklevel())
        ctx.log(f"[{stage}] warning: {msg}")
    if len(bad) == len(layers):
        what = "non-finite" if constant_ok else "constant or non-finite"
        ctx.log(f"[{stage}] {name}: every layer is {what}; skipped")
        return [], {}
    return layers, bad


def _score_candidates(ctx: StageContext, stage: str, section,
                      score: Callable[[Any, list[str], Any], Any],
                      per_roi: Callable[[Any], Any], *, constant_ok: bool, consequence: str,
                      point: str, boot: str, roi_dim: str, keep_baselines: bool = False) -> dict:
    """The loop shared by the rsa and encoding stages.

    For every candidate (networks, reference features, baselines) the scorable
    layers are ``score(acts, layers, responses)``-d; degenerate layers come back
    as NaN rows (attr ``nan_layers``). Each result is written as
    ``{stage}__{candidate}.nc``; then every candidate is pooled and selected per
    ROI (``point`` / ``boot`` variables over ``roi_dim``). ``keep_baselines``
    also writes the baselines' features (``baseline__{name}.nc``, for the
    report's RDM figure). Returns the stage summary (best layer per ROI from
    ``per_roi(result)``, and ``_selection``).
    """
    responses = load_responses(ctx.input("brain"))
    cands, baselines = _stage_candidates(ctx, section, responses)
    if keep_baselines:
        for name in baselines:
            write_netcdf(cands[name], stage_file(ctx.dir, "baseline", name))
    summary: dict[str, Any] = {}
    results = {}
    for name, acts in cands.items():
        layers, bad = _scorable_layers(ctx, stage, name, acts, section.layers,
                                       keep_all=name in baselines, constant_ok=constant_ok,
                                       consequence=consequence)
        if not layers:
            continue
        res = score(acts, [lyr for lyr in layers if lyr not in bad], responses)
        if bad:  # the degenerate layers as NaN rows, in the extracted order
            res = res.reindex(layer=layers)
            res.attrs["nan_layers"] = sorted(bad)
        res.attrs["model"] = name
        write_netcdf(res, stage_file(ctx.dir, stage, name))
        results[name] = res
        summary[name] = _best_per_roi(per_roi(res))
    summary["_selection"] = _select_and_save(ctx, stage, results, point, boot, roi_dim)
    return summary


def stage_rsa(ctx: StageContext) -> dict:
    """Compare every candidate's layer RDMs with the brain's ROI RDMs (``rsa.compare``)."""
    from ..rsa import compare

    cfg = ctx.config
    r = cfg.rsa

    def score(acts, layers, responses):
        acts = acts[layers]
        if r.standardize:
            acts = standardize_units(acts)
        return compare(acts, responses, method=r.method, rdm_method=r.rdm_method,
                       n_bootstrap=r.n_bootstrap, over=r.over, ceiling=r.ceiling,
                       seed=r.seed if r.seed is not None else cfg.seed, client=ctx.client)

    return _score_candidates(
        ctx, "rsa", r, score, lambda res: res["score_mean"], constant_ok=False,
        consequence=" across the brain's stimuli; its RDM is undefined, so it is scored NaN",
        point="score_mean", boot="bootstrap_score", roi_dim="roi", keep_baselines=True)


def _selected_layers(acts, wanted: list[str] | None, name: str, *,
                     keep_all: bool = False) -> list[str]:
    """Layers of ``acts`` named in ``wanted`` (all when None).

    The reference features (pixels, one-hot labels) and the baseline candidates
    (``baselines: [pixels, ...]``) stand beside every network: when ``wanted``
    names none of their layers, all of them are kept.
    """
    have = list(acts.data_vars)
    if wanted is None:
        return have
    picked = [lyr for lyr in wanted if lyr in have]
    if (name == REFERENCE or keep_all) and not picked:
        return have
    return picked


def degenerate_layers(acts) -> dict[str, str]:
    """``{layer: reason}`` for layers with non-finite values or identical for every stimulus."""
    out = {}
    for name in acts.data_vars:
        x = np.asarray(acts[name].values, dtype=np.float64).reshape(acts.sizes["stimulus"], -1)
        if not np.isfinite(x).all():
            out[str(name)] = "not finite (NaN or inf)"
        elif x.shape[0] > 1 and np.all(x == x[:1]):
            out[str(name)] = "constant"
    return out


def standardize_units(acts):
    """z-score every unit of every layer across stimuli (constant units become 0)."""
    acts = acts.load().copy()
    for name in list(acts.data_vars):
        x = np.asarray(acts[name].values, dtype=np.float64)
        sd = x.std(axis=0)
        acts[name] = acts[name].copy(data=(x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0))
    return acts


def _best_per_roi(score) -> dict:
    out = {}
    for roi in score["roi"].values:
        s = score.sel(roi=roi)
        if np.all(np.isnan(s.values)):
            continue
        k = int(np.nanargmax(s.values))
        out[str(roi)] = {"layer": str(s["layer"].values[k]), "score": float(s.values[k])}
    return out


def stage_encoding(ctx: StageContext) -> dict:
    """Voxelwise encoding of every candidate's layers (``encoding.evaluate``)."""
    from ..encoding import evaluate

    cfg = ctx.config
    e = cfg.encoding
    alphas = {} if e.alphas is None else {"alphas": np.asarray(e.alphas)}

    def score(acts, layers, responses):
        return evaluate(acts, responses, layers=layers, cv=e.cv, n_folds=e.n_folds,
                        inner_cv=e.inner_cv, seed=cfg.seed, n_bootstrap=e.n_bootstrap,
                        client=ctx.client, **alphas)

    def per_roi(res):
        return res["r2"].groupby("roi").mean("voxel").transpose("layer", "roi")

    # a constant layer is a valid regressor (it explains nothing); NaN/inf is not
    return _score_candidates(ctx, "encoding", e, score, per_roi, constant_ok=True,
                             consequence="; it is scored NaN", point="r2_roi",
                             boot="bootstrap_r2", roi_dim="region")
