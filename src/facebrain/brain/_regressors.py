"""One HRF-convolved regressor per event, vectorised, identical to nilearn's.

nilearn's ``compute_regressor`` samples a condition's events on a high-resolution
grid (``oversampling`` points per TR), convolves that boxcar with the HRF kernel
and linearly interpolates at the frame times. A boxcar ``[a, b)`` convolved with
kernel ``h`` equals ``H[t - a] - H[t - b]`` with ``H`` the cumulative sum of ``h``
(the step response), so every event's regressor is two look-ups of ``H`` per
frame time: no per-event convolution. Used for the linear HRF models
(``"glover"``, ``"spm"``), whose regressors nilearn does not orthogonalise.
"""

from __future__ import annotations

import numpy as np
from nilearn.glm.first_level import glover_hrf, spm_hrf

__all__ = ["event_regressors"]

_KERNELS = {"glover": glover_hrf, "spm": spm_hrf}


def event_regressors(
    frame_times: np.ndarray,
    onsets: np.ndarray,
    durations: np.ndarray,
    *,
    hrf_model: str = "glover",
    oversampling: int = 50,
    min_onset: float = -24.0,
) -> np.ndarray:
    """Regressors of shape (n_scans, n_events), one per unit-amplitude event.

    Equal (to rounding) to ``nilearn.glm.first_level.compute_regressor`` called
    on each event alone with the same ``hrf_model``, ``oversampling`` and ``min_onset``.
    """
    frame_times = np.asarray(frame_times, dtype=float)
    onsets = np.asarray(onsets, dtype=float)
    durations = np.asarray(durations, dtype=float)
    oversampling = int(oversampling)
    n_frames = frame_times.size
    t_r = float(np.min(np.diff(frame_times)))
    mini, maxi = frame_times.min(), frame_times.max()
    n_hr = (n_frames - 1) * 1.0 / (maxi - mini)
    n_hr *= (maxi * (1 + 1.0 / (n_frames - 1)) - mini - float(min_onset)) * oversampling
    n_hr = int(np.rint(n_hr + 1))
    hr_times = np.linspace(mini + float(min_onset), maxi * (1 + 1.0 / (n_frames - 1)), n_hr)
    tmax = n_hr
    a = np.minimum(np.searchsorted(hr_times, onsets), tmax - 1)
    b = np.minimum(np.searchsorted(hr_times, onsets + durations), tmax - 1)
    b = np.where((b < tmax - 1) & (b == a), b + 1, b)

    h = _KERNELS[hrf_model.lower()](t_r, oversampling)
    step = np.cumsum(h)  # step[m] = sum h[0..m]
    full = step[-1]

    def H(m):
        out = np.where(m >= len(step) - 1, full, step[np.clip(m, 0, len(step) - 1)])
        return np.where(m < 0, 0.0, out)

    # linear interpolation positions of the frame times on the high-res grid
    p = np.searchsorted(hr_times, frame_times, side="right") - 1
    p = np.clip(p, 0, n_hr - 2)
    w = (frame_times - hr_times[p]) / (hr_times[p + 1] - hr_times[p])
    P = p[:, None]

    def conv(t):  # boxcar [a, b) * h at high-res index t, for every event
        return H(t - a[None, :]) - H(t - b[None, :])

    return (1.0 - w)[:, None] * conv(P) + w[:, None] * conv(P + 1)
