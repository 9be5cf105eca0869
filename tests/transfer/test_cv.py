"""Fold schemes: identities never leak, published kdef10 folds, explicit tables, bad folds."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synth import make_acts

from facebrain.transfer import kdef10_folds, make_folds, probe
from facebrain.transfer._cv import kdef_identity_index

PUBLISHED = [[8, 15, 31, 38, 47, 57, 66], [9, 16, 32, 39, 48, 58, 67], [10, 17, 33, 40, 49, 59, 68],
             [11, 18, 34, 41, 50, 60, 69], [12, 19, 35, 42, 51, 61, 0], [13, 20, 36, 43, 52, 62, 1],
             [14, 21, 25, 44, 53, 63, 2], [22, 45, 54, 64, 3, 4, 5], [23, 24, 55, 65, 6, 7, 56],
             [46, 37, 26, 27, 28, 29, 30]]


def test_leave_identity_out_never_leaks_and_is_seeded():
    acts = make_acts(n_id=13, n_expr=3)
    ids = acts["identity"].values
    f = make_folds(acts, "leave-identity-out", n_folds=5, seed=1)
    for train, test in f.splits():
        assert not set(ids[test]) & set(ids[train])
    per_fold = [len(set(ids[t])) for _, t in f.splits()]
    assert sorted(per_fold) == [2, 2, 3, 3, 3]
    again = make_folds(acts, "leave-identity-out", n_folds=5, seed=1)
    np.testing.assert_array_equal(again.assignment, f.assignment)
    other = make_folds(acts, "leave-identity-out", n_folds=5, seed=2)
    assert not np.array_equal(other.assignment, f.assignment)
    with pytest.raises(ValueError, match="needs at least 20 identities; the stimuli have 13"):
        make_folds(acts, "leave-identity-out", n_folds=20)


def test_leave_expression_and_view_out_and_kfold():
    from sklearn.model_selection import StratifiedKFold

    acts = make_acts(n_id=6, n_expr=4, views=("S", "HL", "HR"))
    f = make_folds(acts, "leave-expression-out")
    assert f.names == ["neutral", "happy", "sad", "angry"]
    for k, (_, test) in enumerate(f.splits()):
        assert set(acts["expression"].values[test]) == {f.names[k]}
    v = make_folds(acts, "leave-view-out")
    assert v.names == ["HL", "HR", "S"]
    k = make_folds(acts, "kfold", target="expression", n_folds=3, seed=4)
    y = acts["expression"].values
    ref = StratifiedKFold(3, shuffle=True, random_state=4).split(np.zeros(len(y)), y)
    for (_, t1), (_, t2) in zip(k.splits(), ref):
        np.testing.assert_array_equal(t1, t2)


def test_kdef10_published_folds():
    spec = kdef10_folds()
    assert spec["folds"] == PUBLISHED
    assert sorted(itertools.chain.from_iterable(spec["folds"])) == list(range(70))
    labels = [f"F{i:02d}" for i in range(1, 36)] + [f"M{i:02d}" for i in range(1, 36)]
    assert [kdef_identity_index(x) for x in labels] == list(range(70))
    assert kdef_identity_index("BM35") == 69
    # KDEF-format set: 70 people, sessions A only, 7 expressions, 2 views, shuffled order
    acts = make_acts(n_expr=7, views=("S", "HL"), id_labels=labels, n_units=(4, 4))
    acts = acts.isel(stimulus=np.random.default_rng(0).permutation(acts.sizes["stimulus"]))
    f = make_folds(acts, "kdef10")
    ids = acts["identity"].values
    assert f.names == [f"set{k}" for k in range(1, 11)]
    for k, (train, test) in enumerate(f.splits()):
        assert sorted(kdef_identity_index(i) for i in set(ids[test])) == sorted(PUBLISHED[k])
        assert not set(ids[test]) & set(ids[train])
        assert len(test) == 7 * 7 * 2
    with pytest.raises(ValueError, match="not a KDEF identity"):
        make_folds(make_acts(n_id=3), "kdef10")


def test_explicit_folds():
    acts = make_acts(n_id=4, n_expr=2)
    acts = acts.assign_coords(split=("stimulus", np.array(["a", "b"] * 4)))
    f = make_folds(acts, "split")
    assert f.names == ["a", "b"] and f.scheme == "column:split"
    mapping = {s: (0 if "p00" in s or "p01" in s else 1) for s in acts["stimulus"].values}
    g = make_folds(acts, mapping)
    np.testing.assert_array_equal(g.assignment, [0] * 4 + [1] * 4)
    del mapping[acts["stimulus"].values[0]]
    with pytest.raises(KeyError, match="no entry for 1 stimuli"):
        make_folds(acts, mapping)
    with pytest.raises(ValueError, match="unknown cv 'leave-one-out'"):
        make_folds(acts, "leave-one-out")


def test_bad_folds_and_targets():
    acts = make_acts(n_id=5, n_expr=3)
    with pytest.raises(ValueError, match=r"fold 'neutral' leaves expression class\(es\) "
                                         r"\['neutral'\] out of training"):
        probe(acts, "expression", cv="leave-expression-out")
    with pytest.raises(ValueError, match="target 'view' has a single class"):
        probe(acts, "view", cv="leave-identity-out", n_folds=5)
    with pytest.raises(KeyError, match="available layers"):
        probe(acts, "expression", layers=["l7"], n_folds=5)
