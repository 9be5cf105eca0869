"""fMRI timing checks: TR in seconds and agreeing with the header, slice-time reference
from the sidecar, events inside each run's acquisition window.

Every check here turns a silently wrong beta into a :class:`~facebrain.errors.TimingError`
(a ``ValueError``) that names the run, the row and the numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._deprecation import user_stacklevel
from ..errors import ParameterError, TimingError
from ._regressors import event_regressors

__all__ = ["MAX_TR", "MIN_SAMPLED", "check_onsets", "check_sampled", "check_tr_header", "header_tr",
           "parse_seconds", "resolve_slice_time_ref", "slice_time_ref_from"]

#: Largest plausible TR in seconds: the canonical HRFs last 32 s, and a TR written in
#: milliseconds (2000) lands far above it.
MAX_TR = 32.0
_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
OUT_OF_RANGE = ("error", "drop")


def _number(value, where: str, key: str) -> float:
    """A float from a number or numeric string, with an error naming the unit problem."""
    if isinstance(value, bool):
        raise TimingError(f"{where}: {key} must be a number of seconds; got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        hint = ""
        text = str(value).strip().lower()
        if text.endswith("ms"):
            hint = " Write it in seconds without a unit (milliseconds / 1000)."
        elif text.endswith("s"):
            hint = f" Write it without a unit: {text[:-1].strip()}."
        raise TimingError(
            f"{where}: {key} must be a number of seconds (e.g. 2.0); got {value!r}.{hint}"
        ) from None
    if not math.isfinite(out):
        raise TimingError(f"{where}: {key} must be a finite number of seconds; got {value!r}.")
    return out


def parse_seconds(value, where: str, key: str = "RepetitionTime") -> float:
    """A TR in seconds from a number or numeric string; reject units, zero, NaN and ms."""
    tr = _number(value, where, key)
    if not tr > 0:
        raise TimingError(f"{where}: {key} must be > 0 seconds; got {value!r}.")
    if tr > MAX_TR:
        raise TimingError(
            f"{where}: {key} = {tr:g} s is not a plausible repetition time in seconds (the HRF "
            f"lasts {MAX_TR:g} s); if it is in milliseconds, use {tr / 1000:g}."
        )
    return tr


def header_tr(img) -> tuple[float | None, float, str]:
    """``(TR in seconds or None, pixdim[4], time unit)`` from a NIfTI header.

    None when the header has no time zoom or no time unit (nibabel's default zoom of
    1.0 with unit ``unknown`` is not a TR).
    """
    header = getattr(img, "header", None)
    if header is None or not hasattr(header, "get_zooms"):
        return None, float("nan"), "unknown"
    zooms = header.get_zooms()
    if len(zooms) < 4:
        return None, float("nan"), "unknown"
    pix = float(zooms[3])
    unit = header.get_xyzt_units()[1] if hasattr(header, "get_xyzt_units") else "unknown"
    scale = _UNITS.get(unit)
    if scale is None or not pix > 0:
        return None, pix, unit
    return pix * scale, pix, unit


def check_tr_header(tr: float, img, where: str, source: str = "tr", rtol: float = 0.01) -> None:
    """Raise if ``tr`` (seconds) and the header's pixdim[4] (with its time unit) disagree."""
    hdr, pix, unit = header_tr(img)
    if hdr is None:
        return
    if abs(hdr - tr) > rtol * max(tr, hdr):
        raise TimingError(
            f"{where}: TR = {tr:g} s ({source}) disagrees with the NIfTI header: pixdim[4] = "
            f"{pix:g} with xyzt time unit '{unit}' = {hdr:g} s. A wrong TR stretches every "
            "regressor in time. Fix RepetitionTime in the sidecar (or the tr you pass), or "
            "the header if it is the one that is wrong (header['pixdim'][4] and "
            "set_xyzt_units)."
        )


def slice_time_ref_from(meta: Mapping, tr: float, where: Mapping | str) -> tuple[float, str]:
    """Slice-time reference (fraction of the TR) from BIDS sidecar metadata.

    ``StartTime`` (written by fMRIPrep after slice-timing correction) gives
    ``StartTime / TR``, as in nilearn's ``first_level_from_bids``; else
    ``SliceTiming`` gives the middle of the slice acquisition range,
    ``(min + 0.5 (max - min)) / TR`` (fMRIPrep's default reference ``--slice-time-ref
    0.5``); else 0.0 (nilearn's default).

    Parameters
    ----------
    meta : mapping
        Sidecar keys; values may be ``(value, path)`` pairs.
    where : mapping or str
        Path of each key's sidecar (or one name) for error messages.
    """
    def _get(key):
        v = meta.get(key)
        return v[0] if isinstance(v, tuple) else v

    def _src(key):
        if isinstance(where, Mapping):
            return str(where.get(key, "sidecar"))
        v = meta.get(key)
        return str(v[1]) if isinstance(v, tuple) else str(where)

    start = _get("StartTime")
    if start is not None:
        s = _number(start, _src("StartTime"), "StartTime")
        if not 0 <= s < tr:
            raise TimingError(
                f"{_src('StartTime')}: StartTime = {s:g} s must lie in [0, TR = {tr:g} s); check "
                "the TR (RepetitionTime) and that StartTime is in seconds.")
        return s / tr, f"StartTime {s:g} s / TR {tr:g} s ({_src('StartTime')})"
    st = _get("SliceTiming")
    if st is not None:
        try:
            times = np.asarray(st, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TimingError(f"{_src('SliceTiming')}: SliceTiming must be a list of seconds; "
                              f"got {st!r}.") from None
        if times.size == 0 or not np.isfinite(times).all():
            raise TimingError(f"{_src('SliceTiming')}: SliceTiming is empty or not finite.")
        if times.min() < 0 or times.max() >= tr:
            raise TimingError(
                f"{_src('SliceTiming')}: SliceTiming spans [{times.min():g}, {times.max():g}] s, "
                f"outside [0, TR = {tr:g} s); either the TR or the slice times are not in "
                "seconds, or they belong to another sequence.")
        first, last = float(times.min()), float(times.max())
        t0 = first + 0.5 * (last - first)
        return t0 / tr, (f"SliceTiming middle {t0:g} s / TR {tr:g} s ({_src('SliceTiming')}); "
                         "no StartTime, so not slice-time corrected")
    return 0.0, "default 0.0 (no StartTime or SliceTiming in the sidecars)"


def check_onsets(events: pd.DataFrame, n_scans: int, tr: float, where: str, run: str,
                 out_of_range: str = "error") -> pd.DataFrame:
    """Events whose onset lies outside ``[0, n_scans * TR)`` raise (or are dropped).

    Rows are named by the events table's index (the row of the file, 0-based, header
    excluded, as :func:`check_events` keeps it).
    """
    if out_of_range not in OUT_OF_RANGE:
        raise ParameterError(f"out_of_range must be one of {OUT_OF_RANGE}; got {out_of_range!r}.")
    end = n_scans * tr
    on = events["onset"].to_numpy(dtype=float)
    bad = (on < 0) | (on >= end)
    if not bad.any():
        return events
    rows = events.index[bad]
    sid = events["stimulus_id"] if "stimulus_id" in events else events["trial_type"]
    def _what(i):
        if sid.iloc[i] is not None:
            return f"stimulus {sid.iloc[i]}"
        return f"trial_type {events['trial_type'].iloc[i]}"

    shown = "; ".join(f"row {r}: onset {on[i]:g} s ({_what(i)})"
                      for i, r in zip(np.flatnonzero(bad)[:5], rows[:5]))
    more = f" (and {int(bad.sum()) - 5} more)" if bad.sum() > 5 else ""
    msg = (f"{where}: {int(bad.sum())} of {len(events)} event(s) start outside run {run}'s "
           f"acquisition window [0, {end:g}) s ({n_scans} scans x TR {tr:g} s): {shown}{more}.")
    if out_of_range == "drop":
        warnings.warn(msg + " They are dropped (out_of_range='drop').", UserWarning, stacklevel=user_stacklevel())
        return events.loc[~bad]
    raise TimingError(
        msg + " Onsets count in seconds from the first volume of the run; check the TR (a "
        "wrong TR shrinks or stretches the window), the onsets' unit and zero, and that the "
        "events file belongs to this run. Pass out_of_range='drop' to drop such events with "
        "a warning."
    )


def resolve_slice_time_ref(value, data) -> tuple[float, str]:
    """single_trial_betas' ``slice_time_ref`` (or a BIDSRuns' one) -> (value, source)."""
    if value is None:
        if data is not None and data.slice_time_ref is not None:
            value, source = data.slice_time_ref, data.slice_time_ref_source
        else:
            return 0.0, "default 0.0"
    else:
        source = "given"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise TimingError(f"slice_time_ref must be a number in [0, 1] (a fraction of the TR); "
                          f"got {value!r} ({source}).")
    if data is not None and data.slice_time_ref is not None and source == "given" \
            and not data.slice_time_ref_source.startswith("default") \
            and abs(float(value) - data.slice_time_ref) > 1e-9:
        warnings.warn(f"slice_time_ref={value} differs from the sidecars' "
                      f"{data.slice_time_ref:g} ({data.slice_time_ref_source}); using {value}.",
                      UserWarning, stacklevel=user_stacklevel())
    return float(value), source


#: A trial whose regressor peaks below this fraction of its run's median trial peak
#: (its response falls after the last kept volume) has no estimable beta.
MIN_SAMPLED = 0.1


def check_sampled(ev, n_scans, tr, slice_time_ref, keep, hrf_model, *, where, run,
                   out_of_range):
    """Trials whose response the kept volumes barely sample raise (or are dropped)."""
    trial = np.flatnonzero(ev["stimulus_id"].notna().to_numpy())
    if trial.size < 2:
        return ev
    ft = (np.arange(n_scans) + slice_time_ref) * tr
    kernel = "spm" if hrf_model.lower().startswith("spm") else "glover"
    T = event_regressors(ft, ev["onset"].to_numpy()[trial], ev["duration"].to_numpy()[trial],
                         hrf_model=kernel)
    if keep is not None:
        T = T[keep]
    peak = np.abs(T).max(axis=0)
    bad = peak < MIN_SAMPLED * np.median(peak)
    if not bad.any():
        return ev
    rows = ev.index[trial[bad]]
    last = ft[keep[-1]] if keep is not None else ft[-1]
    shown = "; ".join(
        f"row {r}: onset {o:g} s (stimulus {s}), regressor peak {100 * p / np.median(peak):.1f}%"
        for r, o, s, p in zip(rows[:5], ev["onset"].to_numpy()[trial[bad]],
                              ev["stimulus_id"].to_numpy()[trial[bad]], peak[bad]))
    msg = (f"{where}: {int(bad.sum())} trial(s) of run {run} are barely sampled: their "
           f"response falls after the last kept volume ({last:g} s), so the regressor peaks "
           f"below {100 * MIN_SAMPLED:g}% of the run's median trial ({shown}).")
    if out_of_range == "drop":
        warnings.warn(msg + " They are dropped (out_of_range='drop').", UserWarning, stacklevel=user_stacklevel())
        return ev.drop(index=rows)
    raise TimingError(msg + " Their betas would be noise amplified (or exactly 0). Check the TR "
                      "and onsets, or pass out_of_range='drop' to drop them with a warning.")
