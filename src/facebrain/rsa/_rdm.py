"""RDMs from Activations, BrainResponses or stimulus labels (rsatoolbox ``RDMs`` objects)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from rsatoolbox.data import Dataset as RsaDataset
from rsatoolbox.rdm import RDMs, calc_rdm

from .._boundary import public
from .._utils import check_activations
from ..errors import (
    DataFormatError,
    MissingKeyError,
    ParameterError,
    ParameterTypeError,
    ShapeError,
)

__all__ = ["brain_groups", "label_rdm", "rdm"]

RDM_METHODS = ("correlation", "crossnobis", "euclidean", "mahalanobis", "poisson", "poisson_cv")


def _check_n_stimuli(n: int, what: str) -> None:
    if n < 3:
        raise ParameterError(
            f"{what} has {n} stimuli; an RDM comparison needs at least 3 (2 stimuli give a "
            "single dissimilarity, which cannot be correlated). Add stimuli."
        )


def _stimulus_descriptors(obj, ids) -> dict:
    desc = {"stimulus": np.asarray([str(i) for i in ids], dtype=object)}
    coords = getattr(obj, "coords", {})
    for name in coords:
        c = coords[name]
        if name != "stimulus" and c.dims == ("stimulus",):
            desc[name] = np.asarray(c.values).astype(object)
    return desc


def _layer_matrix(acts: xr.Dataset, layer: str) -> np.ndarray:
    if layer not in acts.data_vars:
        raise MissingKeyError(
            f"layer {layer!r} is not in the Activations; available layers: "
            f"{sorted(map(str, acts.data_vars))}."
        )
    da = acts[layer]
    if "stimulus" not in da.dims or da.ndim != 2:
        raise DataFormatError(
            f"Activations variable {layer!r} has dims {da.dims}; expected ('stimulus', "
            f"'{layer}_unit'). Build Activations with facebrain.extract."
        )
    other = next(d for d in da.dims if d != "stimulus")
    return np.asarray(da.transpose("stimulus", other).values, dtype=float)


def _calc(measurements: np.ndarray, method: str, noise=None, **kw) -> np.ndarray:
    ds = RsaDataset(measurements)
    return calc_rdm(ds, method=method, noise=noise, **kw).get_vectors()[0]


def brain_groups(brain: xr.DataArray) -> list[tuple[str, str, np.ndarray]]:
    """(roi, subject, voxel positions) for every ROI x subject, ROIs and subjects sorted.

    Raises if subjects differ across ROIs.
    """
    for name in ("roi", "subject"):
        if name not in brain.coords or brain.coords[name].dims != ("voxel",):
            raise DataFormatError(
                f"BrainResponses lacks the voxel coordinate {name!r}; coords are "
                f"{sorted(map(str, brain.coords))}. Use facebrain.brain.roi_responses or simulate."
            )
    roi = np.asarray([str(x) for x in brain["roi"].values], dtype=object)
    subj = np.asarray([str(x) for x in brain["subject"].values], dtype=object)
    rois = sorted(set(roi))
    subjects = sorted(set(subj))
    groups = []
    for r in rois:
        have = sorted(set(subj[roi == r]))
        if have != subjects:
            missing = sorted(set(subjects) - set(have))
            raise ParameterError(
                f"ROI {r!r} has subjects {have} but other ROIs have {subjects} (missing "
                f"{missing}); every ROI needs the same subjects. Subset the BrainResponses "
                "to subjects with all ROIs."
            )
        for s in subjects:
            groups.append((r, s, np.flatnonzero((roi == r) & (subj == s))))
    return groups


@public
def rdm(
    data,
    *,
    method: str = "correlation",
    layer: str | Sequence[str] | None = None,
    noise=None,
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
) -> RDMs:
    """Representational dissimilarity matrices, one per layer or per ROI x subject.

    Parameters
    ----------
    data : Activations (xr.Dataset), BrainResponses (xr.DataArray) or ndarray
        Activations give one RDM per layer (``layer`` selects); BrainResponses
        give one per ROI x subject, with dims ``(stimulus, voxel)`` or
        ``(stimulus, repeat, voxel)``; an ndarray of shape (n_stimuli, n_features)
        gives one RDM.
    method : str
        rsatoolbox ``calc_rdm`` name: ``"correlation"``, ``"euclidean"``,
        ``"mahalanobis"``, ``"crossnobis"`` (needs the ``repeat`` dim; cross-validated
        over repeats), ``"poisson"``, ``"poisson_cv"``.
    layer : str or list of str, optional
        Layers of the Activations (default all).
    noise : ndarray of shape (n_features, n_features), optional
        Noise precision for mahalanobis/crossnobis (rsatoolbox ``noise``).

    Returns
    -------
    rsatoolbox.rdm.RDMs
        Pattern descriptor ``stimulus`` (ids, in data order) plus every stimulus
        coordinate; rdm descriptors ``layer`` or ``roi`` and ``subject``.

    Examples
    --------
    >>> import numpy as np
    >>> from facebrain.rsa import rdm
    >>> rdm(np.random.default_rng(0).normal(size=(5, 8))).n_cond
    5
    """
    if method not in RDM_METHODS:
        raise ParameterError(f"method={method!r} is not an RDM method; choose one of {RDM_METHODS}.")
    kw = {}
    if method in ("poisson", "poisson_cv"):
        kw = {"prior_lambda": prior_lambda, "prior_weight": prior_weight}
    if method in ("mahalanobis", "crossnobis"):
        kw["noise"] = noise
    if isinstance(data, xr.Dataset):
        check_activations(data, "data", where="rdm")
        layers = list(map(str, data.data_vars)) if layer is None else (
            [layer] if isinstance(layer, str) else list(layer))
        if method in ("crossnobis", "poisson_cv"):
            raise ParameterError(f"method={method!r} needs repeated measurements; Activations "
                                 "have none. Use 'correlation' or 'euclidean' for model RDMs.")
        ids = data["stimulus"].values
        _check_n_stimuli(len(ids), "The Activations")
        vecs = [_calc(_layer_matrix(data, lay), method, **kw) for lay in layers]
        return RDMs(np.array(vecs), dissimilarity_measure=method,
                    rdm_descriptors={"layer": layers},
                    pattern_descriptors=_stimulus_descriptors(data, ids))
    if isinstance(data, xr.DataArray):
        return _brain_rdm(data, method, kw)
    if not isinstance(data, (np.ndarray, list, tuple)):
        raise ParameterTypeError(
            "rdm: data must be Activations (xr.Dataset), BrainResponses (xr.DataArray) or an "
            f"array (n_stimuli, n_features); got {type(data).__name__}.")
    try:
        arr = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as err:
        raise ParameterTypeError(f"rdm: data is not numeric ({err}); pass an array of shape "
                                 "(n_stimuli, n_features).") from err
    if arr.ndim != 2:
        raise DataFormatError(f"data has shape {arr.shape}; expected (n_stimuli, n_features).")
    _check_n_stimuli(arr.shape[0], "data")
    return RDMs(_calc(arr, method, **kw)[None], dissimilarity_measure=method,
                pattern_descriptors={"stimulus": np.array([str(i) for i in range(len(arr))],
                                                          dtype=object)})


def _brain_rdm(brain: xr.DataArray, method: str, kw: dict) -> RDMs:
    if "stimulus" not in brain.dims or "voxel" not in brain.dims:
        raise DataFormatError(
            f"BrainResponses has dims {brain.dims}; expected ('stimulus', 'voxel') or "
            "('stimulus', 'repeat', 'voxel')."
        )
    ids = [str(i) for i in brain["stimulus"].values]
    _check_n_stimuli(len(ids), "The BrainResponses")
    has_rep = "repeat" in brain.dims
    if method in ("crossnobis", "poisson_cv") and not has_rep:
        raise ShapeError(
            f"method={method!r} cross-validates over repeats but the BrainResponses have dims "
            f"{brain.dims} (no 'repeat'). Pass responses before averaging repeats, or use "
            "'correlation'."
        )
    groups = brain_groups(brain)
    vecs, rois, subs = [], [], []
    if has_rep and method not in ("crossnobis", "poisson_cv"):
        data = np.asarray(brain.mean("repeat").transpose("stimulus", "voxel").values, float)
        for r, s, vox in groups:
            vecs.append(_calc(data[:, vox], method, **kw))
            rois.append(r)
            subs.append(s)
    elif has_rep:
        data = np.asarray(brain.transpose("stimulus", "repeat", "voxel").values, float)
        n_stim, n_rep, _ = data.shape
        stim_desc = np.repeat(np.arange(n_stim), n_rep)
        rep_desc = np.tile(np.arange(n_rep), n_stim)
        for r, s, vox in groups:
            meas = data[:, :, vox].reshape(n_stim * n_rep, vox.size)
            ok = ~np.isnan(meas).any(axis=1)  # missing repeats dropped
            ds = RsaDataset(meas[ok], obs_descriptors={"stim": stim_desc[ok],
                                                       "rep": rep_desc[ok]})
            with warnings.catch_warnings():  # rsatoolbox fills int descriptors with NaN
                warnings.filterwarnings("ignore", "invalid value encountered in cast")
                rd = calc_rdm(ds, method=method, descriptor="stim", cv_descriptor="rep", **kw)
            # calc_rdm sorts patterns by descriptor value; integer codes keep data order
            order = np.asarray(rd.pattern_descriptors["stim"])
            if not np.array_equal(order, np.arange(n_stim)):
                raise DataFormatError(
                    f"ROI {r!r} subject {s!r}: some stimuli have no valid repeat; crossnobis "
                    "needs every stimulus measured in at least 2 repeats."
                )
            vecs.append(rd.get_vectors()[0])
            rois.append(r)
            subs.append(s)
    else:
        data = np.asarray(brain.transpose("stimulus", "voxel").values, float)
        for r, s, vox in groups:
            vecs.append(_calc(data[:, vox], method, **kw))
            rois.append(r)
            subs.append(s)
    return RDMs(np.array(vecs), dissimilarity_measure=method,
                rdm_descriptors={"roi": rois, "subject": subs},
                pattern_descriptors=_stimulus_descriptors(brain, ids))


@public
def label_rdm(stimuli_or_table, column: str | Sequence[str]) -> RDMs:
    """Model RDMs from stimulus labels: 0 for pairs sharing the label, 1 otherwise.

    Parameters
    ----------
    stimuli_or_table : StimulusSet, DataFrame (indexed by stimulus_id), Activations or
        BrainResponses
    column : str or list of str
        Label column(s), e.g. ``"identity"`` or ``["identity", "expression"]``.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One RDM per column, rdm descriptor ``layer`` = ``"label:<column>"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from facebrain.rsa import label_rdm
    >>> t = pd.DataFrame({"identity": list("aabb")}, index=list("wxyz"))
    >>> label_rdm(t, "identity").get_vectors()[0].tolist()
    [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    """
    cols = [column] if isinstance(column, str) else list(column)
    obj = stimuli_or_table
    if hasattr(obj, "table") and isinstance(obj.table, pd.DataFrame):
        table = obj.table
    elif isinstance(obj, pd.DataFrame):
        table = obj
    elif isinstance(obj, (xr.Dataset, xr.DataArray)):
        table = pd.DataFrame(
            {c: np.asarray(obj[c].values) for c in obj.coords
             if c != "stimulus" and obj.coords[c].dims == ("stimulus",)},
            index=pd.Index(np.asarray(obj["stimulus"].values).astype(str), name="stimulus_id"),
        )
    else:
        raise ParameterTypeError("stimuli_or_table must be a StimulusSet, a DataFrame, Activations or "
                                 f"BrainResponses; got {type(obj).__name__}.")
    _check_n_stimuli(len(table), "The stimulus table")
    vecs = []
    for c in cols:
        if c not in table.columns:
            raise MissingKeyError(f"label column {c!r} not found; columns are {list(table.columns)}.")
        lab = np.asarray(table[c].astype(str))
        iu = np.triu_indices(len(lab), 1)
        vecs.append((lab[iu[0]] != lab[iu[1]]).astype(float))
    desc = {"stimulus": np.asarray(table.index.astype(str), dtype=object)}
    for c in table.columns:
        if c != "path":
            desc[c] = np.asarray(table[c]).astype(object)
    return RDMs(np.array(vecs), dissimilarity_measure="label",
                rdm_descriptors={"layer": [f"label:{c}" for c in cols]},
                pattern_descriptors=desc)
