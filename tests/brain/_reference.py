"""Reference implementations used by the brain tests and benchmark (nilearn loops)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from nilearn.glm.first_level import FirstLevelModel


def nilearn_lss_loop(runs, events, *, tr, mask, confounds=None, hrf_model="glover",
                     drift_model="cosine", high_pass=0.01, sample_masks=None,
                     slice_time_ref=0.0, signal_scaling=False):
    """One FirstLevelModel per trial (trial vs all other trials of its run).

    Returns a list (trial order: run, then onset) of (stimulus_id, beta vector).
    """
    m = np.asarray(mask.dataobj) != 0
    out = []
    for r, (img, ev) in enumerate(zip(runs, events)):
        ev = ev.sort_values("onset", kind="stable").reset_index(drop=True)
        is_trial = ev["stimulus_id"].notna().to_numpy()
        for t in np.flatnonzero(is_trial):
            tt = np.where(is_trial, "other", ev["trial_type"].to_numpy(dtype=object))
            tt[t] = "trial"
            e = pd.DataFrame({"onset": ev["onset"], "duration": ev["duration"], "trial_type": tt})
            if "modulation" in ev:
                e["modulation"] = ev["modulation"]
            if is_trial.sum() == 1:
                e = e[e.trial_type != "other"]
            glm = FirstLevelModel(t_r=tr, hrf_model=hrf_model, drift_model=drift_model,
                                  high_pass=high_pass, signal_scaling=signal_scaling,
                                  noise_model="ols", slice_time_ref=slice_time_ref,
                                  mask_img=mask, minimize_memory=True, smoothing_fwhm=None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                glm.fit(img, e, confounds=None if confounds is None else confounds[r],
                        sample_masks=None if sample_masks is None else sample_masks[r])
                eff = glm.compute_contrast("trial", output_type="effect_size")
            out.append((ev["stimulus_id"][t], np.asarray(eff.dataobj)[m]))
    return out


def nilearn_lsa(runs, events, *, tr, mask, hrf_model="glover", drift_model="cosine",
                high_pass=0.01, confounds=None, sample_masks=None, slice_time_ref=0.0,
                signal_scaling=False):
    """One FirstLevelModel per run with a regressor per trial."""
    m = np.asarray(mask.dataobj) != 0
    out = []
    for r, (img, ev) in enumerate(zip(runs, events)):
        ev = ev.sort_values("onset", kind="stable").reset_index(drop=True)
        names = [f"t{i:04d}" for i in range(len(ev))]
        e = pd.DataFrame({"onset": ev["onset"], "duration": ev["duration"], "trial_type": names})
        glm = FirstLevelModel(t_r=tr, hrf_model=hrf_model, drift_model=drift_model,
                              high_pass=high_pass, signal_scaling=signal_scaling,
                              noise_model="ols", slice_time_ref=slice_time_ref,
                              mask_img=mask, minimize_memory=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glm.fit(img, e, confounds=None if confounds is None else confounds[r],
                    sample_masks=None if sample_masks is None else sample_masks[r])
            for i, n in enumerate(names):
                eff = glm.compute_contrast(n, output_type="effect_size")
                out.append((ev["stimulus_id"][i], np.asarray(eff.dataobj)[m]))
    return out


def ar_sinusoid_runs(shape, n_scans, n_runs, trials_per_run, *, tr, seed, n_stim):
    """Data not made by facebrain.simulate: AR(1) noise + sinusoids + random trial responses."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    affine = np.diag([3.0, 3.5, 4.0, 1.0])
    affine[:3, 3] = [-10.0, -20.0, 5.0]
    runs, events = [], []
    stim = [f"s{i:02d}" for i in range(n_stim)]
    t = np.arange(n_scans) * tr
    for r in range(n_runs):
        phi = rng.uniform(0.2, 0.6)
        e = rng.standard_normal((n_scans,) + shape)
        y = np.empty_like(e)
        y[0] = e[0]
        for k in range(1, n_scans):
            y[k] = phi * y[k - 1] + e[k]
        freq = rng.uniform(0.005, 0.05, size=shape)
        y += 2.0 * np.sin(2 * np.pi * freq[None] * t[:, None, None, None] + rng.uniform(0, 6, shape))
        # events: jittered onsets, random stimulus per trial; a boxcar response added crudely
        onsets = np.sort(rng.uniform(2, (n_scans - 8) * tr, size=trials_per_run))
        sids = rng.choice(stim, size=trials_per_run)
        for o in onsets:
            k0 = int(o // tr)
            y[k0 + 2: k0 + 4] += rng.standard_normal(shape) * 0.8
        y += 100.0
        runs.append(nib.Nifti1Image(np.moveaxis(y, 0, -1).astype(np.float32), affine))
        events.append(pd.DataFrame({"onset": onsets, "duration": rng.choice([0.5, 1.0, 2.0], size=trials_per_run),
                                    "trial_type": sids, "stimulus_id": sids}))
    return runs, events
