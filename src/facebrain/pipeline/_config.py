"""Typed configuration of a ``facebrain run``: one dataclass per YAML section.

Every section is a plain dataclass; :func:`load_config` reads YAML, expands
``${ENV_VAR}`` references, applies overrides and converts the result with
:func:`facebrain.pipeline._typed.convert`, which reports the full key path and
the expected type of any bad value. Cross-references (a model naming a
stimulus set, a direction naming a model) and input paths are checked in
:meth:`Config._check`, again with key paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._boundary import public
from .._deprecation import renamed_config_keys, renamed_override_keys
from ..errors import MissingKeyError
from ._sections import (
    BrainConfig,
    EncodingConfig,
    ExtractConfig,
    ModelConfig,
    ReportConfig,
    RSAConfig,
    StimulusConfig,
    TransferConfig,
)
from ._typed import ConfigError, apply_overrides, convert, expand_env, safe_load, to_plain

__all__ = ["Config", "default_config_path", "load_config"]

_STAGE_NAMES = ("stimuli", "train", "extract", "transfer", "brain", "rsa", "encoding", "report")


@dataclass
class Config:
    """A whole run. See ``configs/demo.yaml`` for an annotated example.

    ``threads`` caps the threads of torch and of the BLAS / OpenMP pools during
    every stage (None: the libraries' defaults). It does not enter stage keys.
    """

    stimuli: dict[str, StimulusConfig]
    models: list[ModelConfig]
    name: str = "facebrain"
    seed: int = 0
    scheduler: str | None = None
    threads: int | None = None
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    brain: BrainConfig = field(default_factory=BrainConfig)
    rsa: RSAConfig = field(default_factory=RSAConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    def _check(self, key: str) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: expected a positive int or null, got {self.threads}")
        if not self.models:
            raise ConfigError("models: at least one model is required")
        names = [m.name for m in self.models]
        for i, m in enumerate(self.models):
            if names.count(m.name) > 1:
                raise ConfigError(f"models[{i}].name: {m.name!r} is used by more than one model")
            if m.train is not None and m.train.stimuli not in self.stimuli:
                raise ConfigError(
                    f"models[{i}].train.stimuli: no stimulus set named {m.train.stimuli!r}; "
                    f"defined under stimuli: {sorted(self.stimuli)}"
                )
        model_names = set(names)

        def check_models(key: str, value: list[str] | None) -> None:
            for j, n in enumerate(value or []):
                if n not in model_names:
                    raise ConfigError(
                        f"{key}[{j}]: no model named {n!r}; models are {sorted(model_names)}"
                    )

        for attr in ("extract", "brain"):
            set_name = getattr(self, attr).stimuli
            if (attr == "extract" or self.brain.source != "none") and set_name not in self.stimuli:
                raise ConfigError(
                    f"{attr}.stimuli: no stimulus set named {set_name!r}; defined under "
                    f"stimuli: {sorted(self.stimuli)}"
                )
        for i, d in enumerate(self.transfer.directions):
            check_models(f"transfer.directions[{i}].models", d.models)
        for roi, d in self.brain.drivers.items():
            if d.kind == "layer":
                check_models(f"brain.drivers.{roi}.model", [d.model])
        check_models("rsa.models", self.rsa.models)
        check_models("encoding.models", self.encoding.models)
        from ..models import list_models

        known = list_models()
        if known:
            import difflib

            for i, m in enumerate(self.models):
                if m.arch not in known and _user_arch(m.arch, f"models[{i}].arch"):
                    continue
                if m.arch not in known:
                    close = difflib.get_close_matches(m.arch, known, n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ConfigError(
                        f"models[{i}].arch: unknown architecture {m.arch!r}.{hint} "
                        f"Registered: {', '.join(known)}"
                    )
        from ._checks import check_values

        check_values(self)

    # ------------------------------------------------------------------ helpers
    def model(self, name: str) -> ModelConfig:
        """The ``models`` entry named ``name`` (:class:`MissingKeyError` naming the others)."""
        for m in self.models:
            if m.name == name:
                return m
        raise MissingKeyError(f"no model named {name!r}; models are "
                              f"{[m.name for m in self.models]}")

    def to_dict(self) -> dict:
        """Plain, YAML/JSON-friendly data (paths as strings)."""
        return to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _user_arch(arch: str, key: str) -> bool:
    """True when ``arch`` names a user network ("module:attr" or an entry point) that imports.

    A failing import stops here, at config load, naming the key.
    """
    from ..models._registry import ModelImportError, _entry_point, find_builder

    if ":" not in arch and _entry_point(arch) is None:
        return False
    try:
        find_builder(arch)
    except ModelImportError as err:
        raise ConfigError(f"{key}: {err}") from None
    return True


def _apply_fallbacks(data: dict) -> dict:
    """Apply ``models[i].fallback`` where a model's weights are not given (see ModelFallback)."""
    models = data.get("models")
    if not isinstance(models, list):
        return data
    for i, m in enumerate(list(models)):
        if not isinstance(m, dict) or not isinstance(m.get("fallback"), dict):
            continue
        if m.get("weights") not in (None, "") or m.get("train"):
            continue
        fb = m["fallback"]
        sets = fb.get("set") or {}
        if not isinstance(sets, dict):
            raise ConfigError(f"models[{i}].fallback.set: expected a mapping of key: value, "
                              f"got {sets!r}")
        reason = str(fb.get("reason", ""))
        if reason in (data.get("notes") or []):  # a Config re-loaded from to_dict()
            continue
        data = apply_overrides(data, dict(sets))
        data["notes"] = [*list(data.get("notes") or []), reason]
    return data


RENAMED_KEYS = {"encoding": {"bootstrap": "n_bootstrap"},
                "rsa": {"bootstrap": "n_bootstrap", "noise_ceiling": "ceiling"}}


def default_config_path() -> Path:
    """Path of the built-in demo config shipped inside the package."""
    return Path(str(resources.files("facebrain") / "configs" / "demo.yaml"))


@public
def load_config(
    source: str | os.PathLike | Mapping | Config | None = None,
    *,
    overrides: Mapping[str, Any] | list[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate a run configuration.

    Parameters
    ----------
    source : path, mapping, Config or None
        A YAML file, already-parsed data, or None for the built-in demo.
    overrides : mapping or list of str, optional
        ``{"models[0].train.epochs": 1}`` or ``["models[0].train.epochs=1"]``,
        applied before validation (the CLI's ``--set``).
    environ : mapping, optional
        Environment used for ``${VAR}`` expansion (default ``os.environ``).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        With the key path and expected type, e.g.
        ``transfer.directions[0].n_permutations: expected int, got 'ten'``.

    Examples
    --------
    >>> cfg = load_config(overrides={"seed": 3})
    >>> cfg.seed
    3
    """
    if isinstance(source, Config) and not overrides:
        return source
    origin = None
    if isinstance(source, Config):
        data = source.to_dict()
        origin = source.source
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source) if source is not None else default_config_path()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = safe_load(path.read_text(), str(path))
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        origin = str(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data = renamed_config_keys(data, RENAMED_KEYS)
    data.pop("source", None)
    if overrides:
        data = apply_overrides(data, renamed_override_keys(overrides, RENAMED_KEYS))
    data = expand_env(data, environ=environ)
    data = _apply_fallbacks(data)
    try:
        cfg = convert(data, Config, "")
    except ConfigError as err:
        if origin:
            raise ConfigError(f"{origin}: {err}") from None
        raise
    cfg.source = origin
    return cfg
