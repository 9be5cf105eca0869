"""BrainResponses: single-trial betas of ROI voxels, labelled for the RSA and encoding rooms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .._boundary import public
from .._utils import check_same_stimuli
from ..errors import DataFormatError, ParameterError, ParameterTypeError, ShapeError
from ._reliability import split_half_reliability, voxel_noise_ceiling
from ._rois import _to_grid

__all__ = ["concat_responses", "roi_responses"]


@public
def roi_responses(
    betas: xr.DataArray,
    rois: Mapping[str, object],
    *,
    subject: str,
    average_repeats: bool = True,
    space: str = "MNI152NLin2009cAsym",
    source: str = "",
) -> xr.DataArray:
    """Select ROI voxels from single-trial betas and label them as BrainResponses.

    Parameters
    ----------
    betas : DataArray of shape (n_stimuli, n_voxels) or (n_stimuli, n_repeats, n_voxels)
        Output of :func:`single_trial_betas` (needs coords ``i, j, k`` and attrs
        ``affine``, ``grid_shape``).
    rois : mapping name -> image or path
        Binary masks (e.g. from :func:`default_rois`); resampled (nearest) to the
        betas grid. A voxel in two ROIs appears once under each.
    subject : str
        Subject label stored on every voxel.
    average_repeats : bool
        With a ``repeat`` dim: add per-voxel ``reliability`` (split-half,
        Spearman-Brown) and ``noise_ceiling`` coords, then average repeats
        (``False`` keeps the ``repeat`` dim).
    space, source : str
        Stored in attrs.

    Returns
    -------
    DataArray named ``"responses"``, dims ``(stimulus, voxel)`` (or with ``repeat``),
    voxel index ``"{subject}|{roi}|{n}"``, voxel coords ``roi, subject, x, y, z, i, j, k``
    (+ ``reliability``, ``noise_ceiling`` when repeats exist); attrs ``space, source, tr``
    (and, from the betas, ``slice_time_ref``, ``signal_scaling``, ``confounds``).

    Examples
    --------
    >>> from facebrain.brain import default_rois, load_bids, simulate, single_trial_betas
    >>> from facebrain.stimuli import synthetic_faces
    >>> stim = synthetic_faces(3, ["neutral", "happy"], ["S"], image_size=16)
    >>> root = simulate("bids", stim, subjects=2, runs=2, repeats=1, rois=["rFFA"])
    >>> def responses(subject):
    ...     betas, mask = single_trial_betas(load_bids(root, subject=subject, task="faces"))
    ...     return roi_responses(betas, default_rois(mask, names=["rFFA"]), subject=subject)
    >>> resp = responses("01")
    >>> resp.dims, resp.sizes["stimulus"], str(resp["roi"].values[0])
    (('stimulus', 'voxel'), 6, 'rFFA')
    """
    if not isinstance(betas, xr.DataArray):
        raise ParameterTypeError("roi_responses: betas must be the xr.DataArray single_trial_betas "
                                 f"returns; got {type(betas).__name__}.")
    for c in ("i", "j", "k"):
        if c not in betas.coords:
            raise DataFormatError(
                f"betas lack the voxel coord {c!r}; pass the output of single_trial_betas."
            )
    if "affine" not in betas.attrs or "grid_shape" not in betas.attrs:
        raise DataFormatError("betas lack attrs 'affine'/'grid_shape'; pass single_trial_betas output.")
    if not rois:
        raise ParameterError("rois is empty; pass a mapping name -> mask image.")
    subject = str(subject).removeprefix("sub-")
    affine = np.asarray(betas.attrs["affine"], dtype=float).reshape(4, 4)
    shape = tuple(int(v) for v in betas.attrs["grid_shape"])
    flat = np.ravel_multi_index(
        (betas["i"].values, betas["j"].values, betas["k"].values), shape
    )
    parts = []
    for name, mask in rois.items():
        m = _to_grid(mask, affine, shape, where=f"ROI {name!r}") != 0
        sel = np.flatnonzero(m.ravel()[flat])
        if sel.size == 0:
            raise DataFormatError(
                f"ROI {name!r} has no voxel among the {betas.sizes['voxel']} modelled voxels "
                f"(its {int(m.sum())} voxels lie outside the betas mask). Check the ROI's space, "
                "or model those voxels."
            )
        part = betas.isel(voxel=sel)
        vox = [f"{subject}|{name}|{n}" for n in range(sel.size)]
        part = part.assign_coords(
            voxel=np.asarray(vox, dtype=object).astype(str),
            roi=("voxel", np.full(sel.size, str(name), dtype=object).astype(str)),
            subject=("voxel", np.full(sel.size, subject, dtype=object).astype(str)),
        )
        parts.append(part)
    out = xr.concat(parts, dim="voxel", coords="minimal", compat="override", join="exact")
    if "repeat" in out.dims:
        n_rep = out.sizes["repeat"]
        if n_rep >= 2:
            rel = split_half_reliability(out)
            nc = voxel_noise_ceiling(out)
            out = out.assign_coords(reliability=("voxel", rel.values),
                                    noise_ceiling=("voxel", nc.values))
        if average_repeats:
            out = out.mean("repeat", skipna=True, keep_attrs=True)
    tr = betas.attrs.get("tr", float("nan"))
    out.attrs = {"space": space, "source": source or "betas", "tr": float(tr),
                 "method": betas.attrs.get("method", "")}
    for key in ("slice_time_ref", "slice_time_ref_source", "signal_scaling", "confounds"):
        if key in betas.attrs:  # the GLM's timing and nuisance model travel with the data
            out.attrs[key] = betas.attrs[key]
    out.name = "responses"
    return out.transpose("stimulus", *[d for d in out.dims if d != "stimulus"])


@public
def concat_responses(responses: Sequence[xr.DataArray]) -> xr.DataArray:
    """Concatenate BrainResponses of several subjects along ``voxel``.

    Every input must hold the same stimulus ids (order may differ; the first
    input's order is used); ``repeat`` dims are padded with NaN to the longest.

    Examples
    --------
    >>> from facebrain.brain import default_rois, roi_responses, load_bids, simulate, single_trial_betas
    >>> from facebrain.stimuli import synthetic_faces
    >>> stim = synthetic_faces(3, ["neutral", "happy"], ["S"], image_size=16)
    >>> root = simulate("bids_two", stim, subjects=2, runs=2, repeats=1, rois=["rFFA"])
    >>> def responses(subject):
    ...     betas, mask = single_trial_betas(load_bids(root, subject=subject, task="faces"))
    ...     return roi_responses(betas, default_rois(mask, names=["rFFA"]), subject=subject)
    >>> both = concat_responses([responses("01"), responses("02")])
    >>> sorted(set(both["subject"].values.tolist()))
    ['01', '02']
    """
    if isinstance(responses, (str, xr.DataArray)) or not all(
            isinstance(r, xr.DataArray) for r in responses):
        raise ParameterTypeError("concat_responses: responses must be a list of BrainResponses "
                                 "(xr.DataArray, one per subject); got "
                                 f"{type(responses).__name__}.")
    responses = list(responses)
    if not responses:
        raise ParameterError("responses is empty.")
    first = responses[0]
    order = first["stimulus"].values
    aligned = []
    for n, r in enumerate(responses):
        check_same_stimuli(order, r["stimulus"].values, left_name="responses[0]",
                           right_name=f"responses[{n}]")
        if ("repeat" in r.dims) != ("repeat" in first.dims):
            raise ShapeError(
                f"responses[{n}] {'has' if 'repeat' in r.dims else 'lacks'} a repeat dim unlike "
                "responses[0]; average repeats in all or none."
            )
        # per-subject trial bookkeeping would be mislabelled after concatenation
        aligned.append(r.sel(stimulus=order).drop_vars(["run", "onset"], errors="ignore"))
    dup = set()
    seen = set()
    for r in aligned:
        for v in r["voxel"].values:
            (dup if v in seen else seen).add(v)
    if dup:
        raise ParameterError(f"voxel ids repeat across inputs (same subject twice?): {sorted(dup)[:5]}.")
    out = xr.concat(aligned, dim="voxel", coords="minimal", compat="override", join="outer",
                    combine_attrs="drop_conflicts")
    out.name = "responses"
    return out
