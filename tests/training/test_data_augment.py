"""Cached uint8 pipeline == model.preprocess; augmentation against naive loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebrain.models import Preprocess
from facebrain.training import LightAugment
from facebrain.training._data import ImagePipeline, ImageStore


@pytest.mark.parametrize("pre", [
    Preprocess(input_size=24, resize=24, mean=(0.5,) * 3, std=(0.5,) * 3),
    Preprocess(input_size=20, resize=22, mean=(91.5, 103.9, 131.1), std=(1.0,) * 3,
               channel_order="BGR", value_range=255.0),
    Preprocess(input_size=21, resize=21, mean=(0.1,), std=(0.7,), grayscale=True),
])
def test_pipeline_equals_preprocess_bitwise(faces8, pre):
    pipe = ImagePipeline(pre)
    pos = np.array([5, 0, 17, 3])
    store = ImageStore(faces8, pipe, pos, cache=True)
    assert store.data.dtype == torch.uint8
    got = pipe.finish(pipe.to_unit(store.get(np.arange(4))))
    ref = torch.stack([pre(faces8.load(int(i))) for i in pos])
    assert got.shape == ref.shape
    assert torch.equal(got, ref)


def test_cached_and_streamed_batches_identical(faces8):
    pipe = ImagePipeline(Preprocess(input_size=24, resize=24))
    pos = np.arange(0, 30, 2)
    order = np.random.default_rng(0).permutation(len(pos))
    a = list(ImageStore(faces8, pipe, pos, cache=True).batches(order, 4))
    b = list(ImageStore(faces8, pipe, pos, cache=False).batches(order, 4))
    assert [len(i) for i, _ in a] == [4, 4, 4, 3]
    for (ia, xa), (ib, xb) in zip(a, b, strict=True):
        assert np.array_equal(ia, ib) and torch.equal(xa, xb)
    dropped = list(ImageStore(faces8, pipe, pos, cache=False).batches(order, 4, drop_last=True))
    assert [len(i) for i, _ in dropped] == [4, 4, 4]


def _naive_shift(img: np.ndarray, dy: int, dx: int, s: int) -> np.ndarray:
    padded = np.pad(img, ((0, 0), (s, s), (s, s)), mode="edge")
    h, w = img.shape[1:]
    return padded[:, s + dy:s + dy + h, s + dx:s + dx + w]


def test_light_augment_matches_naive_reference():
    aug = LightAugment(max_shift=3, flip=True, brightness=0.25)
    x = torch.rand(6, 3, 9, 7, generator=torch.Generator().manual_seed(1)) * 255
    out = aug(x, torch.Generator().manual_seed(5))
    # replay the draws in the documented order
    g = torch.Generator().manual_seed(5)
    flips = torch.rand(6, generator=g) < 0.5
    shifts = torch.randint(-3, 4, (6, 2), generator=g)
    factors = 1 + (torch.rand(6, generator=g) * 2 - 1) * 0.25
    for i in range(6):
        img = x[i].numpy()
        if flips[i]:
            img = img[:, :, ::-1]
        img = _naive_shift(img, int(shifts[i, 0]), int(shifts[i, 1]), 3)
        img = np.clip(img * float(factors[i]), 0, 255)
        np.testing.assert_allclose(out[i].numpy(), img, rtol=1e-6, atol=1e-4)
    again = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(out, again)
    assert not torch.equal(out, aug(x, torch.Generator().manual_seed(6)))


def test_light_augment_bad_values():
    with pytest.raises(ValueError, match="max_shift"):
        LightAugment(max_shift=-1)
    with pytest.raises(ValueError, match="brightness"):
        LightAugment(brightness=1.5)


def test_pipeline_needs_preprocess():
    with pytest.raises(ValueError, match="preprocess"):
        ImagePipeline(None)
