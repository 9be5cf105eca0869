"""Shared fixtures: seeded torch, a seeded rng and tiny, asymmetric stimulus sets."""

from __future__ import annotations

import os

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


def chromium_or_skip() -> str:
    """Path of headless Chromium for the browser tests.

    Without one the test is skipped, except under CI (``CI`` set to true/1/yes),
    where ``.ci/run`` installs Chromium: there a missing browser fails the test,
    so the browser checks can never pass by not running.
    """
    from facebrain.report._browser import find_chromium

    path = find_chromium()
    if path is None:
        msg = "Chromium is not installed (apt-get install chromium; .ci/run does this)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"CI={os.environ['CI']}: {msg}; the browser tests must run in CI",
                        pytrace=False)
        pytest.skip(msg)
    return path


@pytest.fixture
def chromium() -> str:
    """Headless Chromium's path (see :func:`chromium_or_skip`)."""
    return chromium_or_skip()


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


def _raises_facebrain(fb_type, builtin, match, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises ``fb_type`` (a FacebrainError) that is also ``builtin``
    and matches ``match``; returns the error."""
    from facebrain.errors import FacebrainError

    with pytest.raises(fb_type, match=match) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, builtin) and isinstance(err, FacebrainError)
    return err


@pytest.fixture
def raises_fb():
    """The checker of bad-input errors: ``raises_fb(ParameterError, ValueError, "msg", fn, ...)``."""
    return _raises_facebrain
