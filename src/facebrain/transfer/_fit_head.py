"""``fit_head``: a probe fitted on all stimuli whose outputs become a new 'layer'."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._boundary import public
from ..errors import ParameterError, ShapeError
from ._heads import blas_threads_for, make_probe_pipeline
from ._probe import _layers, _target

__all__ = ["FittedHead", "fit_head"]


@public
class FittedHead:
    """A fitted read-out of ``target`` from ``layer``.

    ``transform(acts)`` (alias ``apply``) returns a copy of ``acts`` with a new
    variable ``"{target}_head@{layer}"`` of shape (n_stimuli, n_classes): class
    probabilities (``output="proba"``) or decision values (``output="decision"``),
    on the unit dim ``"{name}_unit"`` whose coordinate is the class labels. The
    new variable is a layer like any other (``acts.fb.layers``), so it goes into
    RSA and encoding models.

    Attributes
    ----------
    pipeline_ : sklearn Pipeline
        Scaler, optional reduction and head, fitted on every stimulus given.
    classes_ : list of str
    name : str
    """

    def __init__(self, pipeline, *, layer: str, target: str, classes: list[str], n_units: int,
                 output: str, head: str) -> None:
        self.pipeline_ = pipeline
        self.layer = layer
        self.target = target
        self.classes_ = list(classes)
        self.n_units = int(n_units)
        self.output = output
        self.head = head
        self.name = f"{target}_head@{layer}"

    def __repr__(self) -> str:
        return f"<FittedHead {self.name}: {len(self.classes_)} classes, output={self.output}>"

    def _X(self, acts) -> np.ndarray:
        _layers(acts, [self.layer])
        X = acts.fb.matrix(self.layer)
        if X.shape[1] != self.n_units:
            raise ShapeError(
                f"layer {self.layer!r} has {X.shape[1]} units here but the head was fitted on "
                f"{self.n_units}; apply it to activations of the same model and reduction"
            )
        return X

    def outputs(self, acts) -> np.ndarray:
        """Class probabilities or decision values, shape (n_stimuli, n_classes)."""
        X = self._X(acts)
        if self.output == "proba":
            return self.pipeline_.predict_proba(X)
        z = self.pipeline_.decision_function(X)
        return z[:, None] if z.ndim == 1 else z

    def predict(self, acts) -> np.ndarray:
        """Predicted class labels, shape (n_stimuli,)."""
        codes = self.pipeline_.predict(self._X(acts))
        return np.asarray(self.classes_)[codes]

    def transform(self, acts: xr.Dataset) -> xr.Dataset:
        """Return ``acts`` with the head's outputs added as variable ``self.name``."""
        out = self.outputs(acts)
        dim = f"{self.name}_unit"
        if self.output == "decision" and out.shape[1] != len(self.classes_):
            labels = [f"decision_{k}" for k in range(out.shape[1])]
        else:
            labels = self.classes_
        var = xr.DataArray(
            out.astype(np.float32), dims=("stimulus", dim),
            coords={"stimulus": acts["stimulus"].values, dim: np.asarray(labels, dtype=str)},
            attrs={"shape": [out.shape[1]], "reduce": "none", "head": self.head,
                   "output": self.output, "fitted_on_layer": self.layer, "target": self.target},
        )
        new = acts.copy()
        new[self.name] = var
        return new

    apply = transform


@public
def fit_head(acts: xr.Dataset, target: str, *, layer: str, head="logistic",
             standardize: bool = True, reduce: str | None = None, seed: int = 0,
             head_kw: dict | None = None, output: str = "proba") -> FittedHead:
    """Fit a ``target`` read-out of ``layer`` on every stimulus of ``acts``.

    Parameters
    ----------
    acts : Activations
    target : str
        Stimulus label to read out.
    layer : str
        Layer the head reads.
    head : {"logistic", "fc"} or sklearn classifier
    standardize, reduce, seed, head_kw
        As in :func:`probe`.
    output : {"proba", "decision"}
        What :meth:`FittedHead.transform` adds: class probabilities or decision values.

    Returns
    -------
    FittedHead

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> h = fit_head(acts.sel(stimulus=acts["view"] == "S"), "expression", layer="avgpool")
    >>> acts2 = h.transform(acts.sel(stimulus=acts["view"] == "HL"))
    >>> acts2["expression_head@avgpool"].shape
    (18, 3)
    """
    if output not in ("proba", "decision"):
        raise ParameterError(f"output must be 'proba' or 'decision'; got {output!r}")
    _layers(acts, [layer])
    y, classes = _target(acts, target)
    pipe = make_probe_pipeline(head, standardize=standardize, reduce=reduce, seed=seed,
                         head_kw=head_kw)
    X = acts.fb.matrix(layer)
    with blas_threads_for(X):
        pipe.fit(X, y)
    if output == "proba" and not hasattr(pipe, "predict_proba"):
        raise ParameterError(f"head {head!r} has no predict_proba; pass output='decision'")
    return FittedHead(pipe, layer=layer, target=target, classes=classes, n_units=X.shape[1],
                      output=output, head=head if isinstance(head, str) else type(head).__name__)
