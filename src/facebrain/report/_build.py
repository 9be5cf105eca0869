"""Assemble ``report.html`` and ``results.nc`` from the outputs of a pipeline run."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .._runfolder import (
    REFERENCE,
    load_activations,
    read_metrics,
    read_netcdf,
    read_probes,
    read_responses,
    read_scores,
    stage_file,
    write_results,
)
from .._utils import atomic_path
from . import _figures as F
from ._html import HtmlReport

__all__ = [
    "ReportData",
    "build_report",
    "collect_run",
    "package_versions",
    "result_groups",
    "write_report",
]

_PACKAGES = ("facebrain", "torch", "torchvision", "numpy", "pandas", "xarray", "zarr", "dask",
             "scikit-learn", "scipy", "nilearn", "nibabel", "rsatoolbox", "matplotlib")


def package_versions() -> dict[str, str]:
    """Installed versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class ReportData:
    """Everything the report shows; each part is optional.

    ``transfer`` maps ``(direction, model)`` to a TransferResult; ``rsa`` and
    ``encoding`` map a model name to its result Dataset; ``layer_rdm(model,
    layer)`` returns the RDM of a layer on the brain's stimuli (for the RDM
    figure); ``planted`` maps an ROI to the ``model:layer`` that drives it.
    """

    title: str = "facebrain report"
    stimuli: Any = None
    max_identities: int = 8
    training: dict[str, list[dict]] = field(default_factory=dict)
    transfer: dict[tuple[str, str], Any] = field(default_factory=dict)
    factors: dict[str, Any] = field(default_factory=dict)
    angles: dict[str, Any] = field(default_factory=dict)
    responses: Any = None
    rsa: dict[str, Any] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    layer_rdm: Any = None
    planted: dict[str, str] = field(default_factory=dict)
    # pooled candidate selection per stage ("rsa", "encoding") and network contrasts
    selection: dict[str, Any] = field(default_factory=dict)
    contrasts: dict[str, Any] = field(default_factory=dict)
    glass_brain: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _best(ds_by_model: dict[str, Any], var: str, roi: str) -> list[tuple[float, str, str]]:
    """Candidates (score, model, layer) for one ROI, best first."""
    out = []
    for name, ds in ds_by_model.items():
        if var == "score_mean":
            if roi not in [str(r) for r in ds["roi"].values]:
                continue
            vals = np.asarray(ds["score_mean"].sel(roi=roi).values, float)
        else:
            sel = np.asarray(ds["roi"].values).astype(str) == roi
            if not sel.any():
                continue
            vals = np.nanmean(np.asarray(
                ds["r2"].isel(voxel=np.flatnonzero(sel)).transpose("layer", "voxel").values,
                float), axis=1)
        for lyr, v in zip(ds["layer"].values, vals):
            if np.isfinite(v):
                out.append((float(v), name, str(lyr)))
    return sorted(out, reverse=True)


def _rois(data: ReportData) -> list[str]:
    if data.responses is not None:
        return list(dict.fromkeys(str(r) for r in data.responses["roi"].values))
    rois: list[str] = []
    for ds in list(data.rsa.values()) + list(data.encoding.values()):
        rois += [str(r) for r in np.unique(ds["roi"].values)]
    return list(dict.fromkeys(rois))


def write_report(data: ReportData, out_dir: str | Path, *, results: bool = True) -> dict:
    """Write ``report.html`` and ``results.nc`` into ``out_dir``; return a summary dict.

    ``results=False`` leaves ``results.nc`` to the caller (the pipeline writes it from
    :func:`result_groups` in another process while the figures are drawn).
    """
    out_dir = Path(out_dir)
    rep = HtmlReport(data.title)
    summary: dict[str, Any] = {}

    sec = rep.section("stimuli", "Stimuli")
    for note in data.notes:
        rep.text(sec, f"Note: {note}")
    if data.stimuli is not None:
        t = data.stimuli.table
        rep.text(sec, f"{len(t)} images, {t['identity'].nunique()} identities, "
                      f"{t['expression'].nunique()} expressions, {t['view'].nunique()} views.")
        if data.max_identities <= 0:
            rep.text(sec, "Faces are not shown (report.max_identities: 0), so this report "
                          "can be shared without showing licensed face images.")
        else:
            rep.figure(sec, F.fig_contact_sheet(data.stimuli, max_identities=data.max_identities),
                       "Contact sheet of test stimuli: identities in rows, expressions in columns",
                       "Test stimuli: one row per identity, one column per expression "
                       "(frontal view).")
    else:
        rep.text(sec, "No stimuli were recorded for this run.")

    sec = rep.section("training", "Training")
    if rep.figure(sec, F.fig_training(data.training),
                  "Training loss and accuracy curves per epoch for each trained network",
                  "Solid: training; dashed: validation."):
        rows = []
        for name, hist in data.training.items():
            last = hist[-1] if hist else {}
            rows.append([name, len(hist)] + [last.get(k, "") for k in ("val_accuracy", "val_acc")
                                             if k in last][:1])
        rep.table(sec, ["network", "epochs", "final validation accuracy"], rows)
    else:
        rep.text(sec, "No network was trained in this run (weights were given or random).")

    sec = rep.section("transfer", "Transfer")
    directions = list(dict.fromkeys(d for d, _ in data.transfer))
    rows = []
    for d in directions:
        per_model = {m: ds for (dd, m), ds in data.transfer.items() if dd == d}
        target = str(next(iter(per_model.values())).attrs.get("target", d))
        rep.figure(sec, F.fig_transfer(per_model, title=f"{d}: decoding {target}"),
                   f"Held-out {target} accuracy by layer for {', '.join(per_model)}, with chance "
                   "and the permutation null band",
                   f"{d}: mean +- SEM over cross-validation folds; dotted line: chance; shaded: "
                   "95% of the permutation null.")
        for m, ds in per_model.items():
            acc = np.asarray(ds["accuracy_mean"].values, float)
            k = int(np.nanargmax(acc))
            layer = str(ds["layer"].values[k])
            p_raw = float(ds["p_value"].values[k]) if "p_value" in ds else float("nan")
            # the best layer is chosen by mean accuracy: quote p corrected for that choice
            p = float(ds["p_value_fwe"].values[k]) if "p_value_fwe" in ds else p_raw
            chance = float(np.nanmean(ds["chance"].values)) if "chance" in ds else float("nan")
            kind = str(ds.attrs.get("candidate_kind", "network"))
            n_layers = int(ds.sizes["layer"])
            rows.append([d, m, kind, str(ds.attrs.get("features", "")), layer, n_layers,
                         float(acc[k]), chance, p, p_raw])
            summary[f"transfer/{d}/{m}"] = {"best_layer": layer, "accuracy": float(acc[k]),
                                           "chance": chance, "p_value": p,
                                           "p_value_uncorrected": p_raw, "kind": kind,
                                           "selected": f"best of {n_layers} layers by mean "
                                                       "accuracy"}
            rep.figure(sec, F.fig_confusion(ds, layer, title=f"{d} <- {m} @ {layer}"),
                       f"Confusion matrix of {target} decoding from {m} at its best layer {layer}")
    if rows:
        rep.text(sec, "Each network and baseline (untrained twin: same architecture, seeded "
                      "initialisation; pixels: grayscale through the same reducer) is probed "
                      "layer by layer; its best layer is chosen by mean held-out accuracy, so "
                      "p is the permutation max-statistic over its layers (the same label "
                      "permutations for every layer), corrected for that choice. The "
                      "uncorrected p of the chosen layer is shown for reference.")
        rep.table(sec, ["direction", "candidate", "kind", "features", "best layer", "layers",
                        "accuracy", "chance", "p (corrected for the layer choice)",
                        "p uncorrected"], rows)
    else:
        rep.text(sec, "No transfer directions were configured.")

    sec = rep.section("disentanglement", "Disentanglement")
    if not rep.figure(sec, F.fig_disentanglement(data.factors, data.angles),
                      "Factor variance fractions and identity/expression subspace angles by "
                      "layer for each network",
                      "Top: fraction of unit variance explained by each factor; bottom: principal "
                      "angles between factor-discriminant subspaces."):
        rep.text(sec, "Disentanglement measures were not computed.")

    sec = rep.section("brain", "Brain")
    rois = _rois(data)
    if data.responses is not None:
        r = data.responses
        subs = sorted(set(map(str, r["subject"].values)))
        rep.text(sec, f"{r.sizes['stimulus']} stimuli x {r.sizes['voxel']} voxels from "
                      f"{len(subs)} subject(s) ({', '.join(subs)}); ROIs: {', '.join(rois)}; "
                      f"source: {r.attrs.get('source', '')}.")
    best_rsa = {roi: _best(data.rsa, "score_mean", roi) for roi in rois} if data.rsa else {}
    best_enc = {roi: _best(data.encoding, "r2", roi) for roi in rois} if data.encoding else {}
    if data.selection:
        from ._selection_table import selection_rows

        rows, recovered = selection_rows(data.selection, rois, data.planted)
        rep.heading(sec, "Selected candidate per ROI")
        rep.table(sec, ["ROI", "planted driver",
                        "selected (RSA)", "RSA score", "runner-up (RSA)",
                        "best - runner-up [95% CI] (RSA)", "p, corrected (RSA)",
                        "selected (encoding)", "mean R²", "runner-up (encoding)",
                        "best - runner-up [95% CI] (encoding)", "p, corrected (encoding)",
                        "recovered"],
                  rows, marks={"yes": "ok", "no": "bad", "tied": "part"})
        rep.text(sec, "Selected: the best of every candidate (each extracted layer of each "
                      "network, the untrained twins, raw pixels and the reference features) "
                      "by mean RSA score / mean held-out R² over the ROI. The difference to "
                      "the runner-up has a paired bootstrap interval (the same resampled "
                      "stimuli or identities for both); its p asks whether the selected one is "
                      "ahead of every other candidate, corrected for having picked it from "
                      "the data (multiple comparisons with the best, bootstrap max "
                      "statistic). Recovered: 'yes' when the planted driver is selected and its "
                      "lead is significant (p < 0.05), 'tied' when it is the best or the "
                      "runner-up but the two cannot be told apart, else 'no'.")
        summary["recovered"] = recovered
        for method in data.selection:
            summary[f"selection/{method}"] = {
                roi: f for roi, f in ((roi, recovered.get(roi, {}).get(method)) for roi in rois)
                if f is not None}
        for method, con in data.contrasts.items():
            if con is None or con.sizes.get("contrast", 0) == 0:
                continue
            crow = []
            for c in map(str, con["contrast"].values):
                for roi in map(str, con["roi"].values):
                    x = con.sel(contrast=c, roi=roi)
                    crow.append([c, roi, float(x["diff"]), float(x["diff_ci_low"]),
                                 float(x["diff_ci_high"]), float(x["p_value_fwe"])])
            rep.heading(sec, f"Networks compared at the same layer ({method})")
            rep.table(sec, ["contrast", "ROI", "difference", "CI low", "CI high",
                            "p (corrected over layers)"], crow)
    elif best_rsa or best_enc:
        rows = []
        marks = {"yes": "ok", "no": "bad", "RSA only": "part", "encoding only": "part"}
        recovered = {}
        for roi in rois:
            br = best_rsa.get(roi) or []
            be = best_enc.get(roi) or []
            planted = data.planted.get(roi, "")
            row = [roi, planted]
            for cand in (br, be):
                top = f"{cand[0][1]}:{cand[0][2]}" if cand else ""
                rank = next((i + 1 for i, c in enumerate(cand) if f"{c[1]}:{c[2]}" == planted), "")
                row += [top, f"{cand[0][0]:.3f}" if cand else "", rank]
            if planted:
                hit = [row[2] == planted if br else None, row[5] == planted if be else None]
                recovered[roi] = hit
                found = [name for name, h in zip(("RSA", "encoding"), hit) if h]
                tried = [name for name, h in zip(("RSA", "encoding"), hit) if h is not None]
                row.append("yes" if found == tried else f"{found[0]} only" if found else "no")
            else:
                row.append("")
            rows.append(row)
        rep.heading(sec, "Best-matching layer per ROI")
        rep.table(sec, ["ROI", "planted driver", "best (RSA)", "RSA score", "planted rank (RSA)",
                        "best (encoding)", "mean R²", "planted rank (encoding)", "recovered"],
                  rows, marks=marks)
        if data.planted:
            rep.text(sec, "Candidates: every extracted layer of every network, plus the "
                          "reference features (pixel contrast energy, one-hot identity and "
                          "expression labels). 'planted rank' is the rank of the simulator's "
                          "driver among them (1 = recovered).")
        summary["recovered"] = recovered
    if data.responses is not None and data.layer_rdm is not None and best_rsa:
        pairs = []
        for roi in rois:
            if not best_rsa.get(roi):
                continue
            sel = np.asarray(data.responses["roi"].values).astype(str) == roi
            resp = data.responses.isel(voxel=np.flatnonzero(sel))
            per_sub = [F.rdm_matrix(resp.isel(voxel=np.flatnonzero(
                np.asarray(resp["subject"].values).astype(str) == s)).values)
                for s in sorted(set(map(str, resp["subject"].values)))]
            _, m, lyr = best_rsa[roi][0]
            pairs.append((roi, np.mean(per_sub, axis=0), f"{m}:{lyr}", data.layer_rdm(m, lyr)))
        rep.heading(sec, "RDMs")
        rep.figure(sec, F.fig_rdms(pairs),
                   "Brain RDM of each ROI (mean over subjects) beside the RDM of its "
                   "best-matching layer",
                   "Correlation distance (1 - r); stimuli in the same order in every panel.")
    if data.rsa:
        rep.heading(sec, "RSA profiles")
        rep.figure(sec, F.fig_rsa_profiles(data.rsa),
                   "RSA score by layer for each ROI with bootstrap intervals and the noise "
                   "ceiling band",
                   "Grey band: noise ceiling (lower to upper bound).")
    if data.encoding:
        rep.heading(sec, "Encoding")
        rep.figure(sec, F.fig_encoding_profiles(data.encoding),
                   "Mean held-out encoding R² over each ROI's voxels, by layer",
                   "Outer folds hold out whole identities.")
        if data.glass_brain and best_enc:
            # the network layer with the best mean R² over all ROI voxels
            nets = {m: ds for m, ds in data.encoding.items() if m != "reference"} \
                or data.encoding
            scored = [(float(np.nanmean(ds["r2"].sel(layer=lyr).values)), m, str(lyr))
                      for m, ds in nets.items() for lyr in ds["layer"].values]
            _, name, layer = max(s for s in scored if np.isfinite(s[0])) if any(
                np.isfinite(s[0]) for s in scored) else scored[0]
            ds = data.encoding[name]
            vals = np.asarray(ds["r2"].sel(layer=layer).values, float)
            xyz = np.stack([np.asarray(ds[c].values, float) for c in ("x", "y", "z")], axis=1)
            rep.figure(sec, F.fig_glass_brain(vals, xyz, title=f"{name}:{layer} R²"),
                       f"Glass-brain map of voxel R² for {name} layer {layer}",
                       "Held-out R² per voxel (averaged over subjects at the same coordinate).")
    if not (data.rsa or data.encoding or data.responses is not None):
        rep.text(sec, "No brain data in this run.")

    sec = rep.section("provenance", "Provenance")
    prov = data.provenance
    if prov.get("stages"):
        rep.table(sec, ["stage", "key", "status", "seconds"],
                  [[s, v.get("key") or "", v.get("status", ""), v.get("seconds", "")]
                   for s, v in prov["stages"].items()])
    if prov.get("seeds"):
        rep.heading(sec, "Seeds")
        rep.table(sec, ["what", "seed"], [[k, v] for k, v in prov["seeds"].items()])
    rep.heading(sec, "Package versions")
    rep.table(sec, ["package", "version"], list(package_versions().items()))
    if prov.get("config"):
        rep.heading(sec, "Configuration")
        rep.pre(sec, prov["config"])

    groups = result_groups(data)
    if results:
        write_results(groups, out_dir / "results.nc")
    with atomic_path(out_dir / "report.html", suffix=".html") as tmp:
        tmp.write_text(rep.render(), encoding="utf-8")
        tmp.chmod(0o644)
    summary["n_figures"] = rep.n_figures
    summary["groups"] = sorted(groups)
    return summary


def result_groups(data: ReportData) -> dict[str, Any]:
    """``{"group/sub": Dataset}`` of every result in ``data`` (the groups of results.nc)."""
    groups: dict[str, Any] = {}
    for (d, m), ds in data.transfer.items():
        groups[f"transfer/{d}/{m}"] = ds
    for m, ds in data.factors.items():
        groups[f"disentanglement/factor_variance/{m}"] = ds
    for m, ds in data.angles.items():
        groups[f"disentanglement/subspace_angles/{m}"] = ds
    for m, ds in data.rsa.items():
        groups[f"rsa/{m}"] = ds
    for m, ds in data.encoding.items():
        groups[f"encoding/{m}"] = ds
    for stage, ds in data.selection.items():
        groups[f"{stage}/selection"] = ds
    for stage, ds in data.contrasts.items():
        groups[f"{stage}/contrasts"] = ds
    if data.responses is not None:
        groups["brain/responses"] = data.responses.to_dataset(name="responses") \
            if hasattr(data.responses, "to_dataset") else data.responses
    return groups


def collect_run(ctx, *, figures: bool = True, stimuli=None) -> ReportData:
    """Gather a pipeline run's outputs (a StageContext of the report stage).

    The stage folders are read through :mod:`facebrain._runfolder`; ``ctx`` needs
    ``config``, ``inputs`` (stage name -> folder or None), ``keys``, ``statuses``
    and ``timings``. ``stimuli`` is the StimulusSet shown on the contact sheet
    (the pipeline passes the extract stage's set). ``figures=False`` skips what
    only the figures need (the stimulus images and layer RDMs): the runner uses
    it to write ``results.nc`` without a report.
    """
    import yaml

    cfg = ctx.config
    data = ReportData(title=cfg.report.title, max_identities=cfg.report.max_identities,
                      glass_brain=cfg.report.glass_brain, notes=list(getattr(cfg, "notes", [])))
    if figures:
        data.stimuli = stimuli
    train = ctx.inputs.get("train")
    if train is not None:
        for m in cfg.models:
            hist = read_metrics(train, m.name)
            if hist is not None:
                data.training[m.name] = hist
    tr = ctx.inputs.get("transfer")
    if tr is not None:
        for d in cfg.transfer.directions:
            for m, ds in read_probes(tr, d.label).items():
                data.transfer[(d.label, m)] = ds
        for m in cfg.models:
            for prefix, target in (("factors", data.factors), ("angles", data.angles)):
                f = stage_file(tr, prefix, m.name)
                if f.is_file():
                    target[m.name] = read_netcdf(f)
    brain = ctx.inputs.get("brain")
    if brain is not None:
        data.responses = read_responses(brain)
    names = [m.name for m in cfg.models] + [REFERENCE]
    for stage, target in (("rsa", data.rsa), ("encoding", data.encoding)):
        folder = ctx.inputs.get(stage)
        if folder is None:
            continue
        results, selection, contrasts = read_scores(folder, stage, first=names)
        target.update(results)
        if selection is not None:
            data.selection[stage] = selection
        if contrasts is not None:
            data.contrasts[stage] = contrasts
    ext = ctx.inputs.get("extract")
    if figures and ext is not None and data.responses is not None:
        ids = [str(s) for s in data.responses["stimulus"].values]

        rsa_dir = ctx.inputs.get("rsa")
        opened: dict[str, Any] = {}  # a model best in several ROIs is opened once

        def layer_rdm(model: str, layer: str) -> np.ndarray:
            if model not in opened:
                saved = stage_file(rsa_dir, "baseline", model) if rsa_dir else None
                if saved is not None and saved.is_file():  # a baseline from the rsa stage
                    opened[model] = read_netcdf(saved)
                else:
                    opened[model] = load_activations(ext, model)
            acts = opened[model]
            x = np.asarray(acts[layer].sel(stimulus=ids).values, float).reshape(len(ids), -1)
            return F.rdm_matrix(x)

        data.layer_rdm = layer_rdm
    if cfg.brain.source == "simulate":
        for roi, d in cfg.brain.drivers.items():
            if d.kind == "layer":
                data.planted[roi] = f"{d.model}:{d.layer}"
            elif d.kind == "pixels":
                data.planted[roi] = f"{REFERENCE}:pixels"
            elif d.labels and len(d.labels) == 1:
                data.planted[roi] = f"{REFERENCE}:{d.labels[0]}_labels"
    seeds = {"seed": cfg.seed}
    for name, s in cfg.stimuli.items():
        seeds[f"stimuli.{name}"] = s.seed if s.seed is not None else cfg.seed
    for i, m in enumerate(cfg.models):
        seeds[f"models.{m.name}"] = m.seed if m.seed is not None else cfg.seed + i
    stages = {s: {"key": k, "status": ctx.statuses.get(s, ""),
                  "seconds": round(float(ctx.timings.get(s, 0.0)), 2)}
              for s, k in ctx.keys.items()}
    data.provenance = {"config": yaml.safe_dump(cfg.to_dict(), sort_keys=False),
                       "seeds": seeds, "stages": stages}
    return data


def build_report(ctx, *, stimuli=None, beside=None) -> dict:
    """The pipeline's report stage: collect the run's results, write report.html + results.nc.

    ``stimuli``: the StimulusSet of the contact sheet (see :func:`collect_run`).
    ``beside``: optional ``beside(fn, args)`` that starts ``fn(*args)`` elsewhere and
    returns a job with ``result()`` and ``cancel()``; ``results.nc`` is then written by it
    while the figures are drawn here (the same file: :func:`write_results` of the same
    groups).
    """
    data = collect_run(ctx, stimuli=stimuli)
    if beside is None:
        return write_report(data, ctx.dir)
    job = beside(write_results, (result_groups(data), Path(ctx.dir) / "results.nc"))
    try:
        summary = write_report(data, ctx.dir, results=False)
        job.result()
    finally:
        job.cancel()
    return summary
