"""roi_responses / concat_responses: the BrainResponses contract consumed by the RSA and encoding rooms."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from facebrain.brain import (
    concat_responses,
    load_bids,
    load_roi_masks,
    roi_responses,
    single_trial_betas,
    sphere_rois,
)
from facebrain.errors import DataFormatError, StimulusMismatchError


@pytest.fixture(scope="module")
def betas_01(sim_root, sim_stimuli):
    data = load_bids(sim_root, subject="01", task="faces")
    m = np.zeros(data.runs[0].shape[:3], np.uint8)
    m[:, :12, :] = 1  # posterior part of the box only: cost follows the mask
    mask = nib.Nifti1Image(m, data.runs[0].affine)
    return single_trial_betas(data, stimuli=sim_stimuli, average_repeats=False, mask=mask)


def test_contract(sim_root, betas_01, sim_stimuli, tmp_path):
    betas, mask_img = betas_01
    assert betas.sizes["voxel"] == int(np.asarray(mask_img.dataobj).sum())
    rois = load_roi_masks(sim_root / "derivatives" / "facebrain-rois", "01")
    rois = {k: rois[k] for k in ("rOFA", "EVC")}
    resp = roi_responses(betas, rois, subject="sub-01", source=str(sim_root))
    assert resp.name == "responses" and resp.dims == ("stimulus", "voxel")
    assert list(resp.stimulus.values) == list(sim_stimuli.ids)
    assert resp.voxel.values[0] == "01|rOFA|0"
    assert set(resp.roi.values) == {"rOFA", "EVC"} and set(resp.subject.values) == {"01"}
    for c in ("x", "y", "z", "noise_ceiling", "reliability"):
        assert resp[c].dtype == float
    assert set(resp.attrs) >= {"space", "source", "tr"} and resp.attrs["tr"] == 2.0
    # values: the mean over repeats of the betas at those voxels
    n = int(np.asarray(rois["EVC"].dataobj).sum())
    evc = resp.sel(voxel=(resp.roi == "EVC").values)
    assert evc.sizes["voxel"] == n
    ijk = np.c_[evc.i, evc.j, evc.k]
    np.testing.assert_allclose(np.c_[evc.x, evc.y, evc.z],
                               nib.affines.apply_affine(mask_img.affine, ijk))
    flat = {tuple(v): q for q, v in enumerate(np.c_[betas.i, betas.j, betas.k])}
    cols = [flat[tuple(v)] for v in ijk]
    np.testing.assert_allclose(evc.values, betas.mean("repeat").values[:, cols])
    kept = roi_responses(betas, rois, subject="01", average_repeats=False)
    assert kept.dims == ("stimulus", "repeat", "voxel")
    # BrainResponses survive a netCDF round trip (results.nc)
    import xarray as xr

    resp.to_netcdf(tmp_path / "r.nc", engine="h5netcdf")
    back = xr.open_dataarray(tmp_path / "r.nc", engine="h5netcdf").load()
    xr.testing.assert_allclose(back, resp)
    assert back.attrs == resp.attrs


def test_roi_outside_betas_mask(betas_01, sim_root):
    betas, mask_img = betas_01
    rois = sphere_rois({"ant": (40.0, -30.0, 0.0)}, mask_img, radius=6)
    with pytest.raises(DataFormatError, match="ROI 'ant' has no voxel among"):
        roi_responses(betas, rois, subject="01")
    with pytest.raises(DataFormatError, match="lack the voxel coord 'i'"):
        roi_responses(betas.drop_vars("i"), rois, subject="01")


def test_concat_subjects(betas_01, sim_root):
    betas, _mask_img = betas_01
    rois = {"EVC": load_roi_masks(sim_root / "derivatives" / "facebrain-rois", "01")["EVC"]}
    a = roi_responses(betas, rois, subject="01")
    b = roi_responses(betas.isel(stimulus=slice(None, None, -1)), rois, subject="02")
    both = concat_responses([a, b])
    assert both.sizes["voxel"] == 2 * a.sizes["voxel"]
    assert list(both.stimulus.values) == list(a.stimulus.values)
    np.testing.assert_allclose(both.sel(voxel=(both.subject == "02").values).values, a.values)
    with pytest.raises(StimulusMismatchError, match="in responses\\[0\\] but not responses\\[1\\]"):
        concat_responses([a, b.isel(stimulus=slice(1, None))])
    with pytest.raises(ValueError, match="voxel ids repeat"):
        concat_responses([a, a])
