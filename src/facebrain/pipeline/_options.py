"""``options`` mappings of a config, checked against the function that receives them.

Some config sections hand a mapping of keyword options straight to a function
of another room:

================================  ==============================================
``models[i].options``             the architecture's builder (``models.create``)
``models[i].train.options``       ``training.fit_classifier`` / ``fit_siamese``
``transfer.directions[i].options``  ``transfer.probe``; its ``head_kw`` the head's
                                  estimator (``transfer.HEADS[head]``)
``brain.options``                 ``brain.simulate``
================================  ==============================================

(``stimuli.<name>`` loader options are typed keys, checked against the source's
loader by :mod:`._stimuli_options`.) Each key is checked against the function's
signature when the config loads, so a typo (``{reduc: "pca:8"}``) stops there,
naming the key path, close matches and the allowed options, instead of failing
after training. An option the pipeline already passes from its own config key
(``transfer.directions[i].cv``...) is refused too, naming that key.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping

from ._typed import ConfigError

__all__ = ["allowed_options", "check_config_options", "check_options"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_BY_PIPELINE = "set by the pipeline itself"


def allowed_options(fn: Callable, reserved: Mapping[str, str] | None = None
                    ) -> list[str] | None:
    """Keyword parameters of ``fn`` minus ``reserved`` (None when ``fn`` takes ``**kwargs``)."""
    reserved = reserved or {}
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in _NAMED and p.name not in reserved]


def check_options(options: Mapping, fn: Callable, key: str, what: str, *,
                  reserved: Mapping[str, str] | None = None,
                  extra: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` for a key of ``options`` that ``fn`` does not take.

    Parameters
    ----------
    options : mapping
        The config's options (``key`` is its key path).
    fn : callable
        The function the options are passed to as keyword arguments.
    key : str
        Key path of ``options`` in the config, e.g. ``"transfer.directions[0].options"``.
    what : str
        How the error names ``fn``, e.g. ``"facebrain.transfer.probe"``.
    reserved : mapping of str to str
        Parameters the pipeline passes itself -> where to set them instead.
    extra : tuple of str
        Options taken besides ``fn``'s parameters (passed on by a wrapper).

    Examples
    --------
    >>> def probe(acts, *, reduce=None, standardize=True):
    ...     pass
    >>> try:
    ...     check_options({"reduc": "pca:8"}, probe, "options", "probe",
    ...                   reserved={"acts": "the data"})
    ... except ConfigError as err:
    ...     print(err)
    options.reduc: unknown option 'reduc' of probe. Did you mean 'reduce'? Allowed: reduce, standardize.
    """
    reserved = reserved or {}
    allowed = allowed_options(fn, reserved)
    if allowed is not None:
        allowed = allowed + [e for e in extra if e not in allowed]
    _check_names(options, allowed, key, what, reserved)


def _check_names(options: Mapping, allowed: list[str] | None, key: str, what: str,
                 reserved: Mapping[str, str]) -> None:
    for opt in options:
        if opt in reserved:
            raise ConfigError(f"{key}.{opt}: {opt!r} is {reserved[opt]}; remove it from "
                              f"{key}.")
        if allowed is not None and opt not in allowed:
            close = difflib.get_close_matches(str(opt), allowed, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"{key}.{opt}: unknown option {opt!r} of {what}.{hint} Allowed: "
                              f"{', '.join(allowed) or 'none'}.")


def _set_by(key: str, names) -> dict[str, str]:
    return {n: f"set by {key}.{n}" for n in names}


def _check_head_kw(head_kw: Mapping, head: str, key: str, seed_key: str) -> None:
    """``head_kw`` against the parameters of the named head's estimator (scikit-learn
    ``get_params``); the one the head sets from the seed is refused."""
    from ..transfer import HEADS

    seed = object()  # estimators store their arguments as given: find the seeded parameter
    params = HEADS[head](seed).get_params(deep=False)
    reserved = {k: f"set by {seed_key}" for k, v in params.items() if v is seed}
    allowed = [k for k in params if k not in reserved]
    _check_names(head_kw, allowed, key, f"the {head!r} head ({type(HEADS[head](0)).__name__})",
                 reserved)


def check_config_options(cfg) -> None:
    """Check every ``options`` mapping of a whole config (see the module docstring)."""
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        if m.options:
            from ..models import find_builder

            reserved = {**_set_by(key, ("weights", "num_classes", "sha256", "new_head")),
                        "name": _BY_PIPELINE}
            # ``strict`` goes to the weight loader (models.create)
            check_options(m.options, find_builder(m.arch), f"{key}.options",
                          f"architecture {m.arch!r}", reserved=reserved, extra=("strict",))
        t = m.train
        if t is not None and t.options:
            from ..training import fit_classifier, fit_siamese

            fn = fit_siamese if t.target == "verification" else fit_classifier
            reserved = {**_set_by(f"{key}.train", (
                "target", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment",
                "val_fraction", "seed")), **dict.fromkeys(
                ("model", "stimuli", "pairs", "out_dir", "resume"), _BY_PIPELINE)}
            check_options(t.options, fn, f"{key}.train.options",
                          f"facebrain.training.{fn.__name__}", reserved=reserved)
    for i, d in enumerate(cfg.transfer.directions):
        if d.options:
            from ..transfer import probe

            key = f"transfer.directions[{i}]"
            reserved = {**_set_by(key, ("target", "layers", "cv", "n_folds", "head",
                                        "n_permutations", "seed")),
                        **dict.fromkeys(("acts", "client"), _BY_PIPELINE)}
            check_options(d.options, probe, f"{key}.options", "facebrain.transfer.probe",
                          reserved=reserved)
            if isinstance(d.options.get("head_kw"), Mapping) and d.options["head_kw"]:
                _check_head_kw(d.options["head_kw"], d.head, f"{key}.options.head_kw",
                               f"{key}.seed")
    if cfg.brain.options:
        from ..brain import simulate

        reserved = {**_set_by("brain", ("stimuli", "subjects", "runs", "repeats", "rois",
                                        "drivers", "tr", "snr", "seed")),
                    **dict.fromkeys(("out_dir", "overwrite", "task"), _BY_PIPELINE)}
        check_options(cfg.brain.options, simulate, "brain.options",
                      "facebrain.brain.simulate", reserved=reserved)
