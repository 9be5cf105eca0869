"""Fixtures for the training tests: small procedural face sets, 1-2 threads."""

from __future__ import annotations

import pytest
import torch

from ._fakes import fake_identities


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def faces8():
    """8 identities x 12 images of 24 px."""
    return fake_identities(8, 12, size=24, seed=3)


def tiny_net(num_classes: int, input_size: int = 24, seed: int = 0, width: int = 8):
    from facebrain.models import create

    torch.manual_seed(seed)
    return create("small_resnet", num_classes=num_classes, width=width, input_size=input_size)
