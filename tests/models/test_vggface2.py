"""resnet50_vggface2: the three public weight formats give identical outputs.

The formats are written from one random model by ``vggface2_fakes.py`` (its own
renaming code, not the package's converters), and the MatConvNet layout is also
checked against an independent functional forward pass written from the
published ``resnet50_ft_dag`` definition (stride on the 1x1 reduce, 3x3/2
ceil-mode max-pool, 1x1-convolution classifier).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from vggface2_fakes import dag_forward, randomise_bn, write_release_files

from facebrain.models import create, load_weights

N_CLASSES = 11
torch.set_num_threads(2)


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    model = randomise_bn(create("resnet50_vggface2", num_classes=N_CLASSES), 1).eval()
    x = torch.randn(1, 3, 67, 67, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(x)
    return model, x, out


@pytest.fixture(scope="module")
def files(source, tmp_path_factory):
    return write_release_files(source[0], tmp_path_factory.mktemp("vggface2"))


def test_formats_written_as_published(files):
    paths, dag = files
    raw = paths["pkl"].read_bytes()
    assert raw[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct" in raw
    assert b"X\x0c\x00\x00\x00conv1.weight" not in raw  # keys are py2 str, not unicode
    with pytest.raises(UnicodeDecodeError):  # like the release: needs encoding="latin1"
        pickle.loads(raw)
    assert dag["classifier.weight"].shape == (N_CLASSES, 2048, 1, 1)
    for name in ("conv1_7x7_s2.weight", "conv1_7x7_s2_bn.running_var", "conv2_1_1x1_proj.weight",
                 "conv2_1_1x1_reduce_bn.bias", "conv3_4_3x3.weight", "conv4_6_1x1_increase.weight",
                 "conv5_3_1x1_increase_bn.running_mean"):
        assert name in dag
    assert len([k for k in dag if k.endswith("_proj.weight")]) == 4


@pytest.mark.parametrize("fmt", ["pkl", "dag", "torch"])
def test_every_format_loads_to_identical_outputs(source, files, fmt):
    _, x, expected = source
    paths, _ = files
    torch.manual_seed(123)
    net = create("resnet50_vggface2", num_classes=N_CLASSES, weights=paths[fmt]).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    assert net.weights_format == {"pkl": "pickle", "dag": "torch-zip", "torch": "torch-zip"}[fmt]


def test_matches_independent_dag_forward(source, files):
    _, x, expected = source
    _, dag = files
    with torch.no_grad():
        ref = dag_forward(dag, x)
    torch.testing.assert_close(expected, ref, rtol=1e-4, atol=1e-4)


def test_caffe_layout_differs_from_torchvision(source):
    """Same weights in torchvision's ResNet-50 (stride on the 3x3, padded max-pool) differ."""
    model, x, expected = source
    tv = create("resnet50", num_classes=N_CLASSES).eval()
    tv.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (tv(x) - expected).abs().max() > 1e-3
    first = model.stages["layer3"][0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert model.stages["maxpool"].ceil_mode and model.stages["maxpool"].padding == 0


def test_default_head_and_wrong_class_count(files):
    import inspect

    from facebrain.models import resnet50_vggface2

    assert inspect.signature(resnet50_vggface2).parameters["num_classes"].default == 8631
    paths, _ = files
    net = create("resnet50_vggface2", num_classes=N_CLASSES + 1)
    with pytest.raises(Exception, match="new_head=True") as err:
        load_weights(net, paths["dag"])
    assert f"stages.fc.weight: file ({N_CLASSES}, 2048) vs model ({N_CLASSES + 1}, 2048)" in str(err.value)


def test_preprocess_bgr_mean():
    net = create("resnet50_vggface2", num_classes=2)
    img = np.empty((300, 260, 3), np.uint8)
    img[...] = (10, 20, 30)  # R, G, B
    t = net.preprocess(img)
    assert t.shape == (3, 224, 224)
    expected = torch.tensor([30 - 91.4953, 20 - 103.8827, 10 - 131.0912])
    torch.testing.assert_close(t[:, 100, 100], expected, rtol=0, atol=1e-4)
