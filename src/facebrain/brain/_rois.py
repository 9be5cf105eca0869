"""Regions of interest: from masks, atlases, MNI spheres, and the named face-network defaults.

An ROI set is a plain ``dict`` mapping a name to a binary ``Nifti1Image``
(uint8, 1 inside) on one reference grid, so it works with nilearn directly.
Masks on another grid are resampled with nearest-neighbour interpolation
(:func:`nilearn.image.resample_to_img`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.image import resample_to_img

from .._boundary import public
from .._utils import check_label, check_path_like
from ..errors import (
    DataFormatError,
    IsAFolderError,
    MissingFileError,
    MissingKeyError,
    ParameterError,
    ParameterTypeError,
)

__all__ = [
    "default_rois",
    "face_roi_table",
    "load_roi_masks",
    "rois_from_atlas",
    "rois_from_masks",
    "sphere_rois",
]


def nib_load(path, where: str):
    """``nibabel.load(path)``, or a DataFormatError naming ``where`` when it is no NIfTI file."""
    from nibabel.filebasedimages import ImageFileError

    if os.path.isdir(path):
        raise IsAFolderError(f"{where}: {path} is a folder; pass a NIfTI file (.nii or .nii.gz).")
    try:
        return nib.load(str(path))
    except ImageFileError as err:
        raise DataFormatError(f"{where}: {path} is not a NIfTI image nibabel can read ({err}); "
                              "pass a .nii or .nii.gz file.") from err


def _img(x, where: str):
    if isinstance(x, (str, os.PathLike)):
        if not os.path.exists(x):
            raise MissingFileError(f"{where}: {x} does not exist.")
        return nib_load(x, where)
    if not hasattr(x, "affine"):
        raise ParameterTypeError(f"{where}: expected a NIfTI image or path; got {type(x).__name__}.")
    return x


def _grid(reference) -> tuple[np.ndarray, tuple[int, int, int]]:
    ref = _img(reference, "reference")
    return np.asarray(ref.affine, dtype=float), tuple(int(v) for v in ref.shape[:3])


def _to_grid(img, affine, shape, *, where: str) -> np.ndarray:
    """3D data of ``img`` on the (affine, shape) grid, nearest-neighbour."""
    img = _img(img, where)
    if len(img.shape) == 4:
        if img.shape[3] != 1:
            raise DataFormatError(f"{where}: expected a 3D mask; got shape {img.shape}.")
        img = nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine)
    if img.shape[:3] != shape or not np.allclose(img.affine, affine, atol=1e-4):
        target = nib.Nifti1Image(np.zeros(shape, np.int8), affine)
        img = resample_to_img(img, target, interpolation="nearest", force_resample=True,
                              copy_header=True)
    return np.nan_to_num(np.asarray(img.dataobj))


def _finish(name: str, data: np.ndarray, affine, shape, brain_mask, *, source: str):
    sel = data.astype(bool)
    if not sel.any():
        raise DataFormatError(
            f"ROI {name!r} is empty ({source}); check the mask/labels and that it overlaps "
            "the reference grid."
        )
    if brain_mask is not None:
        bm = _to_grid(brain_mask, affine, shape, where="brain_mask") != 0
        sel &= bm
        if not sel.any():
            raise DataFormatError(
                f"ROI {name!r} is empty after intersecting with the brain mask ({source}); "
                "it lies outside the brain mask. Move or enlarge it, or drop it."
            )
    return nib.Nifti1Image(sel.astype(np.uint8), affine)


@public
def face_roi_table() -> pd.DataFrame:
    """The named face-network ROIs shipped in ``facebrain/data/face_rois.csv``.

    Returns
    -------
    DataFrame indexed by ``roi`` with ``hemisphere, region, x, y, z`` (MNI mm),
    ``radius_mm``, ``coordinate_source``, ``region_reference`` and ``note``.

    Examples
    --------
    >>> face_roi_table().loc["rFFA", ["x", "y", "z"]].tolist()
    [42, -50, -20]
    """
    path = resources.files("facebrain") / "data" / "face_rois.csv"
    with resources.as_file(path) as p:
        return pd.read_csv(p).set_index("roi")


@public
def sphere_rois(
    centers: Mapping[str, Sequence[float]],
    reference,
    *,
    radius: float | Mapping[str, float] = 8.0,
    brain_mask=None,
) -> dict[str, nib.Nifti1Image]:
    """Spheres of ``radius`` mm around world (MNI) coordinates on the reference grid.

    Parameters
    ----------
    centers : mapping name -> (x, y, z) in mm
    reference : image or path
        Defines the grid (affine and first three dims), e.g. a BOLD run.
    radius : float or mapping name -> float
        Sphere radius in mm; a voxel belongs when its centre is within it.
    brain_mask : image or path, optional
        ROIs are intersected with it; an ROI left empty raises.

    Returns
    -------
    dict name -> Nifti1Image (uint8)

    Examples
    --------
    >>> ref = nib.Nifti1Image(np.zeros((30, 26, 14)), np.array(
    ...     [[4., 0, 0, -60], [0, 4, 0, -104], [0, 0, 4, -32], [0, 0, 0, 1]]))
    >>> rois = sphere_rois({"rFFA": (42, -50, -20)}, ref, radius=6)
    >>> int(rois["rFFA"].get_fdata().sum())
    12
    """
    affine, shape = _grid(reference)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    lo = nib.affines.apply_affine(affine, np.zeros(3) - 0.5)
    hi = nib.affines.apply_affine(affine, np.array(shape) - 0.5)
    ext_lo, ext_hi = np.minimum(lo, hi), np.maximum(lo, hi)
    out = {}
    for name, c in centers.items():
        c = np.asarray(c, dtype=float)
        shown = tuple(float(v) for v in np.ravel(c))
        if c.shape != (3,) or not np.isfinite(c).all():
            raise ParameterError(f"ROI {name!r}: centre must be three finite numbers (x, y, z); got {shown}.")
        r = float(radius[name] if isinstance(radius, Mapping) else radius)
        if not r > 0:
            raise ParameterError(f"ROI {name!r}: radius must be > 0 mm; got {r}.")
        if np.any(c < ext_lo) or np.any(c > ext_hi):
            raise DataFormatError(
                f"ROI {name!r}: centre {shown} mm lies outside the image, whose field of view "
                f"spans x {ext_lo[0]:.0f}..{ext_hi[0]:.0f}, y {ext_lo[1]:.0f}..{ext_hi[1]:.0f}, "
                f"z {ext_lo[2]:.0f}..{ext_hi[2]:.0f} mm. Check the coordinate space (MNI mm?) "
                "or use a reference image that covers it."
            )
        inside = np.sum((xyz - c) ** 2, axis=1) <= r * r + 1e-9
        if not inside.any():
            raise DataFormatError(
                f"ROI {name!r}: no voxel centre lies within {r} mm of {shown}; increase radius "
                "(voxels are larger than the sphere)."
            )
        out[name] = _finish(name, inside.reshape(shape), affine, shape, brain_mask,
                            source=f"sphere r={r} mm at {shown}")
    return out


@public
def default_rois(
    reference,
    *,
    names: Sequence[str] | None = None,
    radius: float | None = None,
    brain_mask=None,
) -> dict[str, nib.Nifti1Image]:
    """The named face-network spheres of :func:`face_roi_table` on the reference grid.

    Parameters
    ----------
    reference : image or path
        An MNI-space image defining the grid.
    names : list of str, optional
        Subset of ``face_roi_table().index`` (default: all).
    radius : float, optional
        Overrides every ROI's ``radius_mm``.
    brain_mask : image or path, optional

    Examples
    --------
    >>> ref = nib.Nifti1Image(np.zeros((33, 21, 15)), np.array(
    ...     [[4., 0, 0, -64], [0, 4, 0, -104], [0, 0, 4, -32], [0, 0, 0, 1]]))
    >>> sorted(default_rois(ref))[:3]
    ['EVC', 'lFFA', 'lOFA']
    """
    table = face_roi_table()
    if names is None:
        names = list(table.index)
    unknown = [n for n in names if n not in table.index]
    if unknown:
        raise MissingKeyError(f"unknown default ROI(s) {unknown}; known: {list(table.index)}.")
    centers = {n: table.loc[n, ["x", "y", "z"]].to_numpy(float) for n in names}
    radii = {n: float(radius if radius is not None else table.loc[n, "radius_mm"]) for n in names}
    return sphere_rois(centers, reference, radius=radii, brain_mask=brain_mask)


@public
def rois_from_masks(
    masks: Mapping[str, object], reference, *, brain_mask=None
) -> dict[str, nib.Nifti1Image]:
    """ROIs from binary NIfTI masks (images or paths); nonzero voxels are inside.

    Masks on another grid are resampled (nearest) to the reference grid.

    Examples
    --------
    >>> rois = rois_from_masks({"rFFA": "sub-01_label-rFFA_mask.nii.gz"}, bold)  # doctest: +SKIP
    """
    affine, shape = _grid(reference)
    return {
        name: _finish(name, _to_grid(m, affine, shape, where=f"mask {name!r}") != 0, affine,
                      shape, brain_mask, source=f"mask {m if isinstance(m, (str, Path)) else ''}")
        for name, m in masks.items()
    }


@public
def rois_from_atlas(
    atlas,
    labels: Mapping[str, int] | Sequence[str],
    reference=None,
    *,
    brain_mask=None,
) -> dict[str, nib.Nifti1Image]:
    """ROIs from an integer label image.

    Parameters
    ----------
    atlas : image or path
        3D integer labels (0 = background).
    labels : mapping name -> int, or sequence of names
        A sequence gives label ``i`` the ``i``-th name (index 0 is background and
        skipped when named ``"background"`` or ``""``).
    reference : image or path, optional
        Grid to resample onto (nearest); default the atlas grid.

    Examples
    --------
    >>> rois = rois_from_atlas("atlas.nii.gz", {"rFFA": 3, "lFFA": 4}, bold)  # doctest: +SKIP
    """
    atlas_img = _img(atlas, "atlas")
    if not isinstance(labels, Mapping):
        labels = {n: i for i, n in enumerate(labels)
                  if not (i == 0 and str(n).lower() in ("background", "", "0"))}
    affine, shape = _grid(reference if reference is not None else atlas_img)
    data = _to_grid(atlas_img, affine, shape, where="atlas")
    present = sorted(int(v) for v in np.unique(data) if v != 0)
    out = {}
    for name, value in labels.items():
        sel = data == value
        if not sel.any():
            raise DataFormatError(
                f"atlas label {value} ({name!r}) has no voxel on the reference grid; labels "
                f"present: {present[:20]}{' ...' if len(present) > 20 else ''}."
            )
        out[name] = _finish(name, sel, affine, shape, brain_mask, source=f"atlas label {value}")
    return out


@public
def load_roi_masks(
    derivatives: str | os.PathLike, subject: str, reference=None, *, brain_mask=None
) -> dict[str, nib.Nifti1Image]:
    """Read ``sub-XX*_label-<name>_mask.nii.gz`` files of one subject from a derivatives folder.

    This is where :func:`facebrain.brain.simulate` writes its ROI masks
    (``derivatives/facebrain-rois``).

    Examples
    --------
    >>> rois = load_roi_masks("bids/derivatives/facebrain-rois", "01")  # doctest: +SKIP
    """
    check_path_like(derivatives, "derivatives", where="load_roi_masks")
    check_label(subject, "subject", where="load_roi_masks")
    subject = str(subject).removeprefix("sub-")
    d = Path(derivatives) / f"sub-{subject}"
    files = sorted(d.rglob(f"sub-{subject}*_label-*_mask.nii*"))
    if not files:
        raise MissingFileError(f"no *_label-<name>_mask.nii[.gz] files under {d}.")
    masks = {re.search(r"_label-([^_]+)_", f.name).group(1): f for f in files}
    return rois_from_masks(masks, reference if reference is not None else files[0],
                           brain_mask=brain_mask)
