"""Baselines (pixels, untrained twin) and transfer-direction config keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebrain.errors import ConfigError
from facebrain.pipeline import ModelConfig, load_config
from facebrain.pipeline._baselines import (
    check_baselines,
    model_seed,
    pixel_features,
    twin_name,
    untrained_twin,
)
from facebrain.pipeline._transfer_stage import direction_candidates, wanted_reduce


@pytest.fixture(scope="module")
def stim():
    from facebrain.stimuli import synthetic_identities

    return synthetic_identities(3, 3, seed=4, image_size=24)


def test_pixels_are_grayscale_at_the_stated_size(stim):
    ds = pixel_features(stim, size=10)
    assert ds["pixels"].shape == (9, 100) and ds.attrs["model"] == "pixels"
    # reference: PIL resize of the stored image, channel mean
    for i in (0, 5):
        ref = np.asarray(stim.load(i, size=10), np.float64).mean(axis=2).ravel()
        np.testing.assert_allclose(ds["pixels"].values[i], ref, rtol=1e-6)
    np.testing.assert_array_equal(ds["identity"].values, stim.table["identity"].to_numpy())
    # avgpool keeps every pixel (a single channel has nothing else to pool)
    np.testing.assert_array_equal(pixel_features(stim, 10, "avgpool")["pixels"].values,
                                  ds["pixels"].values)


def test_pixels_through_a_seeded_projection(stim):
    import zlib

    from sklearn.random_projection import SparseRandomProjection

    raw = pixel_features(stim, size=12)["pixels"].values
    a = pixel_features(stim, 12, "srp:20", seed=3)["pixels"].values
    b = pixel_features(stim, 12, "srp:20", seed=3)["pixels"].values
    np.testing.assert_array_equal(a, b)
    rs = (3 * 1_000_003 + zlib.crc32(b"pixels")) % (2**32)
    ref = SparseRandomProjection(20, dense_output=True, random_state=rs).fit(raw).transform(raw)
    np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-3)
    assert not np.allclose(a, pixel_features(stim, 12, "srp:20", seed=4)["pixels"].values)


def test_pixel_size_and_reduce_errors(stim):
    with pytest.raises(ConfigError, match="size"):
        pixel_features(stim, size=1)
    with pytest.raises(ValueError, match="reduce"):
        pixel_features(stim, size=8, reduce="blur:3")


def test_untrained_twin_is_the_networks_initialisation():
    from facebrain.pipeline._stages import _seeded_create

    cfg = ModelConfig(name="net", arch="small_resnet", options={"width": 8, "input_size": 32})
    trained_init = _seeded_create("small_resnet", 7, num_classes=5, width=8, input_size=32)
    twin = untrained_twin(cfg, 7, num_classes=5)
    a, b = trained_init.state_dict(), twin.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = untrained_twin(cfg, 8, num_classes=5).state_dict()
    assert not all(torch.equal(other[k], b[k]) for k in b)
    assert not twin.training
    state = torch.random.get_rng_state()
    untrained_twin(cfg, 9)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched


def test_candidates_and_seeds():
    cfg = load_config(overrides={"transfer.directions[0].models": ["identity_net", "untrained"]})
    d = cfg.transfer.directions[0]
    cands = direction_candidates(cfg, d)
    assert cands == [("identity_net", "network", None), ("untrained", "network", None),
                     (twin_name("identity_net"), "untrained", "identity_net"),
                     ("pixels", "pixels", None)]  # the untrained model is its own twin
    assert model_seed(cfg, "identity_net") == cfg.seed and model_seed(cfg, "untrained") == 2
    assert wanted_reduce((64, 8, 8), "srp:128") == "srp:128"
    assert wanted_reduce((64,), "srp:128") is None
    assert wanted_reduce((64, 8, 8), "avgpool") == "avgpool"


@pytest.mark.parametrize("key,value,msg", [
    ("baselines", ["pixel"], "transfer.directions[0].baselines[0]: unknown baseline 'pixel'"),
    ("features", "pca:10", "transfer.directions[0].features: expected 'srp:N'"),
    ("features", "srp:0", "transfer.directions[0].features"),
    ("pixel_size", 1, "transfer.directions[0].pixel_size"),
])
def test_direction_config_errors(key, value, msg):
    with pytest.raises(ConfigError) as err:
        load_config(overrides={f"transfer.directions[0].{key}": value})
    assert msg in str(err.value)


def test_check_baselines_dedupes():
    assert check_baselines(["pixels", "untrained", "pixels"], "k") == ["pixels", "untrained"]
