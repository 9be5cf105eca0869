"""Refuse extraction-time PCA whose fit saw the stimuli a cross-validated analysis tests on."""

from __future__ import annotations

import json
import warnings

import numpy as np

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import LeakageError

__all__ = ["check_pca_leakage"]


def _spec(acts, layer: str) -> str:
    spec = acts[layer].attrs.get("reduce")
    if spec is None:
        try:
            spec = json.loads(acts.attrs.get("reduce", "{}")).get(layer)
        except (TypeError, ValueError):
            spec = None
    return str(spec or "none")


@public
def check_pca_leakage(acts, layers, *, analysis: str, groups=None) -> None:
    """Raise :class:`~facebrain.errors.LeakageError` if a ``pca:N`` layer was fitted on analysed stimuli.

    A PCA fitted at extraction on every stimulus has seen each test fold of a
    cross-validated analysis, so held-out scores are inflated. Such layers are
    accepted only when the Activations carry the ``pca_fit`` stimulus coordinate
    written by ``extract(..., pca_fit_on=...)`` and none of the analysed stimuli
    lies inside the fit.

    Parameters
    ----------
    acts : Activations
        The stimuli that the analysis will cross-validate over.
    layers : list of str
        Layers the analysis uses.
    analysis : str
        Named in the message (``"transfer.probe"``, ``"encoding.evaluate"``).
    groups : array-like of shape (n_stimuli,), optional
        Identities of the analysed stimuli: identities shared with the PCA fit set
        (other images of the same people) give a warning.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from facebrain.errors import LeakageError
    >>> acts = xr.Dataset({"fc": (("stimulus", "u"), np.zeros((3, 2)), {"reduce": "pca:2"})},
    ...                   coords={"stimulus": ["a", "b", "c"]})
    >>> try:
    ...     check_pca_leakage(acts, ["fc"], analysis="probe")
    ... except LeakageError as err:
    ...     print(str(err)[:56])
    probe: layer 'fc' was reduced at extraction with 'pca:2'
    """
    pca = [ly for ly in layers if _spec(acts, ly).startswith("pca")]
    if not pca:
        return
    fix = ("Fix: extract with pca_fit_on= a training subset (a query or stimulus ids) and "
           "analyse the other stimuli, use reduce='srp:N' (no fit), or let the analysis "
           "reduce inside its folds (transfer.probe(reduce='pca:N')).")
    if "pca_fit" not in acts.coords:
        raise LeakageError(
            f"{analysis}: layer {pca[0]!r} was reduced at extraction with "
            f"{_spec(acts, pca[0])!r}, a PCA fitted without a record of which stimuli it saw "
            f"(assumed: all of them, test folds included), so cross-validated scores would be "
            f"inflated. {fix}")
    inside = np.asarray(acts["pca_fit"].values).astype(bool)
    if inside.any():
        ids = np.asarray(acts["stimulus"].values).astype(str)[inside]
        raise LeakageError(
            f"{analysis}: {int(inside.sum())} of the {inside.size} analysed stimuli (e.g. "
            f"{[str(i) for i in ids[:3]]}) were inside the PCA fit of layer {pca[0]!r} "
            f"({acts.attrs.get('pca_fit_on', 'pca_fit_on unknown')}), so test folds shaped the "
            "projection. Analyse only the stimuli outside the fit: "
            "acts.sel(stimulus=~acts['pca_fit']). " + fix)
    if groups is not None and "identity" in acts.coords:
        fit_ids = acts.attrs.get("pca_fit_identities")
        if fit_ids:
            shared = sorted(set(json.loads(fit_ids)) & set(map(str, groups)))
            if shared:
                warnings.warn(f"{analysis}: identities {shared[:5]} are in both the PCA fit set "
                              "and the analysed stimuli; fit the PCA on other people for a "
                              "clean leave-identity-out estimate.", UserWarning,
                              stacklevel=user_stacklevel())
