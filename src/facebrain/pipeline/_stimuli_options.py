"""Loader options of ``stimuli.<name>`` entries: which loader takes which key, checked early.

Every keyword option of the Python loaders that shapes labels or selection
(``expression_map``, ``rename``, ``path_column``, ``on_duplicate``...) is a
config key too, so that ``facebrain run`` and the Python API give the same
table. A key the source's loader does not take is a config error naming it.
"""

from __future__ import annotations

import inspect

from ._typed import ConfigError

__all__ = ["check_loader_options", "loader", "loader_kwargs"]

#: sources without image files: no duplicate check, no alignment cache by file
_GENERATED = {"synthetic_kdef", "synthetic_identities", "fer2013"}


def loader(source: str):
    """The :mod:`facebrain.stimuli` loader of ``source``.

    None for sources without loader options (``manifest`` and the synthetic presets).
    """
    from ..stimuli import (
        from_table,
        load_fer2013,
        load_folder,
        load_kdef,
        load_lfw,
        load_vggface2,
    )

    loaders = {"kdef": load_kdef, "lfw": load_lfw, "folder": load_folder,
               "table": from_table, "fer2013": load_fer2013, "vggface2": load_vggface2}
    return loaders.get(source)


def _loader_params(source: str) -> list[str]:
    fn = loader(source)
    if fn is None:
        return []
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _set_options(spec) -> dict:
    from ._sections import LOADER_OPTIONS

    return {k: getattr(spec, k) for k in LOADER_OPTIONS if getattr(spec, k, None) is not None}


def check_loader_options(spec, key: str) -> None:
    """Raise :class:`ConfigError` for an option the source's loader does not take."""
    params = _loader_params(spec.source)
    for opt, value in _set_options(spec).items():
        if opt == "on_duplicate" and spec.source not in _GENERATED:
            continue  # applied after loading for loaders without the option
        if opt not in params:
            takes = ", ".join(p for p in params if p != "name") or "none"
            raise ConfigError(
                f"{key}.{opt}: not an option of source {spec.source!r} (its loader takes: "
                f"{takes}). Remove the key or change the source."
            )
        if opt == "expression_map" and isinstance(value, str):
            from ..stimuli._loader_utils import read_data_table

            known = sorted(read_data_table("expression_codes.csv")["dataset"].unique())
            if value not in known:
                raise ConfigError(
                    f"{key}.expression_map: no code table named {value!r} in "
                    f"facebrain/data/expression_codes.csv; known: {known}. Or give a mapping "
                    "code: name."
                )
        if opt in ("identity_meta", "bboxes") and not value.is_file():
            raise ConfigError(f"{key}.{opt}: file not found: {value}")


def loader_kwargs(spec) -> dict:
    """The set options that ``spec.source``'s loader takes, as keyword arguments."""
    params = _loader_params(spec.source)
    return {k: v for k, v in _set_options(spec).items() if k in params}
