"""Evaluation helpers against sklearn and naive loops, on data with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from facebrain.models import Preprocess
from facebrain.stimuli import ArraySource, StimulusSet
from facebrain.training import evaluate_accuracy, verification_accuracy
from facebrain.training._evaluate import assign_folds, best_threshold, threshold_cv


def _naive_best(scores, same):
    s = np.unique(scores)
    cands = [-np.inf, *((s[1:] + s[:-1]) / 2), np.inf]
    accs = [np.mean((scores > t) == same) for t in cands]
    k = int(np.argmax(accs))
    return cands[k], accs[k]


@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    same = rng.random(n) < 0.5
    scores = np.round(rng.normal(same * 1.0, 1.0), 1)     # rounded: many ties
    t, acc = best_threshold(scores, same)
    t_ref, acc_ref = _naive_best(scores, same)
    assert acc == pytest.approx(acc_ref)
    assert t == pytest.approx(t_ref)
    assert np.mean((scores > t) == same) == pytest.approx(acc)


def test_threshold_cv_matches_manual_loop():
    rng = np.random.default_rng(1)
    same = rng.random(200) < 0.5
    scores = rng.normal(same * 1.5, 1.0)
    fold = np.arange(200) % 10
    res = threshold_cv(scores, same, fold, roc_auc=roc_auc_score)
    manual = []
    for k in range(10):
        t, _ = _naive_best(scores[fold != k], same[fold != k])
        manual.append(np.mean((scores[fold == k] > t) == same[fold == k]))
    np.testing.assert_allclose(res.fold_accuracy, manual)
    assert res.accuracy == pytest.approx(np.mean(manual))
    assert res.sem == pytest.approx(np.std(manual, ddof=1) / np.sqrt(10))
    assert res.auc == pytest.approx(roc_auc_score(same, scores))


def test_assign_folds_stratified_and_from_column():
    pairs = pd.DataFrame({"left": list("abcdefghij") * 3, "right": list("bcdefghija") * 3,
                          "same": [True] * 12 + [False] * 18})
    fold = assign_folds(pairs, 3, seed=0)
    for k in range(3):
        assert (pairs["same"][fold == k]).sum() == 4
    pairs["fold"] = np.repeat([7, 3, 5], 10)
    assert list(np.unique(assign_folds(pairs, 10, seed=0)[:10])) == [2]
    with pytest.raises(ValueError, match="folds"):
        assign_folds(pairs.drop(columns="fold"), 1, seed=0)


class _ColourNet(torch.nn.Module):
    """Known classifier: logits = minus distance of the mean colour to each class colour."""

    def __init__(self, colours):
        super().__init__()
        self.colours = torch.tensor(colours, dtype=torch.float32)
        self.preprocess = Preprocess(input_size=5, value_range=255.0)

    def forward(self, x):
        m = x.mean(dim=(2, 3))
        return -torch.cdist(m, self.colours)


def _colour_set(rng, n=40):
    colours = np.array([[200, 20, 20], [20, 200, 20], [20, 20, 200]])
    truth = rng.integers(0, 3, n)
    shown = np.where(rng.random(n) < 0.7, truth, rng.integers(0, 3, n))  # 30% relabelled
    imgs = np.broadcast_to(colours[shown][:, None, None, :], (n, 5, 5, 3)).astype(np.uint8)
    names = np.array(["red", "green", "blue"])
    table = pd.DataFrame({"identity": names[truth], "expression": "neutral", "view": "S"},
                         index=pd.Index([f"c{i}" for i in range(n)], name="stimulus_id"))
    return StimulusSet(table, image_source=ArraySource(imgs)), colours, names[shown]


def test_evaluate_accuracy_against_sklearn(rng):
    stim, colours, predicted = _colour_set(rng)
    net = _ColourNet(colours)
    net.classes_ = ["red", "green", "blue"]
    res = evaluate_accuracy(net, stim, "identity", batch_size=7)
    true = stim.table["identity"].to_numpy()
    assert list(res.predicted) == list(predicted)
    assert res.accuracy == pytest.approx(accuracy_score(true, predicted))
    ref = recall_score(true, predicted, labels=net.classes_, average=None)
    np.testing.assert_allclose(res.per_class.loc[net.classes_].to_numpy(), ref)
    assert list(res.per_class.index) == ["red", "green", "blue"]
    with pytest.raises(ValueError, match=r"\['red'\].*not among"):
        evaluate_accuracy(net, stim, "identity", classes=["green", "blue", "x"])
    with pytest.raises(KeyError, match="nosuch"):
        evaluate_accuracy(net, stim, "nosuch")


class _PairNet(torch.nn.Module):
    """forward = mean colour (embedding); forward_pair logits (different, same)."""

    def __init__(self):
        super().__init__()
        self.preprocess = Preprocess(input_size=5, value_range=255.0)

    def forward(self, x):
        return x.mean(dim=(2, 3))

    def forward_pair(self, a, b):
        d = torch.linalg.vector_norm(self(a) - self(b), dim=1)
        return torch.stack([d - 50, 50 - d], 1)


def test_verification_accuracy_known_answers(rng):
    stim, colours, shown = _colour_set(rng, n=60)
    ids = stim.ids.to_numpy()
    left = rng.integers(0, 60, 300)
    right = rng.integers(0, 60, 300)
    pairs = pd.DataFrame({"left": ids[left], "right": ids[right],
                          "same": (shown[left] == shown[right]).astype(int)})
    net = _PairNet()
    for metric in ("logit", "euclidean", "cosine"):
        res = verification_accuracy(net, pairs, stim, folds=5, metric=metric)
        assert res.accuracy == 1.0 and res.metric == metric, metric
        assert res.fold_accuracy.shape == (5,)
    # embeddings are the colours themselves: scores equal a hand computation
    res = verification_accuracy(net, pairs, stim, folds=5, metric="euclidean")
    code = {"red": 0, "green": 1, "blue": 2}
    c = colours[[code[name] for name in shown]].astype(float)
    ref = -np.linalg.norm(c[left] - c[right], axis=1)
    np.testing.assert_allclose(res.scores, ref, atol=1e-3)
    # against the other label: chance-level
    noisy = pairs.assign(same=rng.random(300) < 0.5)
    assert abs(verification_accuracy(net, noisy, stim).accuracy - 0.5) < 0.15
    with pytest.raises(KeyError, match="not in the StimulusSet"):
        verification_accuracy(net, pairs.assign(left="zzz"), stim)
    with pytest.raises(ValueError, match="forward_pair"):
        verification_accuracy(_ColourNet(colours), pairs, stim, metric="logit")
