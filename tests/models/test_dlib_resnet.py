"""dlib_resnet against dlib's own ``compute_face_descriptor``; its file reader's errors.

The reference is dlib (dlib-bin) itself on the same 150x150 chips; the test is
skipped where dlib or face-recognition-models is absent. ``compute_face_descriptor``
on an aligned chip with the default ``num_jitters=0`` does no jitter and no
resizing (it refuses other sizes), so the same uint8 chip goes to both sides.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from realnet_fakes import chips_150, dlib_int, dlib_str, loss_header

from facebrain.errors import MissingDependencyError, WeightsError
from facebrain.models import create
from facebrain.models._dlib_resnet import _wrappers

torch.set_num_threads(2)
HAVE_WEIGHTS = importlib.util.find_spec("face_recognition_models") is not None
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="face-recognition-models absent")
TOL = 1e-5  # max abs difference of the 128-D descriptors (values ~0.1-0.4)


@pytest.fixture(scope="module")
def pretrained():
    if not HAVE_WEIGHTS:
        pytest.skip("face-recognition-models is not installed")
    return create("dlib_resnet").eval()


@needs_weights
def test_embeddings_equal_dlib(pretrained):
    dlib = pytest.importorskip("dlib")
    chips = chips_150()
    assert len(chips) >= 4
    ref = dlib.face_recognition_model_v1(pretrained.weights_path)
    theirs = np.array([np.array(ref.compute_face_descriptor(c)) for c in chips])
    x = torch.stack([pretrained.preprocess(c) for c in chips])
    with torch.no_grad():
        ours = pretrained(x).numpy()
    assert ours.shape == (len(chips), 128)
    diff = np.abs(ours - theirs).max()
    assert diff <= TOL, f"max |ours - dlib| = {diff:.3g} > {TOL}"
    # the descriptors are informative: different chips are far apart, as dlib says
    assert np.linalg.norm(theirs[0] - theirs[-1]) > 100 * TOL


@needs_weights
def test_layers_stop_early_and_shapes(pretrained):
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 150, 150)).astype("float32"))
    with torch.no_grad():
        full = pretrained.forward_layers(x)
        part = pretrained.forward_layers(x, ["level2", "conv1"])
    assert list(full) == ["conv1", "maxpool", "level1", "level2", "level3", "level4", "level5",
                          "avgpool", "embedding"]
    shapes = {k: tuple(v.shape[1:]) for k, v in full.items()}
    assert shapes == {"conv1": (32, 72, 72), "maxpool": (32, 35, 35), "level1": (32, 35, 35),
                      "level2": (64, 17, 17), "level3": (128, 8, 8), "level4": (256, 4, 4),
                      "level5": (256, 2, 2), "avgpool": (256,), "embedding": (128,)}
    assert list(part) == ["conv1", "level2"]
    torch.testing.assert_close(part["level2"], full["level2"], rtol=0, atol=0)
    d = pretrained.describe()
    assert d["weights_format"] == "dlib-dat" and len(d["weights_sha256"]) == 64
    assert pretrained.preprocess.input_size == 150 and pretrained.preprocess.std == (256.0,) * 3


@needs_weights
def test_weights_as_path_and_state_dict(pretrained):
    by_path = create("dlib_resnet", weights=pretrained.weights_path)
    sd = pretrained.state_dict()
    by_dict = create("dlib_resnet", weights=sd)
    for m in (by_path, by_dict):
        for k, v in m.state_dict().items():
            torch.testing.assert_close(v, sd[k], rtol=0, atol=0)
    assert by_dict.weights_format == "state-dict" and by_dict.weights_path == ""


def test_untrained_twin_is_seeded_and_same_architecture():
    torch.manual_seed(5)
    a = create("dlib_resnet", pretrained=False)
    torch.manual_seed(5)
    b = create("dlib_resnet", pretrained=False)
    torch.manual_seed(6)
    c = create("dlib_resnet", pretrained=False)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["stages.level3.0.conv1.weight"], sc["stages.level3.0.conv1.weight"])
    assert a.weights_sha256 is None and a.layer_names[-1] == "embedding"
    # dlib's Glorot-uniform bound sqrt(6 / (fan_in + fan_out)) with fan_in = 3*3*in
    w = sa["stages.level2.0.conv1.weight"]
    assert w.abs().max() <= np.sqrt(6 / (9 * 32 + 64)) and w.std() > 0.5 * np.sqrt(2 / (9 * 32 + 64))
    with torch.no_grad():
        out = a.eval()(torch.zeros(1, 3, 150, 150))
    assert out.shape == (1, 128) and torch.isfinite(out).all()


def test_missing_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(MissingDependencyError, match="face-recognition-models") as err:
        create("dlib_resnet")
    assert "facebrain[faces]" in str(err.value) and isinstance(err.value, ImportError)
    create("dlib_resnet", pretrained=False)  # the untrained twin needs no package


def test_num_classes_is_refused():
    with pytest.raises(ValueError, match="no classifier"):
        create("dlib_resnet", pretrained=False, num_classes=5)


# ------------------------------------------------------------ bad files
def test_truncated_fake_dat(tmp_path):
    f = tmp_path / "short.dat"
    f.write_bytes(loss_header() + dlib_int(2) + dlib_int(2))  # two wrapper versions, then EOF
    with pytest.raises(WeightsError, match=r"short\.dat.*needs 1 more bytes but only 0 remain"):
        create("dlib_resnet", weights=f)


def test_wrong_architecture_fake_dat(tmp_path):
    f = tmp_path / "other.dat"
    f.write_bytes(loss_header() + dlib_int(7) + b"\0" * 64)
    with pytest.raises(WeightsError, match="another network architecture"):
        create("dlib_resnet", weights=f)
    g = tmp_path / "shape_predictor.dat"  # not a metric network at all
    g.write_bytes(dlib_int(1) + dlib_str("loss_mmod_") + b"\0" * 40)
    with pytest.raises(WeightsError, match="'loss_mmod_', expected loss_metric_2"):
        create("dlib_resnet", weights=g)


def test_wrong_layer_in_fake_dat(tmp_path):
    n = sum(1 for w in _wrappers())
    body = loss_header() + b"".join(
        dlib_int(1 if w[0] != "layer" else (3 if i == n - 1 else 2))
        for i, w in enumerate(_wrappers()))
    body += dlib_str("input_rgb_image_sized") + b"".join(dlib_int(0) + dlib_int(0) for _ in range(3))
    body += dlib_int(150) + dlib_int(150) + dlib_str("fc_2")  # a conv was expected here
    f = tmp_path / "swapped.dat"
    f.write_bytes(body)
    with pytest.raises(WeightsError, match=r"'fc_2', expected 'con_4'.*layer 0 \(con\)"):
        create("dlib_resnet", weights=f)


@needs_weights
def test_truncated_real_dat_loads_nothing(tmp_path, pretrained):
    data = Path(pretrained.weights_path).read_bytes()
    f = tmp_path / "cut.dat"
    f.write_bytes(data[: len(data) // 2])
    torch.manual_seed(0)
    twin = create("dlib_resnet", pretrained=False)
    before = {k: v.clone() for k, v in twin.state_dict().items()}
    from facebrain.models import load_weights

    with pytest.raises(WeightsError, match="more bytes but only"):
        load_weights(twin, f)
    assert all(torch.equal(before[k], v) for k, v in twin.state_dict().items())


@needs_weights
def test_batchnorm_file_converted_like_dlib(tmp_path, pretrained):
    """Affine layers stored as bn_con2 (as a training net saves them), converted as
    dlib's ``affine_(const bn_&)`` converts them."""
    dlib = pytest.importorskip("dlib")
    from realnet_fakes import dlib_bn_con

    from facebrain.models._dlib_format import read_dlib_net

    data = Path(pretrained.weights_path).read_bytes()
    layers, _ = read_dlib_net(pretrained.weights_path, _wrappers())
    rng = np.random.default_rng(7)
    pieces, last, n_bn = [], 0, 0
    for i, layer in enumerate(layers):
        if layer.kind != "affine" or i % 3:
            continue
        g, b = layer.params["weight"], layer.params["bias"]
        var = rng.uniform(0.5, 2.0, g.size).astype(np.float32)
        mean = rng.normal(0, 0.1, g.size).astype(np.float32)
        eps = 1e-5
        scale = rng.uniform(0.8, 1.25, g.size).astype(np.float32)  # another network
        bn = dlib_bn_con(g * scale * np.sqrt(var + eps), b + g * mean, mean, var, eps)
        pieces += [data[last:layer.span[0]], bn]
        last, n_bn = layer.span[1], n_bn + 1
    f = tmp_path / "bn.dat"
    f.write_bytes(b"".join(pieces) + data[last:])
    assert n_bn >= 8
    ours = create("dlib_resnet", weights=f).eval()
    assert sum(1 for la in read_dlib_net(f, _wrappers())[0] if la.config.get("from")) == n_bn
    chips = chips_150(n_synthetic=2)
    theirs = np.array([np.array(d) for d in
                       dlib.face_recognition_model_v1(str(f)).compute_face_descriptor(chips)])
    with torch.no_grad():
        mine = ours(torch.stack([ours.preprocess(c) for c in chips])).numpy()
    assert np.abs(mine - theirs).max() <= TOL
    with torch.no_grad():
        orig = pretrained(torch.stack([pretrained.preprocess(c) for c in chips])).numpy()
    assert np.abs(orig - theirs).max() > 10 * TOL  # the rewritten file is another network


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name, shape", [("dlib_resnet", (3, 3, 150, 150)),
                                         ("fer_minixception", (3, 1, 64, 64))])
def test_cuda_matches_cpu(name, shape, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32 on both
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    net = create(name, pretrained=False).eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cpu = net.forward_layers(x)
        gpu = net.to("cuda").forward_layers(x.to("cuda"))
    for k, v in cpu.items():
        torch.testing.assert_close(gpu[k].cpu(), v, rtol=1e-4, atol=1e-4)
