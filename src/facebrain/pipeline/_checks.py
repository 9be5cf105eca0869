"""Value checks of a whole config, run by ``Config._check`` before anything runs.

Types are checked by :mod:`._typed`; this module checks values: names that
become file names, positive sizes, method and CV-scheme names, and layer names
against the layers each declared architecture really has (built on torch's
``meta`` device: no memory, no weights, milliseconds).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os

from ._typed import ConfigError

__all__ = ["arch_layers", "check_name", "check_values", "extracted_layers"]

#: layer variables of the built-in reference features (``reference`` pseudo-model)
REFERENCE_LAYERS = ("pixels", "identity_labels", "expression_labels")
_HEADS = ("fc", "logits")
_HRF = ("glover", "spm", "glover + derivative", "spm + derivative",
        "glover + derivative + dispersion", "spm + derivative + dispersion")


def check_name(value: str, key: str) -> None:
    """A name that becomes a file or folder name: no separators, no ``..``, not absolute."""
    bad = None
    if not isinstance(value, str) or not value.strip():
        bad = "it is empty"
    elif value != value.strip():
        bad = "it starts or ends with whitespace"
    elif value in (".", ".."):
        bad = f"{value!r} is a path component"
    elif os.path.isabs(value) or "/" in value or "\\" in value or (
            os.sep in value) or (os.altsep and os.altsep in value):
        bad = "it contains a path separator"
    elif "\0" in value or any(ord(c) < 32 for c in value):
        bad = "it contains control characters"
    if bad:
        raise ConfigError(
            f"{key}: {value!r} is not a valid name ({bad}); names become file names inside "
            "the run folder, so use letters, digits, '_', '-' or '.', e.g. 'resnet_identity'."
        )


def _one_of(value, allowed, key: str) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}: unknown value {value!r}.{hint} Choose one of "
                          f"{', '.join(map(str, allowed))}.")


def _positive(value, key: str, *, minimum=1, kind="int") -> None:
    if value is None:
        return
    ok = value >= minimum if kind == "int" else (math.isfinite(value) and value > minimum)
    if not ok:
        need = f">= {minimum}" if kind == "int" else f"> {minimum}"
        raise ConfigError(f"{key}: expected {'an int' if kind == 'int' else 'a number'} "
                          f"{need}, got {value!r}")


#: in-place random fills; torch runs some of them on the meta device through its Python
#: references, whose decorator imports ``torch._dynamo`` (1.8 s) to fill nothing
_RANDOM_FILLS = frozenset({"normal_", "uniform_", "exponential_", "log_normal_", "cauchy_",
                           "geometric_", "bernoulli_", "random_"})


@functools.lru_cache(maxsize=1)
def _skip_meta_fills():
    """A torch function mode under which a random fill of a meta tensor returns it as is.

    A network built on the meta device has no values to fill, so skipping its weight
    initialisation changes nothing but time: ``kaiming_normal_`` on a meta tensor made every
    config check import ``torch._dynamo`` (``facebrain show-config`` 6.9 s). Tensors on any
    other device are filled as usual.
    """
    from torch.overrides import TorchFunctionMode

    class SkipMetaFills(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if (getattr(func, "__name__", None) in _RANDOM_FILLS and args
                    and getattr(args[0], "is_meta", False)):
                return args[0]
            return func(*args, **(kwargs or {}))

    return SkipMetaFills


@functools.lru_cache(maxsize=64)
def _arch_layers_cached(arch: str, options: str) -> tuple[str, ...] | None:
    import torch

    from ..models import create

    try:
        with torch.device("meta"), _skip_meta_fills()():
            model = create(arch, **json.loads(options))
    except Exception:  # noqa: BLE001 - an option the builder rejects is reported at build time
        return None
    return tuple(model.layer_names)


def arch_layers(arch: str, options: dict | None = None) -> tuple[str, ...] | None:
    """Layer names of a registered architecture (None when they cannot be told)."""
    try:
        key = json.dumps(options or {}, sort_keys=True)
    except TypeError:
        return None
    return _arch_layers_cached(arch, key)


def extracted_layers(cfg, m) -> list[str] | None:
    """The layers the extract stage records for model ``m`` (as ``_stages._layers_for``)."""
    names = arch_layers(m.arch, m.options)
    if m.layers is not None:
        return list(m.layers)
    if names is None:
        return None
    if cfg.extract.layers is not None:
        return [lyr for lyr in cfg.extract.layers if lyr in names]
    return [lyr for lyr in names if lyr not in _HEADS]


def _unknown_layer(key: str, layer: str, have: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(layer, have, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{key}: no layer {layer!r} {where}.{hint} Available: "
                       f"{', '.join(have) or 'none'}.")


def check_values(cfg) -> None:
    """Raise :class:`ConfigError` naming the key of the first bad value in ``cfg``."""
    from ._options import check_config_options

    check_name(cfg.name, "name")
    for name in cfg.stimuli:
        check_name(name, f"stimuli.{name}")
    check_config_options(cfg)
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        check_name(m.name, f"{key}.name")
        if m.sha256 is not None and m.weights is None:
            raise ConfigError(f"{key}.sha256: given without weights; set {key}.weights to the "
                              "file it checks, or remove sha256.")
        if m.num_classes is not None:
            _positive(m.num_classes, f"{key}.num_classes")
        t = m.train
        if t is not None:
            _positive(t.batch_size, f"{key}.train.batch_size")
            _positive(t.n_pairs, f"{key}.train.n_pairs")
            _positive(t.lr, f"{key}.train.lr", minimum=0, kind="float")
            if t.optimizer is not None:
                from ..training._loop import OPTIMIZERS

                _one_of(t.optimizer, OPTIMIZERS, f"{key}.train.optimizer")
            if t.schedule is not None:
                from ..training._loop import SCHEDULES

                _one_of(t.schedule.lower(), [s for s in SCHEDULES if s] + ["none"],
                        f"{key}.train.schedule")
    _positive(cfg.extract.batch_size, "extract.batch_size")
    _check_transfer(cfg)
    _check_brain(cfg)
    _check_rsa_encoding(cfg)
    _check_layers(cfg)


def _check_transfer(cfg) -> None:
    from ..transfer._cv import SCHEMES

    labels: dict[str, int] = {}
    for i, d in enumerate(cfg.transfer.directions):
        key = f"transfer.directions[{i}]"
        check_name(d.label, f"{key}.name" if d.name else f"{key}.target")
        if d.label in labels:
            raise ConfigError(f"{key}.name: {d.label!r} is also the name of transfer."
                              f"directions[{labels[d.label]}]; give each direction its own name.")
        labels[d.label] = i
        _one_of(d.cv, SCHEMES, f"{key}.cv")
        _positive(d.n_folds, f"{key}.n_folds", minimum=2)


def _check_brain(cfg) -> None:
    b = cfg.brain
    _positive(b.tr, "brain.tr", minimum=0, kind="float")
    _positive(b.runs, "brain.runs")
    _positive(b.repeats, "brain.repeats")
    _positive(b.snr, "brain.snr", minimum=0, kind="float")
    if b.source == "none":
        return
    if not (math.isfinite(b.high_pass) and b.high_pass >= 0):
        raise ConfigError(f"brain.high_pass: expected a frequency >= 0 (Hz), got {b.high_pass!r}")
    _one_of(b.hrf_model, _HRF, "brain.hrf_model")


def _check_rsa_encoding(cfg) -> None:
    from ..rsa._kernels import COMPARISONS
    from ..rsa._rdm import RDM_METHODS

    r = cfg.rsa
    _one_of(r.method, sorted(COMPARISONS), "rsa.method")
    _one_of(r.rdm_method, RDM_METHODS, "rsa.rdm_method")
    _positive(r.n_bootstrap, "rsa.n_bootstrap", minimum=0)
    from ..encoding._evaluate import CV_SCHEMES

    e = cfg.encoding
    _one_of(e.cv, CV_SCHEMES, "encoding.cv")
    _positive(e.n_folds, "encoding.n_folds", minimum=2)
    _positive(e.inner_cv, "encoding.inner_cv", minimum=2)
    for j, a in enumerate(e.alphas or []):
        _positive(a, f"encoding.alphas[{j}]", minimum=0, kind="float")


def _check_layers(cfg) -> None:
    per_model: dict[str, list[str] | None] = {}
    for i, m in enumerate(cfg.models):
        names = arch_layers(m.arch, m.options)
        if names is not None:
            for j, lyr in enumerate(m.layers or []):
                if lyr not in names:
                    raise _unknown_layer(f"models[{i}].layers[{j}]", lyr, list(names),
                                         f"in architecture {m.arch!r}")
        per_model[m.name] = extracted_layers(cfg, m)
        if per_model[m.name] is not None and cfg.extract.reduce is not None:
            from ..activations._reduce import parse_reduce

            try:
                parse_reduce(cfg.extract.reduce, per_model[m.name])
            except (TypeError, ValueError) as err:
                raise ConfigError(f"extract.reduce: {err} (model {m.name!r}, models[{i}])"
                                  ) from None
    if cfg.extract.layers is not None:
        known = [set(arch_layers(m.arch, m.options) or ()) for m in cfg.models
                 if m.layers is None]
        if known and all(k for k in known):
            every = sorted(set().union(*known))
            for j, lyr in enumerate(cfg.extract.layers):
                if not any(lyr in k for k in known):
                    raise _unknown_layer(f"extract.layers[{j}]", lyr, every,
                                         "in any model's architecture")

    def check(key: str, layers: list[str] | None, models: list[str], extra=(),
              single: bool = False) -> None:
        have: list[str] = []
        for name in models:
            got = per_model.get(name)
            if got is None:
                return  # cannot tell for this model
            have += [lyr for lyr in got if lyr not in have]
        have += [lyr for lyr in extra if lyr not in have]
        for j, lyr in enumerate(layers or []):
            if lyr not in have:
                raise _unknown_layer(key if single else f"{key}[{j}]", lyr, have,
                                     f"is extracted for {', '.join(models)}")

    every_model = [m.name for m in cfg.models]
    for i, d in enumerate(cfg.transfer.directions):
        check(f"transfer.directions[{i}].layers", d.layers, d.models or every_model)
    if cfg.brain.source != "none":
        for section in ("rsa", "encoding"):
            s = getattr(cfg, section)
            extra = REFERENCE_LAYERS if s.models is None else ()
            check(f"{section}.layers", s.layers, s.models or every_model, extra)
        for roi, d in cfg.brain.drivers.items():
            if d.kind == "layer" and d.model in per_model:
                check(f"brain.drivers.{roi}.layer", [d.layer], [d.model], single=True)
