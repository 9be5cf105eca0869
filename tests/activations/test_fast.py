"""extract()'s fast paths (oneDNN convolutions, fused copies) against the plain model forward."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _nets import TorchvisionResNet

from facebrain.activations import _fast, extract
from facebrain.models import FaceNet, Preprocess
from facebrain.stimuli import ArraySource, StimulusSet

needs_mkldnn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                                  reason="torch built without oneDNN")

#: fused / oneDNN convolutions sum in another order: agreement to 1e-5 of the layer's scale
TOL = 1e-5


@pytest.fixture
def stim(rng):
    n = 11
    table = pd.DataFrame({"identity": [f"p{i % 3}" for i in range(n)], "expression": "neutral",
                          "view": "S"},
                         index=pd.Index([f"s{i:02d}" for i in range(n)], name="stimulus_id"))
    images = rng.integers(0, 256, size=(n, 37, 41, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="fastset")


def _plain(model, stimuli, layers):
    """The model's own forward, one image at a time, NCHW, no fusion, no oneDNN."""
    out = {ly: [] for ly in layers}
    with torch.no_grad():
        for i in range(len(stimuli)):
            x = model.preprocess(stimuli.load(i))[None]
            for name, stage in model.stages.items():
                x = stage(x)
                if name in out:
                    out[name].append(x.reshape(1, -1).clone())
    return {ly: torch.cat(v).numpy() for ly, v in out.items()}


def _assert_close(got, ref):
    for ly, r in ref.items():
        scale = float(np.abs(r).max())
        assert scale > 0
        np.testing.assert_allclose(got[ly].values, r, rtol=0, atol=TOL * scale, err_msg=ly)


def _run(model, layers):
    x = model.preprocess(np.zeros((37, 41, 3), np.uint8))[None]
    return _fast.inference_stages(model, layers, True, mkldnn=True, probe=x)


def _on_mkldnn(model, layers):
    """Stages on oneDNN in either form (fused pointwise calls or oneDNN tensors)."""
    run = _run(model, layers)
    return run.on_mkldnn | run.on_pointwise


@needs_mkldnn
def test_mkldnn_matches_plain_forward(stim):
    torch.manual_seed(0)
    model = TorchvisionResNet("resnet18", input_size=40, seed=1)
    layers = ["conv1", "layer1", "layer3", "avgpool"]
    ref = _plain(model, stim, layers)
    got = extract(model, stim, layers, batch_size=4, progress=False, mkldnn=True)
    _assert_close(got, ref)
    # the oneDNN path was really taken (else this test checks nothing new)
    assert {"conv1", "layer1", "layer2", "layer3"} <= _on_mkldnn(model, layers)
    # stop-early holds on the fast path too: nothing past layer1 is in the run
    one = extract(model, stim, "layer1", batch_size=4, progress=False, mkldnn=True)
    np.testing.assert_allclose(one["layer1"].values, got["layer1"].values, rtol=0,
                               atol=TOL * np.abs(ref["layer1"]).max())
    x = model.preprocess(stim.load(0))[None]
    run = _fast.inference_stages(model, ["layer1"], True, mkldnn=True, probe=x)
    assert list(run) == ["conv1", "layer1"]
    # and nothing about the model changed
    assert isinstance(model.net.conv1, nn.Conv2d) and model.net.conv1.weight.is_contiguous()


@needs_mkldnn
def test_mkldnn_copy_follows_weight_changes(stim):
    model = TorchvisionResNet("resnet18", input_size=40, seed=2)
    first = extract(model, stim, ["layer1"], batch_size=4, progress=False, mkldnn=True)
    with torch.no_grad():
        model.net.layer1[0].conv1.weight.mul_(1.5)  # in place: version counter
    model.net.conv1.weight.data.mul_(0.5)  # through .data: caught by the sum
    ref = _plain(model, stim, ["layer1"])
    again = extract(model, stim, ["layer1"], batch_size=4, progress=False, mkldnn=True)
    _assert_close(again, ref)
    assert not np.allclose(again["layer1"].values, first["layer1"].values, atol=1e-3)


class _Halve(nn.Module):
    """conv then keep the first half of the channels: slicing oneDNN tensors fails."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y[:, : y.shape[1] // 2] * 2


class _SliceNet(FaceNet):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.stages["conv1"] = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                             nn.BatchNorm2d(8), nn.ReLU())
        self.stages["halve"] = _Halve(8)
        self.stages["conv2"] = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())
        self.stages["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        with torch.no_grad():
            bn = self.stages["conv1"][1]
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        self.preprocess = Preprocess(input_size=21, mean=(0.5,) * 3, std=(0.25,) * 3)
        self.name = "slicenet"
        self.eval()


@needs_mkldnn
def test_stage_oneDNN_cannot_run_falls_back(stim):
    model = _SliceNet()
    layers = ["conv1", "halve", "conv2", "pool"]
    ref = _plain(model, stim, layers)
    got = extract(model, stim, layers, batch_size=4, progress=False, mkldnn=True)
    _assert_close(got, ref)
    x = model.preprocess(stim.load(0))[None]
    on = _fast.inference_stages(model, layers, True, mkldnn=True, probe=x).on_mkldnn
    assert "halve" not in on and "conv2" in on
    run = _fast.inference_stages(model, layers, True, mkldnn=True, probe=x)
    assert "conv1" in run.on_pointwise and "halve" not in run.on_pointwise


@needs_mkldnn
def test_wrong_oneDNN_copy_is_refused(stim, monkeypatch):
    """A oneDNN copy that disagrees with the plain stage on the probe is not used."""
    real = _fast.MkldnnConv2d.forward
    monkeypatch.setattr(_fast.MkldnnConv2d, "forward", lambda self, x: real(self, x) * 1.01)
    real_pw = _fast.PointwiseConv2d.forward
    monkeypatch.setattr(_fast.PointwiseConv2d, "forward",
                        lambda self, *a: real_pw(self, *a) * 1.01)
    model = TorchvisionResNet("resnet18", input_size=40, seed=4)
    layers = ["conv1", "layer2"]
    ref = _plain(model, stim, layers)
    got = extract(model, stim, layers, batch_size=4, progress=False, mkldnn=True)
    _assert_close(got, ref)
    assert not {"conv1", "layer1", "layer2"} & _on_mkldnn(model, layers)


def test_mkldnn_off_and_distributed_paths_do_not_use_it(stim):
    model = TorchvisionResNet("resnet18", input_size=40, seed=5)
    x = model.preprocess(stim.load(0))[None]
    run = _fast.inference_stages(model, ["layer2"], True, mkldnn=False, probe=x)
    assert not run.on_mkldnn and not run.on_pointwise
    ref = _plain(model, stim, ["layer2"])
    got = extract(model, stim, ["layer2"], batch_size=4, progress=False, mkldnn=False)
    _assert_close(got, ref)


@needs_mkldnn
def test_pointwise_bottlenecks_match_plain_forward(stim):
    """ResNet-50: every conv fused with its ReLU / residual add, all stages as torchvision's."""
    model = TorchvisionResNet("resnet50", input_size=40, seed=7)
    layers = ["conv1", "layer1", "layer2", "layer3", "layer4", "avgpool"]
    ref = _plain(model, stim, layers)
    got = extract(model, stim, layers, batch_size=4, progress=False)
    _assert_close(got, ref)
    run = _run(model, layers)
    assert {"conv1", "layer1", "layer2", "layer3", "layer4"} <= run.on_pointwise
    convs = [m for m in run["layer1"].modules() if isinstance(m, _fast.PointwiseConv2d)]
    # 3 blocks x 3 convs + 1 downsample; each block's last conv adds the shortcut, then ReLU
    assert len(convs) == 10
    assert sum(c.binary for c in convs) == 3 and all(c.unary == "relu" for c in convs
                                                    if c.binary)
    assert not any(isinstance(m, (nn.ReLU, nn.Conv2d)) for m in run["layer1"].modules())
    # channels-last outputs are written once into the result, whatever the batch split
    odd = extract(model, stim, ["layer1"], batch_size=3, progress=False)
    _assert_close(odd, {"layer1": ref["layer1"]})


@needs_mkldnn
def test_oneDNN_tensor_form_when_pointwise_unavailable(stim, monkeypatch):
    """Without the fused calls (older oneDNN build) the stages run on oneDNN tensors."""
    monkeypatch.setattr(_fast, "_to_pointwise", lambda stage: None)
    model = TorchvisionResNet("resnet18", input_size=40, seed=8)
    layers = ["conv1", "layer2", "avgpool"]
    ref = _plain(model, stim, layers)
    got = extract(model, stim, layers, batch_size=4, progress=False)
    _assert_close(got, ref)
    run = _run(model, layers)
    assert not run.on_pointwise and {"conv1", "layer1", "layer2"} <= run.on_mkldnn


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu(stim):
    model = TorchvisionResNet("resnet18", input_size=40, seed=6)
    layers = ["conv1", "layer1", "layer4", "avgpool"]
    cpu = extract(model, stim, layers, batch_size=4, progress=False, device="cpu")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    gpu = extract(model, stim, layers, batch_size=4, progress=False, device="cuda")
    model.to("cpu")
    for ly in layers:
        scale = float(np.abs(cpu[ly].values).max())
        np.testing.assert_allclose(gpu[ly].values, cpu[ly].values, rtol=0, atol=1e-4 * scale,
                                   err_msg=ly)


class _PixNet(FaceNet):
    """First stage returns its input: its output aliases the loader's (reused) batch."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(9)
        self.stages["pix"] = nn.Identity()
        self.stages["conv"] = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.preprocess = Preprocess(input_size=9, mean=(0.5,) * 3, std=(0.25,) * 3)
        self.name = "pixnet"
        self.eval()


@pytest.mark.parametrize("to_store", [False, True])
def test_reused_batch_buffer_never_leaks_into_results(stim, tmp_path, to_store):
    """Batches share one input buffer; every stored row is still its own image."""
    model = _PixNet()
    layers = ["pix", "conv"]
    ref = _plain(model, stim, layers)
    store = tmp_path / "acts.zarr" if to_store else None
    got = extract(model, stim, layers, batch_size=4, progress=False, store=store)
    _assert_close(got.load(), ref)
    pix = np.stack([model.preprocess(stim.load(i)).numpy().ravel() for i in range(len(stim))])
    np.testing.assert_array_equal(got["pix"].values, pix)


@needs_mkldnn
@pytest.mark.parametrize("cin,cout,k,stride,hw", [(64, 64, 3, 1, 9), (32, 48, 3, 1, 13),
                                                  (512, 64, 3, 1, 7), (16, 40, 1, 1, 11),
                                                  (24, 24, 3, 2, 15)])
def test_pointwise_conv_lays_out_weight_per_input_kind(cin, cout, k, stride, hw):
    """One weight layout per kind of input (one image / several, size, threads), each
    agreeing with the plain convolution; the oldest dropped beyond MAX_PACKED."""
    torch.manual_seed(cin + hw)
    conv = nn.Conv2d(cin, cout, k, stride, k // 2).eval()
    pw = _fast.PointwiseConv2d(conv, "relu")
    seen = []
    for n, size in ((1, hw), (5, hw), (3, hw), (2, hw + 2), (4, hw + 4)):
        x = torch.randn(n, cin, size, size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref, got = torch.relu(conv(x.contiguous())), pw(x)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))
        kind = (n == 1, size)
        if kind not in seen:
            seen.append(kind)
        assert len(pw._packed) == min(len(set(seen)), _fast.PointwiseConv2d.MAX_PACKED)
    # a batch of 3 reuses the layout laid out for the batch of 5; first in, first dropped
    assert [(one, shape[-1]) for one, shape, _ in pw._packed] == seen[-3:]


@needs_mkldnn
def test_pointwise_conv_new_layout_per_thread_count():
    conv = nn.Conv2d(8, 8, 3, 1, 1).eval()
    pw = _fast.PointwiseConv2d(conv)
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            torch.set_num_threads(1)
            a = pw(x)
            torch.set_num_threads(2)
            b = pw(x)
    finally:
        torch.set_num_threads(threads)
    assert {key[2] for key in pw._packed} == {1, 2}
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * float(a.abs().max()))
