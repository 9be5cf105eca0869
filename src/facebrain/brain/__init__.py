"""Brain data: BIDS fMRI, single-trial betas (LSA/LSS), face ROIs, reliability, simulation."""

from typing import TYPE_CHECKING

from .._lazy import attach

# public name -> defining module; imported on first access (import time stays small)
__getattr__, __dir__, __all__ = attach(__name__, {
    "._betas": ["single_trial_betas"],
    "._bids": ["BIDSRuns", "load_bids"],
    "._confounds": ["CONFOUND_STRATEGIES", "DEFAULT_CONFOUNDS", "fmriprep_confounds"],
    "._reliability": ["rsa_noise_ceiling", "split_half_reliability", "voxel_noise_ceiling"],
    "._responses": ["concat_responses", "roi_responses"],
    "._rois": ["default_rois", "face_roi_table", "load_roi_masks", "rois_from_atlas", "rois_from_masks", "sphere_rois"],
    "._simulate": ["load_ground_truth", "simulate"],
}, deprecated={
    "noise_ceiling": ("._reliability", "voxel_noise_ceiling",
                      ("use facebrain.brain.voxel_noise_ceiling (the encoding ceiling per voxel; "
                       "the RDM ceiling is facebrain.brain.rsa_noise_ceiling)")),
})

if TYPE_CHECKING:  # eager imports for static analysis
    from ._betas import single_trial_betas
    from ._bids import BIDSRuns, load_bids
    from ._confounds import CONFOUND_STRATEGIES, DEFAULT_CONFOUNDS, fmriprep_confounds
    from ._reliability import rsa_noise_ceiling, split_half_reliability, voxel_noise_ceiling
    from ._responses import concat_responses, roi_responses
    from ._rois import (
        default_rois,
        face_roi_table,
        load_roi_masks,
        rois_from_atlas,
        rois_from_masks,
        sphere_rois,
    )
    from ._simulate import load_ground_truth, simulate
