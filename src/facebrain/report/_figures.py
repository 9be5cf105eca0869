"""Matplotlib figures of the report; each function returns a Figure (or None if no data).

Figures use the non-interactive Agg backend and are closed by the caller
after being encoded (see :func:`facebrain.report._html.figure_to_base64`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "fig_confusion",
    "fig_contact_sheet",
    "fig_disentanglement",
    "fig_encoding_profiles",
    "fig_glass_brain",
    "fig_rdms",
    "fig_rsa_profiles",
    "fig_training",
    "fig_transfer",
    "rdm_matrix",
    "voxel_image",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


#: labels are data (model, layer, ROI, person names), never math: a '$' stays a '$'
PLAIN_TEXT = {"text.parse_math": False}


def _plain_text(fn):
    """Build the figure with matplotlib's mathtext off (a ``$`` in a label would abort it)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(PLAIN_TEXT):
            return fn(*args, **kwargs)

    return wrapper


def _colors(n: int):
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


# --------------------------------------------------------------------- stimuli
@_plain_text
def fig_contact_sheet(stimuli, *, max_identities: int = 8, size: int = 64):
    """Identity (rows) x expression (columns) grid of one view, first session."""
    from ..stimuli import CANONICAL_EXPRESSIONS

    plt = _plt()
    table = stimuli.table
    mask = np.ones(len(table), dtype=bool)
    if "view" in table.columns and (table["view"] == "S").any():
        mask &= (table["view"] == "S").to_numpy()
    if "session" in table.columns:
        first = sorted(table.loc[mask, "session"].astype(str).unique())[:1]
        mask &= table["session"].astype(str).isin(first).to_numpy()
    sub = table[mask]
    idents = sorted(sub["identity"].astype(str).unique())[:max_identities]
    present = set(sub["expression"].astype(str))
    exprs = [e for e in CANONICAL_EXPRESSIONS if e in present]
    exprs += sorted(present - set(exprs))
    if not idents or not exprs:
        return None
    fig, axes = plt.subplots(len(idents), len(exprs), squeeze=False,
                             figsize=(1.2 * len(exprs) + 0.6, 1.2 * len(idents) + 0.4))
    for r, ident in enumerate(idents):
        for c, expr in enumerate(exprs):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            rows = sub[(sub["identity"].astype(str) == ident) & (sub["expression"].astype(str) == expr)]
            if len(rows):
                ax.imshow(stimuli.load(str(rows.index[0]), size=size))
            else:
                ax.set_facecolor("0.9")
            if r == 0:
                ax.set_title(expr, fontsize=8)
            if c == 0:
                ax.set_ylabel(ident, fontsize=7)
    fig.set_layout_engine("tight", pad=0.3)
    return fig


# -------------------------------------------------------------------- training
@_plain_text
def fig_training(metrics: Mapping[str, Sequence[dict]]):
    """Loss and accuracy per epoch for every trained network (train and validation)."""
    plt = _plt()
    metrics = {k: v for k, v in metrics.items() if v}
    if not metrics:
        return None
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(9, 3.2))
    for color, (name, rows) in zip(_colors(len(metrics)), metrics.items()):
        epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        keys = sorted({k for r in rows for k, v in r.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        for key in keys:
            ax = ax_l if "loss" in key else ax_a if "acc" in key else None
            if ax is None:
                continue
            vals = [r.get(key, np.nan) for r in rows]
            style = "--" if key.startswith("val") else "-"
            ax.plot(epochs, vals, style, color=color, marker="o", ms=3, label=f"{name} {key}")
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_l, ax_a):
        ax.legend(fontsize=6)
    fig.set_layout_engine("tight")
    return fig


# -------------------------------------------------------------------- transfer
@_plain_text
def fig_transfer(results: Mapping[str, object], *, title: str = ""):
    """Accuracy by layer (mean +- SEM over folds) per network, chance and the null band.

    ``results`` maps a network name to its TransferResult. Networks have
    their own layers, so each gets its own x positions (layer order kept).
    """
    plt = _plt()
    if not results:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.6))
    chance_vals = []
    null_label = "permutation null 95%"
    n_x = max(ds.sizes["layer"] for ds in results.values())
    for color, (name, ds) in zip(_colors(len(results)), results.items()):
        layers = [str(v) for v in ds["layer"].values]
        x = np.arange(len(layers))
        mean = np.asarray(ds["accuracy_mean"].values, float)
        sem = np.asarray(ds["accuracy_sem"].values, float) if "accuracy_sem" in ds else 0 * mean
        kind = str(ds.attrs.get("candidate_kind", "network"))
        label = name
        if "p_value_fwe" in ds and np.isfinite(ds["p_value_fwe"].values).any():
            k = int(np.nanargmax(mean))
            label = f"{name} (best {layers[k]}, p_corr={float(ds['p_value_fwe'].values[k]):.3g})"
        if kind == "pixels" and len(layers) == 1:  # one 'layer': a reference line
            ax.axhline(mean[0], color=color, ls="--", lw=1.2, label=label)
            ax.axhspan(mean[0] - sem[0], mean[0] + sem[0], color=color, alpha=0.12, lw=0)
        else:
            ax.errorbar(x, mean, yerr=sem, color=color, marker="o", capsize=3, label=label,
                        ls="--" if kind == "untrained" else "-")
        if "null_accuracy" in ds and ds["null_accuracy"].size and "permutation" in ds[
                "null_accuracy"].dims and ds.sizes.get("permutation", 0) > 1 and kind != "pixels":
            null = np.asarray(ds["null_accuracy"].transpose("layer", "permutation").values, float)
            lo, hi = np.nanpercentile(null, [2.5, 97.5], axis=1)
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0, label=null_label)
            null_label = None  # one legend entry for every network's band
        if "chance" in ds:
            chance_vals.append(float(np.nanmean(np.asarray(ds["chance"].values, float))))
        if len(layers) == n_x and kind != "pixels":
            ax.set_xticks(x, layers, rotation=30, fontsize=8)
    if chance_vals:
        ax.axhline(np.mean(chance_vals), color="k", ls=":", lw=1, label="chance")
    ax.set(ylabel="held-out accuracy", ylim=(0, 1.02), title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.set_layout_engine("tight")
    return fig


@_plain_text
def fig_confusion(ds, layer: str, *, title: str = ""):
    """Row-normalised confusion matrix of a TransferResult at one layer."""
    plt = _plt()
    if "confusion" not in ds:
        return None
    conf = ds["confusion"].sel(layer=layer)
    dims = [d for d in conf.dims]
    true_dim = "true" if "true" in dims else dims[0]
    pred_dim = "predicted" if "predicted" in dims else dims[1]
    mat = np.asarray(conf.transpose(true_dim, pred_dim).values, float)
    mat = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1e-12)
    labels_t = [str(v) for v in conf[true_dim].values]
    labels_p = [str(v) for v in conf[pred_dim].values]
    n = max(len(labels_t), 2)
    side = 1.0 + 0.45 * n if n <= 12 else 5.0  # many classes: a compact heat map
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="Blues")
    if n <= 20:
        ax.set_xticks(range(len(labels_p)), labels_p, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels_t)), labels_t, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of row")
    fig.set_layout_engine("tight")
    return fig


# ------------------------------------------------------------ disentanglement
_SKIP = ("ss_", "n_dims", "n_")


def _layer_series(ds, prefer: Sequence[str] = ()):
    """(variable name, extra-dim label, values by layer) of the series worth plotting.

    Variables named in ``prefer`` come first and, when any is present, are the only
    ones used; counts and totals (``ss_*``, ``n_*``) are left out.
    """
    names = [n for n in prefer if n in ds.data_vars] or [
        str(n) for n in ds.data_vars if not str(n).startswith(_SKIP)]
    out = []
    for name in names:
        var = ds[name]
        if "layer" not in var.dims:
            continue
        other = [d for d in var.dims if d != "layer"]
        if not other:
            out.append((str(name), "", np.asarray(var.values, float)))
        elif len(other) == 1 and var.sizes[other[0]] <= 12:
            for lab in var[other[0]].values:
                out.append((str(name), str(lab), np.asarray(var.sel({other[0]: lab}).values, float)))
    return out


@_plain_text
def fig_disentanglement(factors: Mapping[str, object], angles: Mapping[str, object]):
    """Factor variance fractions and identity/expression subspace angles, by layer.

    Top row: fraction of unit variance per factor (and interaction / residual).
    Bottom row: minimum and mean principal angle (degrees, left axis) and the
    congruence coefficient (right axis, 0-1).
    """
    plt = _plt()
    models = list(dict.fromkeys(list(factors) + list(angles)))
    if not models:
        return None
    fig, axes = plt.subplots(2, len(models), squeeze=False, figsize=(3.8 * len(models), 5.8))
    for j, name in enumerate(models):
        ax = axes[0, j]
        ds = factors.get(name)
        if ds is None:
            ax.axis("off")
        else:
            x = np.arange(ds.sizes["layer"])
            for color, (var, lab, vals) in zip(_colors(20), _layer_series(ds, ("fraction",))):
                ax.plot(x, vals, marker="o", ms=3, color=color, label=lab or var)
            ax.set_xticks(x, [str(v) for v in ds["layer"].values], rotation=30, fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{name}: factor variance", fontsize=9)
            ax.set_ylabel("fraction of unit variance", fontsize=8)
            ax.legend(fontsize=6)
        ax = axes[1, j]
        ds = angles.get(name)
        if ds is None:
            ax.axis("off")
            continue
        x = np.arange(ds.sizes["layer"])
        series = _layer_series(ds, ("min_angle", "mean_angle"))
        for color, (var, lab, vals) in zip(_colors(20), series):
            ax.plot(x, vals, marker="o", ms=3, color=color, label=f"{var} {lab}".strip())
        ax.set_ylabel("principal angle (deg)", fontsize=8)
        ax.set_ylim(0, 90)
        if "congruence" in ds and "layer" in ds["congruence"].dims:
            twin = ax.twinx()
            twin.plot(x, np.asarray(ds["congruence"].values, float), "k--", marker="s", ms=3,
                      label="congruence")
            twin.set_ylim(0, 1.02)
            twin.set_ylabel("congruence", fontsize=8)
            twin.legend(fontsize=6, loc="lower right")
        ax.set_xticks(x, [str(v) for v in ds["layer"].values], rotation=30, fontsize=7)
        ax.set_title(f"{name}: identity vs expression subspaces", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
    fig.set_layout_engine("tight")
    return fig


# ----------------------------------------------------------------------- brain
def rdm_matrix(x: np.ndarray) -> np.ndarray:
    """Correlation-distance RDM (1 - Pearson r) of rows of ``x`` (n_stimuli, n_features)."""
    x = np.asarray(x, float)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    z = x / norm
    return 1.0 - z @ z.T


@_plain_text
def fig_rdms(pairs: Sequence[tuple[str, np.ndarray, str, np.ndarray]], *, order_note: str = ""):
    """One row per ROI: the brain RDM beside the best-matching layer's RDM.

    ``pairs``: ``(roi, brain_rdm, layer_label, layer_rdm)``.
    """
    plt = _plt()
    if not pairs:
        return None
    fig, axes = plt.subplots(len(pairs), 2, squeeze=False, figsize=(6, 2.8 * len(pairs)))
    for r, (roi, brdm, label, lrdm) in enumerate(pairs):
        for c, (mat, title) in enumerate(((brdm, f"{roi} (brain)"), (lrdm, label))):
            ax = axes[r, c]
            off = mat[~np.eye(len(mat), dtype=bool)]
            lo, hi = np.nanpercentile(off, [2, 98]) if off.size else (0, 1)
            im = ax.imshow(mat, cmap="viridis", vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    if order_note:
        fig.suptitle(order_note, fontsize=8)
    fig.set_layout_engine("tight")
    return fig


def _profile_panels(results: Mapping[str, object], ylabel: str, draw, finish=None):
    """One panel per ROI; each candidate's layers side by side on the x axis, in order.

    ``draw(ax, ds, roi, x, color, name, panel) -> bool`` plots one candidate in one
    ROI's panel at positions ``x`` (False: the candidate has no such ROI, nothing
    drawn); ``panel`` is a dict that lives for one panel. ``finish(ax)`` runs after
    every candidate of a panel is drawn.
    """
    plt = _plt()
    if not results:
        return None
    rois = list(dict.fromkeys(str(r) for ds in results.values() for r in ds["roi"].values))
    fig, axes = plt.subplots(1, len(rois), squeeze=False, figsize=(3.4 * len(rois), 3.4),
                             sharey=True)
    for k, roi in enumerate(rois):
        ax = axes[0, k]
        panel: dict = {}
        offset = 0
        ticks, labels = [], []
        for color, (name, ds) in zip(_colors(len(results)), results.items()):
            layers = [str(v) for v in ds["layer"].values]
            x = offset + np.arange(len(layers))
            if not draw(ax, ds, roi, x, color, name, panel):
                continue
            ticks += list(x)
            labels += [f"{name[:8]}:{lyr}" for lyr in layers]
            offset += len(layers) + 1
        if finish is not None:
            finish(ax)
        ax.set_xticks(ticks, labels, rotation=70, fontsize=6)
        ax.set_title(roi, fontsize=10)
        if k == 0:
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=6)
    fig.set_layout_engine("tight")
    return fig


def _draw_rsa(ax, ds, roi, x, color, name, panel) -> bool:
    if roi not in [str(r) for r in ds["roi"].values]:
        return False
    mean = np.asarray(ds["score_mean"].sel(roi=roi).values, float)
    ax.plot(x, mean, marker="o", ms=3, color=color, label=name)
    if "ci_low" in ds and "ci_high" in ds:
        lo = np.asarray(ds["ci_low"].sel(roi=roi).values, float)
        hi = np.asarray(ds["ci_high"].sel(roi=roi).values, float)
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    if not panel.get("ceiling") and "ceiling_lower" in ds and "ceiling_upper" in ds:
        cl = float(ds["ceiling_lower"].sel(roi=roi))
        cu = float(ds["ceiling_upper"].sel(roi=roi))
        if np.isfinite(cl) and np.isfinite(cu):  # one band per panel
            ax.axhspan(cl, cu, color="0.6", alpha=0.3, lw=0, label="noise ceiling")
            panel["ceiling"] = True
    return True


def _draw_encoding(ax, ds, roi, x, color, name, panel) -> bool:
    sel = np.asarray(ds["roi"].values).astype(str) == roi
    if not sel.any():
        return False
    r2 = ds["r2"].isel(voxel=np.flatnonzero(sel)).transpose("layer", "voxel")
    vals = np.asarray(r2.values, float)
    mean = np.nanmean(vals, axis=1)
    sem = np.nanstd(vals, axis=1) / np.sqrt(max(vals.shape[1], 1))
    ax.errorbar(x, mean, yerr=sem, marker="o", ms=3, color=color, capsize=2, label=name)
    return True


@_plain_text
def fig_rsa_profiles(results: Mapping[str, object]):
    """RSA score by layer for each ROI (one panel per ROI), with CI and noise-ceiling band."""
    return _profile_panels(results, "RSA score", _draw_rsa)


@_plain_text
def fig_encoding_profiles(results: Mapping[str, object]):
    """Mean held-out R² over each ROI's voxels, by layer (one panel per ROI)."""
    return _profile_panels(results, "held-out R²", _draw_encoding,
                           finish=lambda ax: ax.axhline(0, color="k", lw=0.5))


def voxel_image(values: np.ndarray, xyz: np.ndarray):
    """A NIfTI image holding ``values`` at mm coordinates ``xyz`` (n_voxels, 3).

    The grid spacing is the smallest step between distinct coordinates on each
    axis; values landing in the same grid cell (several subjects) are averaged.
    """
    import nibabel as nib

    xyz = np.asarray(xyz, float)
    values = np.asarray(values, float)
    steps = []
    for a in range(3):
        u = np.unique(np.round(xyz[:, a], 3))
        d = np.diff(u)
        d = d[d > 1e-6]
        steps.append(float(d.min()) if d.size else 2.0)
    step = np.asarray(steps)
    origin = xyz.min(axis=0) - 2 * step
    ijk = np.rint((xyz - origin) / step).astype(int)
    shape = tuple(ijk.max(axis=0) + 3)
    total = np.zeros(shape)
    count = np.zeros(shape)
    ok = np.isfinite(values)
    np.add.at(total, tuple(ijk[ok].T), values[ok])
    np.add.at(count, tuple(ijk[ok].T), 1)
    data = np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
    affine = np.diag([*step, 1.0])
    affine[:3, 3] = origin
    return nib.Nifti1Image(data, affine)


@_plain_text
def fig_glass_brain(values: np.ndarray, xyz: np.ndarray, *, title: str = ""):
    """nilearn glass-brain projection of voxel values (e.g. best-layer R²)."""
    plt = _plt()
    from nilearn import plotting

    values = np.clip(np.nan_to_num(np.asarray(values, float)), 0, None)
    img = voxel_image(values, xyz)
    fig = plt.figure(figsize=(8, 3))
    vmax = float(values.max()) if values.size and values.max() > 0 else 1.0
    plotting.plot_glass_brain(img, figure=fig, colorbar=True, cmap="hot", vmin=0, vmax=vmax,
                              threshold=0.0 if vmax > 0 else None, plot_abs=False, title=title,
                              display_mode="lyrz")
    return fig
