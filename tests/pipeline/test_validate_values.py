"""`facebrain validate` checks values before anything runs (issue 12, items 10 and 13)."""

from __future__ import annotations

import time

import pytest
import torch
import yaml

from facebrain import cli
from facebrain.errors import ConfigError, StageError
from facebrain.pipeline import load_config, run

CONFIG = {
    "name": "vals",
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
    "models": [{"name": "net", "arch": "small_resnet"},
               {"name": "sia", "arch": "siamese_lfw"}],
    "transfer": {"directions": [{"target": "expression"}]},
    "brain": {"source": "simulate"},
}


def _validate(tmp_path, capsys, data=None, *extra) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data or CONFIG))
    code = cli.main(["validate", str(path), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("override,message", [
    ("extract.batch_size=0", "extract.batch_size: expected an int >= 1, got 0"),
    ("rsa.method=spearmann", "rsa.method: unknown value 'spearmann'. Did you mean 'spearman'?"),
    ("rsa.rdm_method=cosine", "rsa.rdm_method: unknown value 'cosine'"),
    ("transfer.directions[0].n_folds=1", "transfer.directions[0].n_folds: expected an int >= 2"),
    ("transfer.directions[0].cv=leave-one-out", "transfer.directions[0].cv: unknown value"),
    ("brain.tr=0", "brain.tr: expected a number > 0, got 0.0"),
    ("brain.tr=-2", "brain.tr: expected a number > 0"),
    ("encoding.cv=loo", "encoding.cv: unknown value 'loo'"),
    ("encoding.n_folds=1", "encoding.n_folds: expected an int >= 2"),
    ("encoding.alphas=[1, -3]", "encoding.alphas[1]: expected a number > 0"),
    ("models[0].layers=[layer9]",
     "models[0].layers[0]: no layer 'layer9' in architecture 'small_resnet'"),
    ("extract.layers=[layer4, embeding]",
     ("extract.layers[1]: no layer 'embeding' in any model's architecture. Did you mean "
     "'embedding'?")),
    ("transfer.directions[0].layers=[layr4]",
     ("transfer.directions[0].layers[0]: no layer 'layr4' is extracted for net, sia. "
     "Did you mean 'layer4'?")),
    ("rsa.layers=[avgpool, pixel]", "rsa.layers[1]: no layer 'pixel'"),
    ("encoding.layers=[fc]", "encoding.layers[0]: no layer 'fc' is extracted"),
    ("brain.hrf_model=glovr", "brain.hrf_model: unknown value 'glovr'"),
])
def test_bad_values_exit_2_naming_the_key(override, message, tmp_path, capsys):
    code, err = _validate(tmp_path, capsys, None, "--set", override)
    assert code == 2, err
    assert message in err


def test_good_layers_and_reference_layers_validate(tmp_path, capsys):
    code, err = _validate(tmp_path, capsys, None,
                          "--set", "transfer.directions[0].layers=[layer4, conv4]",
                          "--set", "rsa.layers=[layer4, pixels, identity_labels]",
                          "--set", "encoding.layers=[embedding, expression_labels]")
    assert code == 0, err


def test_transfer_layer_typo_no_longer_silently_dropped(tmp_path):
    with pytest.raises(ConfigError, match=r"transfer.directions\[0\].layers\[1\]: no layer "
                                          r"'Layer4'"):
        load_config(CONFIG, overrides={"transfer.directions[0].layers": ["layer3", "Layer4"],
                                       "transfer.directions[0].models": ["net"]})


def test_billion_laughs_is_refused_quickly(tmp_path, capsys):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(CONFIG) + "\n".join(lines) + "\n")
    t0 = time.perf_counter()
    assert cli.main(["validate", str(path)]) == 2
    assert time.perf_counter() - t0 < 30  # was: hangs (10**10 nodes)
    assert "aliases expand to more than 100,000 values" in capsys.readouterr().err


def test_recursive_alias_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(CONFIG) + "x: &x [1, *x]\n")
    assert cli.main(["validate", str(path)]) == 2
    assert "refers to itself" in capsys.readouterr().err


@pytest.mark.parametrize("item,key", [
    ("rsa.layers=[a, b", "rsa.layers"),
    ("name={oops", "name"),
    ("seed=: x", "seed"),
])
def test_set_parse_errors_exit_2_naming_the_key(item, key, tmp_path, capsys):
    code, err = _validate(tmp_path, capsys, None, "--set", item)
    assert code == 2
    assert f"--set {key}: cannot read the value" in err


def test_env_values_are_coerced_to_the_field_type(tmp_path, capsys, monkeypatch):
    data = {**CONFIG, "seed": "${SEED}", "threads": "${THREADS:-2}",
            "brain": {"source": "simulate", "tr": "${TR}", "subjects": "${SUBJ}"},
            "rsa": {"standardize": "${STD}", "method": "${METHOD}"},
            "models": [{"name": "net", "arch": "small_resnet",
                        "options": {"width": "${WIDTH}"}}]}
    monkeypatch.setenv("SEED", "7")
    monkeypatch.setenv("TR", "1.5")
    monkeypatch.setenv("SUBJ", "3")
    monkeypatch.setenv("STD", "false")
    monkeypatch.setenv("METHOD", "kendall")
    monkeypatch.setenv("WIDTH", "16")
    cfg = load_config(data)
    assert cfg.seed == 7 and cfg.threads == 2 and cfg.brain.tr == 1.5
    assert cfg.brain.subjects == 3 and cfg.rsa.standardize is False
    assert cfg.rsa.method == "kendall" and type(cfg.rsa.method) is str
    assert cfg.models[0].options == {"width": "16"}  # 'any' fields keep the text
    yaml.safe_dump(cfg.to_dict())  # plain types only
    monkeypatch.setenv("SEED", "seven")
    with pytest.raises(ConfigError, match="seed: expected int, got 'seven'"):
        load_config(data)


def test_sha256_is_checked_for_fine_tuned_models(tmp_path):
    from facebrain.models import create

    weights = tmp_path / "start.pt"
    torch.manual_seed(0)
    torch.save(create("small_resnet", num_classes=4).state_dict(), weights)
    cfg = {"stimuli": {"t": {"source": "synthetic_identities", "n_identities": 4,
                             "images_per_identity": 4, "image_size": 32}},
           "models": [{"name": "ft", "arch": "small_resnet", "weights": str(weights),
                       "sha256": "0" * 64, "new_head": True,
                       "train": {"stimuli": "t", "epochs": 1, "batch_size": 8}}],
           "extract": {"stimuli": "t"}, "brain": {"source": "none"},
           "transfer": {"disentangle": False}, "report": {"enabled": False}}
    with pytest.raises(StageError, match="sha256 mismatch: the file has [0-9a-f]{64}, expected "
                                         "0{64}"):
        run(cfg, out=tmp_path / "run", log=lambda s: None)
    assert not list((tmp_path / "run" / "train").glob("*/manifest.json"))


def test_sha256_without_weights_is_refused():
    with pytest.raises(ConfigError, match=r"models\[0\].sha256: given without weights"):
        load_config(CONFIG, overrides={"models[0].sha256": "ab" * 32})


def test_reduce_spec_is_checked_per_model():
    with pytest.raises(ConfigError, match="extract.reduce: unknown reduce spec 'svd:4'"):
        load_config(CONFIG, overrides={"extract.reduce": "svd:4"})
    with pytest.raises(ConfigError, match=r"extract.reduce: reduce names layer\(s\) \['conv4'\]"
                                          r".*model 'net'"):
        load_config(CONFIG, overrides={"extract.reduce": {"conv4": "srp:8"}})
    cfg = load_config(CONFIG, overrides={"extract.reduce": "pca:4"})
    assert cfg.extract.reduce == "pca:4"


def test_layer_check_builds_on_meta_without_filling_weights():
    # the layer-name check builds each network on the meta device; weight initialisation
    # there fills nothing, and torch's meta normal_ imported torch._dynamo (1.8 s) for
    # it: checking the demo config must not import it (a fresh process: the suite has it)
    import subprocess
    import sys

    code = ("import sys\n"
            "from facebrain.pipeline import load_config\n"
            "cfg = load_config(None)\n"
            "assert cfg.models, cfg\n"
            "print('torch._dynamo' in sys.modules, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]  # torch was used (the meta build), dynamo was not


def test_meta_fill_skip_leaves_real_tensors_alone():
    from facebrain.pipeline._checks import _skip_meta_fills

    def fills():
        g = torch.Generator().manual_seed(3)
        t = torch.empty(5, 4)
        torch.nn.init.kaiming_normal_(t, generator=g)
        u = torch.empty(7).uniform_(-1, 1, generator=g)
        return t, u

    expected = fills()
    with _skip_meta_fills()():
        got = fills()
        with torch.device("meta"):
            m = torch.nn.Conv2d(3, 8, 3)
            torch.nn.init.normal_(m.weight)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
    assert m.weight.is_meta and m.weight.shape == (8, 3, 3, 3)
