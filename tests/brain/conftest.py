"""Fixtures of the brain tests: a module-scoped simulated BIDS dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebrain.stimuli import ArraySource, StimulusSet


def make_stimuli(n_id: int = 8, seed: int = 3) -> StimulusSet:
    rng = np.random.default_rng(seed)
    ids, rows = [], []
    for p in range(n_id):
        for e in ("neutral", "happy", "sad", "angry"):
            ids.append(f"p{p}_{e}")
            rows.append({"identity": f"p{p}", "expression": e, "view": "S"})
    table = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    images = rng.integers(0, 256, size=(len(ids), 17, 13, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="brain-test")


@pytest.fixture(scope="session")
def sim_stimuli() -> StimulusSet:
    return make_stimuli()


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory, sim_stimuli):
    from facebrain.brain import simulate

    root = tmp_path_factory.mktemp("sim") / "bids"
    return simulate(root, sim_stimuli, subjects=3, runs=4, repeats=2, seed=11, snr=0.5)
