"""Brain data: BIDS fMRI, single-trial betas (LSA/LSS), face ROIs, reliability, simulation."""

from ._betas import single_trial_betas
from ._bids import BIDSRuns, load_bids
from ._confounds import CONFOUND_STRATEGIES, DEFAULT_CONFOUNDS, fmriprep_confounds
from ._reliability import noise_ceiling, rsa_noise_ceiling, split_half_reliability
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

__all__ = [
    "CONFOUND_STRATEGIES",
    "DEFAULT_CONFOUNDS",
    "BIDSRuns",
    "concat_responses",
    "default_rois",
    "face_roi_table",
    "fmriprep_confounds",
    "load_bids",
    "load_ground_truth",
    "load_roi_masks",
    "noise_ceiling",
    "roi_responses",
    "rois_from_atlas",
    "rois_from_masks",
    "rsa_noise_ceiling",
    "simulate",
    "single_trial_betas",
    "sphere_rois",
    "split_half_reliability",
]
