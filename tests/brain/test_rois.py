"""ROIs from spheres, masks and atlases, compared with naive loops and nilearn resampling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img

from facebrain.brain import (
    default_rois,
    face_roi_table,
    rois_from_atlas,
    rois_from_masks,
    sphere_rois,
)
from facebrain.errors import DataFormatError

AFF = np.array([[3.0, 0, 0, -60], [0, 3.5, 0, -100], [0, 0, 4, -36], [0, 0, 0, 1]])
SHAPE = (41, 23, 17)


@pytest.fixture
def ref():
    return nib.Nifti1Image(np.zeros(SHAPE, np.float32), AFF)


def test_face_roi_table_has_documented_defaults():
    t = face_roi_table()
    assert {"rFFA", "lFFA", "rOFA", "lOFA", "rpSTS", "lpSTS", "EVC"} <= set(t.index)
    assert t.loc["rFFA", ["x", "y", "z"]].tolist() == [42, -50, -20]
    assert t.loc["rOFA", ["x", "y", "z"]].tolist() == [42, -78, -10]
    assert t["region_reference"].str.len().gt(10).all()
    assert t["coordinate_source"].str.len().gt(10).all()
    assert (t["radius_mm"] > 0).all()


def test_sphere_matches_naive_loop(ref):
    c, r = (41.0, -52.0, -18.0), 7.5
    got = np.asarray(sphere_rois({"x": c}, ref, radius=r)["x"].dataobj)
    want = np.zeros(SHAPE, np.uint8)
    for i in range(SHAPE[0]):
        for j in range(SHAPE[1]):
            for k in range(SHAPE[2]):
                p = AFF[:3, :3] @ [i, j, k] + AFF[:3, 3]
                want[i, j, k] = np.sum((p - c) ** 2) <= r * r
    np.testing.assert_array_equal(got, want)
    assert want.sum() > 10


def test_default_rois_on_grid(ref):
    rois = default_rois(ref, names=["rFFA", "EVC"])
    assert list(rois) == ["rFFA", "EVC"]
    ffa = np.argwhere(np.asarray(rois["rFFA"].dataobj))
    centre = nib.affines.apply_affine(AFF, ffa).mean(axis=0)
    np.testing.assert_allclose(centre, [42, -50, -20], atol=2.0)
    with pytest.raises(KeyError, match="unknown default ROI.*FFAX"):
        default_rois(ref, names=["FFAX"])


def test_coordinates_outside_image(ref):
    with pytest.raises(DataFormatError, match=r"ROI 'far'.*outside the image.*x -62\.\.62"):
        sphere_rois({"far": (0.0, 60.0, 0.0)}, ref)
    with pytest.raises(DataFormatError, match="no voxel centre lies within"):
        sphere_rois({"tiny": (-58.5, -98.25, -34.0)}, ref, radius=0.1)


def test_brain_mask_intersection_and_empty_roi(ref):
    bm = np.zeros(SHAPE, np.uint8)
    bm[20:, :, :] = 1  # right hemisphere only (x >= 0)
    bm_img = nib.Nifti1Image(bm, AFF)
    rois = default_rois(ref, names=["rFFA"], brain_mask=bm_img)
    assert np.asarray(rois["rFFA"].dataobj).sum() > 0
    with pytest.raises(DataFormatError, match="ROI 'lFFA' is empty after intersecting"):
        default_rois(ref, names=["lFFA"], brain_mask=bm_img)


def test_masks_resampled_nearest_like_nilearn(ref, tmp_path):
    fine_aff = np.array([[2.0, 0, 0, -61], [0, 2, 0, -101], [0, 0, 2, -37], [0, 0, 0, 1]])
    rng = np.random.default_rng(0)
    fine = (rng.random((62, 42, 36)) > 0.7).astype(np.uint8)
    img = nib.Nifti1Image(fine, fine_aff)
    path = tmp_path / "m.nii.gz"
    nib.save(img, path)
    got = np.asarray(rois_from_masks({"m": path}, ref)["m"].dataobj)
    want = np.asarray(resample_to_img(img, ref, interpolation="nearest", force_resample=True,
                                      copy_header=True).dataobj) != 0
    np.testing.assert_array_equal(got.astype(bool), want)
    with pytest.raises(DataFormatError, match="ROI 'z' is empty"):
        rois_from_masks({"z": nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFF)}, ref)


def test_atlas_labels(ref):
    atlas = np.zeros(SHAPE, np.int16)
    atlas[1:5, 2:6, 3:7] = 3
    atlas[10:12, 2:4, 5:9] = 7
    img = nib.Nifti1Image(atlas, AFF)
    rois = rois_from_atlas(img, {"a": 3, "b": 7})
    assert int(np.asarray(rois["a"].dataobj).sum()) == 4 * 4 * 4
    assert int(np.asarray(rois["b"].dataobj).sum()) == 2 * 2 * 4
    seq = nib.Nifti1Image(np.where(atlas == 3, 1, np.where(atlas == 7, 2, 0)).astype(np.int16), AFF)
    by_index = rois_from_atlas(seq, ["background", "a", "b"])
    assert list(by_index) == ["a", "b"]
    np.testing.assert_array_equal(by_index["b"].get_fdata(), rois["b"].get_fdata())
    with pytest.raises(DataFormatError, match=r"atlas label 5 \('c'\) has no voxel.*\[3, 7\]"):
        rois_from_atlas(img, {"c": 5})
