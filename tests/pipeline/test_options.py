"""Config ``options`` are checked against the receiving function at load time (issue 14)."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest
import yaml

from facebrain import cli
from facebrain.errors import ConfigError
from facebrain.pipeline import _config, _sections, load_config

BASE = {
    "stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32}},
    "models": [{"name": "net", "arch": "small_resnet",
                "train": {"stimuli": "test", "epochs": 1}}],
    "transfer": {"directions": [{"target": "expression"}]},
    "brain": {"source": "simulate"},
}

#: every dataclass with an ``options`` field -> the key path of one instance in BASE
SITES = {
    "ModelConfig": "models[0].options",
    "TrainConfig": "models[0].train.options",
    "TransferDirection": "transfer.directions[0].options",
    "BrainConfig": "brain.options",
}


def _re(text: str) -> str:
    return re.escape(text)


def _load(options_at: str, options: dict):
    return load_config(BASE, overrides={options_at: options})


def test_misspelt_probe_option_fails_at_load_with_close_match_and_allowed():
    with pytest.raises(ConfigError) as err:
        _load("transfer.directions[0].options", {"reduc": "pca:8"})
    msg = str(err.value)
    assert msg.startswith("transfer.directions[0].options.reduc: unknown option 'reduc' of "
                          "facebrain.transfer.probe. Did you mean 'reduce'?")
    # probe's keyword parameters, less those the pipeline passes from its own keys
    assert msg.endswith("Allowed: standardize, reduce, head_kw.")
    cfg = _load("transfer.directions[0].options", {"reduce": "pca:8", "head_kw": {"C": 0.1}})
    assert cfg.transfer.directions[0].options == {"reduce": "pca:8", "head_kw": {"C": 0.1}}


@pytest.mark.parametrize("site,bad,close,ok", [
    ("models[0].options", "widht", "width", {"width": 8, "input_size": 32}),
    ("models[0].train.options", "weight_decai", "weight_decay", {"weight_decay": 0.01}),
    ("transfer.directions[0].options", "standardise", "standardize", {"standardize": False}),
    ("brain.options", "jiter_mm", "jitter_mm", {"jitter_mm": 1.0, "confounds": True}),
])
def test_every_options_site_names_path_option_and_close_match(site, bad, close, ok):
    with pytest.raises(ConfigError, match=rf"^{_re(site)}\.{bad}: unknown option '{bad}' of "
                                          rf".*Did you mean '{close}'\?.*Allowed: "):
        _load(site, {bad: 1})
    _load(site, ok)  # the real option loads


@pytest.mark.parametrize("site,key,where", [
    ("transfer.directions[0].options", "cv", "transfer.directions[0].cv"),
    ("models[0].options", "num_classes", "models[0].num_classes"),
    ("models[0].train.options", "epochs", "models[0].train.epochs"),
    ("models[0].train.options", "out_dir", "the pipeline itself"),
    ("brain.options", "snr", "brain.snr"),
])
def test_options_the_pipeline_sets_itself_are_refused(site, key, where):
    with pytest.raises(ConfigError, match=rf"^{_re(site)}\.{key}: '{key}' is set by "
                                          rf"{_re(where)}; remove it"):
        _load(site, {key: 1})


def test_the_siamese_trainer_is_checked_for_verification():
    data = {**BASE, "models": [{"name": "sia", "arch": "siamese_lfw",
                                "train": {"stimuli": "test", "target": "verification",
                                          "options": {"label_smoothing": 0.1}}}]}
    # fit_classifier takes label_smoothing; fit_siamese does not
    with pytest.raises(ConfigError, match=r"models\[0\]\.train\.options\.label_smoothing: "
                                          r"unknown option .* facebrain\.training\.fit_siamese"):
        load_config(data)


def test_every_options_field_is_checked():
    """A new ``options: dict`` field must be wired into the check (and listed in SITES)."""
    found = set()
    for name, cls in [(n, getattr(m, n)) for m in (_config, _sections) for n in dir(m)]:
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
            if "options" in hints and typing.get_origin(hints["options"]) is dict:
                found.add(name)
    assert found == set(SITES)
    for site in SITES.values():
        with pytest.raises(ConfigError, match=rf"^{_re(site)}\.zzz: unknown option"):
            _load(site, {"zzz": 1})


def test_validate_command_reports_the_bad_option(tmp_path, capsys):
    data = {**BASE, "transfer": {"directions": [{"target": "expression",
                                                 "options": {"reduc": "pca:8"}}]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "transfer.directions[0].options.reduc: unknown option 'reduc'" in err


@pytest.mark.parametrize("head,bad,message", [
    ("logistic", {"Cc": 1.0}, (r"head_kw\.Cc: unknown option 'Cc' of the 'logistic' head "
                              r"\(LogisticRegression\)\. Did you mean 'C'\?")),
    ("fc", {"alpah": 1.0}, r"head_kw\.alpah: unknown option .* Did you mean 'alpha'\?"),
    ("logistic", {"random_state": 1}, (r"head_kw\.random_state: 'random_state' is set by "
                                      r"transfer\.directions\[0\]\.seed")),
    ("fc", {"seed": 1}, r"head_kw\.seed: 'seed' is set by transfer\.directions\[0\]\.seed"),
])
def test_head_kw_is_checked_against_the_heads_estimator(head, bad, message):
    site = "transfer.directions[0]"
    with pytest.raises(ConfigError, match=rf"^{_re(site)}\.options\.{message}"):
        load_config(BASE, overrides={f"{site}.head": head, f"{site}.options": {"head_kw": bad}})
    # the options the test fakes use load (ridge has no seeded parameter)
    for h, kw in (("ridge", {"alpha": 10.0, "random_state": 0}), ("logistic", {"C": 0.1}),
                  ("fc", {"max_iter": 20})):
        load_config(BASE, overrides={f"{site}.head": h, f"{site}.options": {"head_kw": kw}})
