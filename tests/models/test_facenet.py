"""facenet_vggface2 (InceptionResnetV1) against facenet-pytorch's state-dict layout.

``data/facenet_pytorch_vggface2_keys.json`` lists every key and shape of
``facenet_pytorch.InceptionResnetV1(classify=True, num_classes=8631)`` (v2.6.0),
in order; a file with exactly those keys must load strictly. (Outputs were also
checked once against facenet-pytorch 2.6.0 itself: max |diff| 0 for embedding and
logits; the package is not a test dependency.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from facebrain.models import create, load_weights

torch.set_num_threads(2)
MANIFEST = json.loads(
    (Path(__file__).parent / "data" / "facenet_pytorch_vggface2_keys.json").read_text()
)["keys"]


@pytest.fixture(scope="module")
def facenet_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape in MANIFEST.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            sd[key] = torch.randn(shape, generator=g) * 0.1
        elif "bn" in key and key.endswith("weight"):
            sd[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            sd[key] = torch.randn(shape, generator=g) / fan_in ** 0.5
    path = tmp_path_factory.mktemp("fn") / "20180402-114759-vggface2.pt"
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def net(facenet_file):
    return create("facenet_vggface2", weights=facenet_file[0]).eval()


def test_loads_facenet_pytorch_layout_strictly(net, facenet_file):
    _, sd = facenet_file
    own = net.state_dict()
    assert [k.removeprefix("stages.") for k in own] == list(MANIFEST)
    for k, v in sd.items():
        assert torch.equal(own[f"stages.{k}"], v), k


def test_embedding_logits_and_bn_tail(net, facenet_file):
    _, sd = facenet_file
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net.forward_layers(x, ["avgpool_1a", "last_bn", "embedding", "logits"])
        # facenet-pytorch's tail, by hand from the raw state dict
        lin = out["avgpool_1a"] @ sd["last_linear.weight"].T
        bn = F.batch_norm(lin, sd["last_bn.running_mean"], sd["last_bn.running_var"],
                          sd["last_bn.weight"], sd["last_bn.bias"], False, 0.0, 1e-3)
        logits = bn @ sd["logits.weight"].T + sd["logits.bias"]
        full = net(x)
    torch.testing.assert_close(out["last_bn"], bn, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["embedding"], F.normalize(bn, dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(full, out["logits"], rtol=0, atol=0)
    norms = out["embedding"].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(2), rtol=0, atol=1e-5)
    assert out["avgpool_1a"].shape == (2, 1792) and out["logits"].shape == (2, 8631)


def test_no_logits_stage_and_new_head(facenet_file):
    path, sd = facenet_file
    net = create("facenet_vggface2", num_classes=0)
    assert net.layer_names[-1] == "embedding"
    with pytest.raises(Exception, match=r"2 unexpected keys \(stages.logits.weight"):
        load_weights(net, path)
    with pytest.warns(UserWarning, match="new_head"):
        load_weights(net.eval(), path, new_head=True)
    assert torch.equal(net.stages["last_bn"].running_var, sd["last_bn.running_var"])


def test_preprocess():
    net = create("facenet_vggface2", num_classes=0)
    img = np.full((200, 180, 3), 255, np.uint8)
    t = net.preprocess(img)
    assert t.shape == (3, 160, 160)
    torch.testing.assert_close(t[:, 80, 80], torch.full((3,), 127.5 / 128), rtol=0, atol=1e-6)
