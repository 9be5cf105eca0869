"""Safe weight loading: formats by content, restricted unpickling, key/shape checks."""

from __future__ import annotations

import os
import pickle
import subprocess
import warnings

import numpy as np
import pytest
import torch

from facebrain._utils import file_sha256
from facebrain.errors import WeightsError
from facebrain.models import create, load_weights
from facebrain.models._weights import read_state_dict, safe_pickle_load

SMALL = {"width": 4, "hidden": 16, "embedding_dim": 8, "input_size": 72}


def small_siamese(seed=0, **kw):
    torch.manual_seed(seed)
    return create("siamese_lfw", **{**SMALL, **kw}).eval()


def same_params(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- payloads
class _Payload:
    """Unpickling this calls ``fn(*args)``: the classic pickle code-execution trick."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(target):
    return {
        "os.system": _Payload(os.system, f"touch {target}"),
        "builtins.eval": _Payload(eval, f"open({str(target)!r}, 'w').write('x')"),
        "subprocess.Popen": _Payload(subprocess.Popen, ["touch", str(target)]),
        "builtins.exec": _Payload(exec, f"open({str(target)!r}, 'w').write('x')"),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess.Popen",
                                  "builtins.exec"])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, kind):
    target = tmp_path / f"pwned_{kind}"
    weights = {"conv1.weight": np.ones((2, 2), np.float32), "evil": _payloads(target)[kind]}
    path = tmp_path / "resnet50_ft_weight.pkl"
    path.write_bytes(pickle.dumps(weights, protocol=2))

    with pytest.raises(WeightsError) as err:
        safe_pickle_load(path)
    assert str(path) in str(err.value)
    module_name = {"os.system": "system", "builtins.eval": "eval",
                   "subprocess.Popen": "Popen", "builtins.exec": "exec"}[kind]
    assert module_name in str(err.value)
    with pytest.raises(WeightsError, match="refusing"):
        load_weights(small_siamese(), path)
    assert not target.exists()

    # control: the payload is real -- an ordinary unpickler does run it
    if kind != "subprocess.Popen":  # (Popen would return before the file exists)
        pickle.loads(path.read_bytes())
        assert target.exists()


def test_numpy_gadget_outside_allowlist_is_refused(tmp_path):
    # numpy.testing's runstring executes a string: a known bypass of naive "numpy.*" filters
    path = tmp_path / "w.pkl"
    path.write_bytes(
        b"\x80\x02cnumpy.testing._private.utils\nruntring\n."
        .replace(b"runtring", b"runstring")
    )
    with pytest.raises(WeightsError, match="numpy.testing._private.utils.runstring"):
        safe_pickle_load(path)


def test_safe_unpickler_reads_numpy_data(tmp_path):
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.float64(2.5), "c": np.array([1, 2], np.int64),
            "d": np.zeros((0, 3), np.float16)}
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        out = safe_pickle_load(path)
        for k, value in data.items():
            np.testing.assert_array_equal(out[k], value)
            assert np.asarray(out[k]).dtype == np.asarray(value).dtype


# ---------------------------------------------------------------- bad files
def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_weights(small_siamese(), "/nonexistent/nope.pth")


def test_jpeg_renamed_pth(tmp_path):
    from PIL import Image

    path = tmp_path / "weights.pth"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="JPEG")
    with pytest.raises(WeightsError, match="JPEG") as err:
        load_weights(small_siamese(), path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_truncated_files(tmp_path, suffix):
    net = small_siamese()
    full = tmp_path / f"full{suffix}"
    if suffix == ".pth":
        torch.save(net.state_dict(), full)
    else:
        full.write_bytes(pickle.dumps({k: v.numpy() for k, v in net.state_dict().items()}, 2))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated") as err:
        load_weights(small_siamese(), cut)
    assert str(cut) in str(err.value)


def test_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_weights(small_siamese(), empty)
    html = tmp_path / "w.pth"
    html.write_text("<html>Not found</html>")
    with pytest.raises(WeightsError, match="HTML"):
        load_weights(small_siamese(), html)


def test_pickled_module_in_torch_file_is_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(small_siamese(), path)  # a pickled nn.Module, not a state dict
    with pytest.raises(WeightsError, match="weights_only") as err:
        load_weights(small_siamese(), path)
    assert str(path) in str(err.value)


def test_code_payload_in_torch_file_is_refused(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "ckpt.pt"
    torch.save({"model": small_siamese().state_dict(), "x": _Payload(os.system, f"touch {target}")},
               path)
    with pytest.raises(WeightsError):
        load_weights(small_siamese(), path)
    assert not target.exists()


def test_non_numeric_entries(tmp_path):
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"a": np.ones(2), "name": "resnet"}, 2))
    with pytest.raises(WeightsError, match="name"):
        read_state_dict(path)


# ---------------------------------------------------------------- formats
def test_round_trip_every_container(tmp_path):
    src = small_siamese(seed=1)
    sd = src.state_dict()
    files = {
        "plain.pt": sd,
        "ckpt.pt": {"model": sd, "optimizer": {"state": {}}, "epoch": 4},
        "sd.pth": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        "nested.pt": {"format": "facebrain-checkpoint-1", "model": {"model_state_dict": sd},
                      "rng": {"torch": torch.get_rng_state()}, "classes": ["a", "b"]},
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    # content decides, not the suffix: a NumPy pickle named .pth
    (tmp_path / "numpy.pth").write_bytes(
        pickle.dumps({k: v.numpy() for k, v in sd.items()}, protocol=2))
    expected = {"plain.pt": "torch-zip", "ckpt.pt": "torch-zip", "sd.pth": "torch-zip",
                "nested.pt": "torch-zip",
                "legacy.pt": "torch-legacy", "numpy.pth": "pickle"}
    x = torch.rand(3, 1, 72, 72, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = src(x)
    for name, fmt in expected.items():
        dst = small_siamese(seed=2)
        assert not same_params(src, dst)
        load_weights(dst, tmp_path / name)
        assert same_params(src, dst), name
        assert dst.weights_format == fmt
        assert dst.weights_sha256 == file_sha256(tmp_path / name)
        assert dst.weights_path == str(tmp_path / name)
        with torch.no_grad():
            torch.testing.assert_close(dst(x), ref, rtol=0, atol=0)


def test_sha256(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(small_siamese().state_dict(), path)
    digest = file_sha256(path)
    net = load_weights(small_siamese(), path, sha256=digest.upper())
    assert net.describe()["weights_sha256"] == digest
    with pytest.raises(WeightsError, match="sha256 mismatch") as err:
        load_weights(small_siamese(), path, sha256="0" * 64)
    assert digest in str(err.value)


def test_create_with_weights(tmp_path):
    path = tmp_path / "w.pt"
    src = small_siamese(seed=3)
    torch.save({"model": src.state_dict()}, path)
    net = create("siamese_lfw", weights=path, sha256=file_sha256(path), **SMALL)
    assert same_params(src, net)
    with pytest.raises(TypeError, match="weights="):
        create("siamese_lfw", strict=False, **SMALL)


# ---------------------------------------------------------------- key checks
def test_wrong_architecture_lists_keys_and_counts(tmp_path):
    path = tmp_path / "densenet.pt"
    torch.save(create("densenet_gray48").state_dict(), path)
    with pytest.raises(WeightsError) as err:
        load_weights(small_siamese(), path)
    msg = str(err.value)
    n_own = len(small_siamese().state_dict())
    assert f"{n_own} missing keys" in msg
    assert "stages.conv1.conv.weight" in msg  # a missing key, by name
    assert "unexpected keys" in msg and "stages.conv0.weight" in msg
    assert str(path) in msg and "strict=False" in msg


def test_shape_mismatch_names_shapes(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(small_siamese(hidden=20).state_dict(), path)
    with pytest.raises(WeightsError, match=r"shape mismatches") as err:
        load_weights(small_siamese(), path)
    assert "stages.fc1.linear.weight: file (20, " in str(err.value)


def test_strict_false_loads_matching_and_warns(tmp_path):
    src = small_siamese(seed=4, hidden=20)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = small_siamese(seed=5)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.warns(UserWarning, match="3 shape-mismatched"):
        load_weights(dst, path, strict=False)
    s, d = src.state_dict(), dst.state_dict()
    skipped = [k for k in d if s[k].shape != d[k].shape]
    assert sorted(skipped) == ["stages.embedding.weight", "stages.fc1.linear.bias",
                               "stages.fc1.linear.weight"]
    for k in d:
        expected = s[k] if k not in skipped else before[k]
        assert torch.equal(d[k], expected), k


def test_new_head(tmp_path):
    src = create("densenet_gray48", num_classes=7).eval()
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = create("densenet_gray48", num_classes=3).eval()
    head_before = dst.stages["fc"].weight.detach().clone()
    with pytest.raises(WeightsError, match="new_head=True") as err:
        load_weights(dst, path)
    assert "stages.fc.weight: file (7, 184) vs model (3, 184)" in str(err.value)
    with pytest.warns(UserWarning, match="new_head=True"):
        load_weights(dst, path, new_head=True)
    torch.testing.assert_close(dst.stages["fc"].weight, head_before, rtol=0, atol=0)
    x = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(dst.forward_layers(x, "avgpool")["avgpool"],
                                   src.forward_layers(x, "avgpool")["avgpool"], rtol=0, atol=0)
    # a trunk mismatch is still an error with new_head=True
    path2 = tmp_path / "other.pt"
    torch.save(create("densenet_gray48", growth_rate=16).state_dict(), path2)
    with pytest.raises(WeightsError, match="another architecture"):
        load_weights(dst, path2, new_head=True)


def test_old_files_without_num_batches_tracked(tmp_path):
    src = create("densenet_gray48").eval()
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pt"
    torch.save(sd, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(create("densenet_gray48"), path)


def test_training_checkpoint_from_training_room(tmp_path):
    ckpt = pytest.importorskip("facebrain.training._checkpoint")
    src = small_siamese(seed=6)
    opt = torch.optim.SGD(src.parameters(), lr=0.1, momentum=0.9)
    path = ckpt.save_checkpoint(tmp_path / "last.pt", {
        "model": src.state_dict(), "optimizer": opt.state_dict(), "scheduler": None,
        "epoch": 2, "rng": ckpt.capture_rng(), "classes": None, "config": {"lr": 0.1},
        "history": [], "best": {}})
    dst = load_weights(small_siamese(seed=7), path)
    assert same_params(src, dst)
