"""Shared fixtures: seeded torch, a seeded rng and tiny, asymmetric stimulus sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebrain.stimuli import ArraySource, StimulusSet


@pytest.fixture(autouse=True)
def _seed_torch():
    """Seed torch's global generator before every test, so that a test which
    draws from it (weight init, ``torch.randn`` without a generator) gives the
    same numbers whatever ran before it; the previous state is restored after."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        yield
        return
    state = torch.random.get_rng_state()
    torch.manual_seed(20261126)
    yield
    torch.random.set_rng_state(state)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)


@pytest.fixture
def tiny_stimuli(rng) -> StimulusSet:
    """6 identities x 3 expressions x 1 view of 13x11 random RGB images."""
    ids, rows = [], []
    for p in range(6):
        for e in ("neutral", "happy", "sad"):
            ids.append(f"p{p}_{e}")
            rows.append({"identity": f"p{p}", "expression": e, "view": "S"})
    table = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    images = rng.integers(0, 256, size=(len(ids), 13, 11, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="tiny")
