"""Typed config: key paths and expected types in errors, ${ENV} expansion, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facebrain.errors import ConfigError
from facebrain.pipeline import Config, default_config_path, load_config
from facebrain.pipeline._typed import apply_overrides, expand_env

REPO = Path(__file__).resolve().parents[2]


def minimal(**extra) -> dict:
    data = {
        "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
        "models": [{"name": "net", "arch": "small_resnet"}],
        "brain": {"source": "none"},
    }
    data.update(extra)
    return data


def test_demo_config_is_valid_and_shipped_copy_is_identical():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert Path(cfg.source) == default_config_path()
    assert (REPO / "configs" / "demo.yaml").read_bytes() == default_config_path().read_bytes()
    assert [m.name for m in cfg.models] == ["identity_net", "expression_net", "untrained"]
    assert cfg.brain.source == "simulate" and cfg.brain.subjects == 3
    targets = {d.target for d in cfg.transfer.directions}
    assert targets == {"identity", "expression"}
    # untrained twin and pixel baselines beside the trained networks in each direction
    for d in cfg.transfer.directions:
        assert d.baselines == ["pixels", "untrained"]
        assert set(d.models) == {"identity_net", "expression_net"}


def test_defaults_are_filled_and_roundtrip():
    cfg = load_config(minimal())
    assert cfg.seed == 0 and cfg.extract.reduce == "avgpool" and cfg.rsa.method == "spearman"
    again = load_config(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"transfer": {"directions": [{"target": "expression", "n_permutations": "ten"}]}},
         "transfer.directions[0].n_permutations: expected int, got 'ten'"),
        ({"seed": 1.5}, "seed: expected int, got 1.5"),
        ({"models": [{"name": "net", "arch": "small_resnet", "trian": {}}]},
         "models[0].trian: unknown key. Did you mean 'train'?"),
        ({"models": [{"name": "net"}]}, "models[0].arch: required key is missing (expected str)"),
        ({"rsa": {"over": "voxels"}},
         "rsa.over: expected one of 'stimuli', 'subjects', 'both', got 'voxels'"),
        ({"extract": {"layers": "layer4"}}, "extract.layers: expected list of str or null"),
        ({"report": {"glass_brain": "yes"}}, "report.glass_brain: expected bool"),
        ({"extract": {"reduce": {"layer4": 3}}}, "extract.reduce.layer4: expected str, got 3"),
        ({"stimuli": {"test": {"source": "kdef"}}}, "stimuli.test.root: required for source 'kdef'"),
        ({"stimuli": {"test": {"source": "synthetic"}}},
         "stimuli.test.source: expected one of 'synthetic_kdef'"),
        ({"models": [{"name": "net", "arch": "small_resnt"}]},
         "models[0].arch: unknown architecture 'small_resnt'. Did you mean 'small_resnet'?"),
        ({"models": [{"name": "net", "arch": "small_resnet",
                      "train": {"stimuli": "nope"}}]},
         "models[0].train.stimuli: no stimulus set named 'nope'"),
        ({"transfer": {"directions": [{"target": "identity", "models": ["other"]}]}},
         "transfer.directions[0].models[0]: no model named 'other'"),
        ({"models": []}, "models: at least one model is required"),
    ],
)
def test_bad_values_name_key_path_and_expected_type(patch, message):
    with pytest.raises(ConfigError) as err:
        load_config(minimal(**patch))
    assert message in str(err.value)


def test_missing_weights_file_names_the_key(tmp_path):
    data = minimal(models=[{"name": "a", "arch": "small_resnet"},
                           {"name": "b", "arch": "small_resnet",
                            "weights": str(tmp_path / "missing.pt")}])
    with pytest.raises(ConfigError, match=r"models\[1\]\.weights: file not found: .*missing\.pt"):
        load_config(data)


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(minimal(seed="zero")))
    with pytest.raises(ConfigError, match=r"bad\.yaml: seed: expected int, got 'zero'"):
        load_config(path)
    path.write_text("stimuli: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_env_expansion(tmp_path):
    kdef = tmp_path / "KDEF"
    kdef.mkdir()
    data = minimal(stimuli={"test": {"source": "kdef", "root": "${KDEF_ROOT}"}})
    cfg = load_config(data, environ={"KDEF_ROOT": str(kdef)})
    assert cfg.stimuli["test"].root == kdef
    with pytest.raises(ConfigError) as err:
        load_config(data, environ={})
    assert "stimuli.test.root" in str(err.value) and "${KDEF_ROOT}" in str(err.value)
    # defaults and embedding inside a longer string
    assert expand_env({"a": "${X:-7}/b", "b": ["${Y}x"]}, environ={"Y": "y"}) == \
        {"a": "7/b", "b": ["yx"]}
    # env values that point nowhere are reported like literal paths
    with pytest.raises(ConfigError, match="stimuli.test.root: directory not found"):
        load_config(data, environ={"KDEF_ROOT": str(tmp_path / "absent")})


def test_overrides_strings_and_mapping():
    cfg = load_config(overrides=["models[0].train.epochs=1", "stimuli.train.n_identities=4",
                                 "extract.layers=[layer1, layer2, layer4]", "rsa.n_bootstrap=0"])
    assert cfg.models[0].train.epochs == 1
    assert cfg.stimuli["train"].n_identities == 4
    assert cfg.extract.layers == ["layer1", "layer2", "layer4"]
    cfg = load_config(minimal(), overrides={"encoding.alphas": [1, 10], "brain.source": "none"})
    assert cfg.encoding.alphas == [1.0, 10.0]
    with pytest.raises(ConfigError, match=r"models\[5\] does not exist"):
        apply_overrides({"models": []}, {"models[5].name": "x"})
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(minimal(), overrides=["seed"])
    with pytest.raises(ConfigError, match="not a dotted key path"):
        load_config(minimal(), overrides=["a..b=1"])
    # overrides are type-checked like the file
    with pytest.raises(ConfigError, match="models\\[0\\].train.epochs: expected int, got 'x'"):
        load_config(overrides=["models[0].train.epochs=x"])


def test_float_from_yaml_string_and_int():
    cfg = load_config(minimal(), overrides={"brain.tr": 2, "models[0].train": {
        "stimuli": "test", "lr": "1e-3"}})
    assert cfg.brain.tr == 2.0 and isinstance(cfg.brain.tr, float)
    assert cfg.models[0].train.lr == pytest.approx(1e-3)
