"""sample_pairs and fit_siamese: pair structure, resume, verification on new people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from facebrain.models import create
from facebrain.training import fit_siamese, sample_pairs, verification_accuracy

from ._fakes import fake_identities


@pytest.fixture(scope="module")
def people():
    s = fake_identities(24, 10, size=64, seed=4)
    ident = s.table["identity"].to_numpy()
    return s.subset(ident < "id018"), s.subset(ident >= "id018")


def _net():
    torch.manual_seed(0)
    return create("siamese_lfw", width=4, hidden=32, embedding_dim=16, input_size=65)


def test_sample_pairs_structure(faces8):
    pairs = sample_pairs(faces8, 101, seed=3, same_fraction=0.3)
    assert list(pairs.columns) == ["left", "right", "same"]
    assert len(pairs) == 101 and pairs["same"].sum() == 30
    ident = faces8.table["identity"]
    same_id = ident.loc[pairs["left"]].to_numpy() == ident.loc[pairs["right"]].to_numpy()
    assert np.array_equal(same_id, pairs["same"].to_numpy())
    assert (pairs["left"] != pairs["right"]).all()
    keys = {tuple(sorted(p)) for p in zip(pairs["left"], pairs["right"])}
    assert len(keys) == len(pairs)                       # no duplicates while possible
    pd.testing.assert_frame_equal(pairs, sample_pairs(faces8, 101, seed=3, same_fraction=0.3))
    assert not pairs.equals(sample_pairs(faces8, 101, seed=4, same_fraction=0.3))


def test_sample_pairs_folds_are_person_disjoint(faces8):
    pairs = sample_pairs(faces8, 40, seed=0, folds=4)
    ident = faces8.table["identity"]
    people = [set(ident.loc[pairs.loc[pairs["fold"] == k, "left"]]) |
              set(ident.loc[pairs.loc[pairs["fold"] == k, "right"]]) for k in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert people[a].isdisjoint(people[b])
    assert (pairs.groupby("fold")["same"].sum() == 5).all()
    with pytest.raises(ValueError, match="half the number"):
        sample_pairs(faces8, 40, folds=5)


def test_sample_pairs_bad_inputs(faces8):
    with pytest.raises(KeyError, match="nosuch"):
        sample_pairs(faces8, 10, by="nosuch")
    one = faces8.subset(faces8.table["identity"] == "id000")
    with pytest.raises(ValueError, match="all images share identity='id000'"):
        sample_pairs(one, 10)
    singles = faces8.subset(np.arange(0, 96, 12))
    with pytest.raises(ValueError, match="no 'identity' value has two or more"):
        sample_pairs(singles, 10)


def test_fit_siamese_verifies_new_people(people, tmp_path):
    train, test = people
    test_pairs = sample_pairs(test, 240, seed=1, folds=3)
    before = verification_accuracy(_net(), test_pairs, test)
    fit = fit_siamese(_net(), sample_pairs(train, 400, seed=0), train, epochs=4, lr=1e-2,
                      batch_size=32, augment=False, progress=False, out_dir=tmp_path)
    after = verification_accuracy(fit.model, test_pairs, test)
    # random towers: chance; trained: well above chance on identities never seen
    assert abs(before.accuracy - 0.5) < 0.1
    assert after.accuracy > 0.7 and after.auc > 0.9
    assert fit.history[-1]["val_accuracy"] > 0.7
    assert (tmp_path / "best.pt").exists() and (tmp_path / "metrics.jsonl").exists()


def test_fit_siamese_resume_bitwise(people, tmp_path):
    train, _ = people
    pairs = sample_pairs(train, 96, seed=0)
    kw = {"epochs": 2, "batch_size": 32, "progress": False}
    whole = fit_siamese(_net(), pairs, train, out_dir=tmp_path / "a", **kw).model

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_siamese(_net(), pairs, train, out_dir=tmp_path / "b", callback=stop, **kw)
    resumed = fit_siamese(_net(), pairs, train, out_dir=tmp_path / "b", resume=True, **kw)
    sa, sb = whole.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_siamese_bad_inputs(people):
    train, _ = people
    pairs = sample_pairs(train, 20, seed=0)
    with pytest.raises(TypeError, match="forward_pair"):
        fit_siamese(create("small_resnet", width=4), pairs, train, progress=False)
    with pytest.raises(ValueError, match="same and different"):
        fit_siamese(_net(), pairs[pairs["same"]], train, val_fraction=0, progress=False)
    with pytest.raises(Exception, match="lacks column"):
        fit_siamese(_net(), pairs.drop(columns="same"), train, progress=False)
    with pytest.raises(KeyError, match="not in the StimulusSet"):
        fit_siamese(_net(), pairs.assign(right="nope"), train, progress=False)
