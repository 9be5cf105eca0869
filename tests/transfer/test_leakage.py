"""Leakage guards on the transfer side: kfold mixing identities warns; extraction PCA refused."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synth import make_acts

from facebrain.errors import LeakageError
from facebrain.transfer import make_folds, probe


def test_kfold_for_a_non_identity_target_warns_that_identities_mix():
    acts = make_acts(n_id=6, n_expr=4)
    with pytest.warns(UserWarning, match="identities are mixed across folds"):
        make_folds(acts, "kfold", target="expression", n_folds=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_folds(acts, "kfold", target="identity", n_folds=3)
        make_folds(acts, "leave-identity-out", n_folds=3)


def test_probe_refuses_pca_fitted_on_its_test_stimuli():
    acts = make_acts(n_id=6, n_expr=4)
    acts["l1"].attrs["reduce"] = "pca:30"
    with pytest.raises(LeakageError, match="transfer.probe: layer 'l1'.*pca_fit_on"):
        probe(acts, "expression", layers=["l1"], n_folds=3)
    inside = np.isin(acts["identity"].values, ["p00", "p01"])
    acts = acts.assign_coords(pca_fit=("stimulus", inside))
    with pytest.raises(LeakageError, match="8 of the 24 analysed stimuli"):
        probe(acts, "expression", layers=["l1"], n_folds=3)
    res = probe(acts.sel(stimulus=~acts["pca_fit"]), "expression", layers=["l1"], n_folds=4)
    assert res.sizes["fold"] == 4
    # PCA inside the folds is the leakage-free alternative and stays allowed
    probe(make_acts(n_id=6, n_expr=4), "expression", layers=["l1"], n_folds=3, reduce="pca:5")
