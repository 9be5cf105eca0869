"""Turn plain YAML data into typed dataclasses, naming the key path on every error.

A small, dependency-free cousin of pydantic's validation: it walks the type
hints of a dataclass and converts (or rejects) each value, so that an error
reads ``models[1].train.epochs: expected int, got 'ten'``. It also expands
``${ENV_VAR}`` (and ``${ENV_VAR:-default}``) references in strings and applies
``key.path=value`` overrides before validation.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ..errors import ConfigError

__all__ = ["ConfigError", "apply_overrides", "convert", "expand_env", "safe_load", "to_plain"]



#: most YAML nodes a config may expand to once aliases are resolved (a config has hundreds)
MAX_NODES = 100_000


def safe_load(text: str, where: str = "config"):
    """``yaml.safe_load`` with alias expansion bounded (no "billion laughs").

    YAML aliases share one node, so a few lines can stand for 10**9 nodes that every
    later step (``${VAR}`` expansion, validation, JSON hashing) would walk. The node
    graph is composed first and its expanded size counted (memoised per node); more
    than :data:`MAX_NODES` nodes, or an alias that contains itself, is refused.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, where)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()


def _count_nodes(root, where: str) -> int:
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise ConfigError(
                    f"{where}: YAML aliases expand to more than {MAX_NODES:,} values (a "
                    "'billion laughs' document?); write the values out or use fewer nested "
                    "aliases."
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise ConfigError(f"{where}: a YAML alias refers to itself (recursive anchor "
                              f"at line {node.start_mark.line + 1})")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


class EnvStr(str):
    """A string that came (at least partly) from a ``${VAR}`` expansion.

    :func:`convert` parses it as YAML where the field wants an int, float or bool,
    so ``epochs: ${EPOCHS}`` with ``EPOCHS=3`` gives the int 3.
    """


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def expand_env(data: Any, path: str = "", environ: typing.Mapping[str, str] | None = None) -> Any:
    """Return ``data`` with ``${VAR}`` / ``${VAR:-default}`` expanded in every string.

    An unset variable without a default raises :class:`ConfigError` naming the
    variable and the key that uses it.
    """
    env = os.environ if environ is None else environ
    if isinstance(data, dict):
        return {k: expand_env(v, _join(path, k), env) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, _join(path, i), env) for i, v in enumerate(data)]
    if isinstance(data, str):

        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{path or '<root>'}: environment variable ${{{name}}} is not set. "
                f"Set it (export {name}=/path/to/...) or write the value into the config."
            )

        return EnvStr(_ENV.sub(repl, data)) if _ENV.search(data) else data
    return data


_KEY_PATH = re.compile(r"^[A-Za-z_][\w-]*(?:\[\d+\]|\.[A-Za-z_][\w-]*)*$")
_TOKEN = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def _parse_key_path(key: str) -> list:
    if not _KEY_PATH.match(key):
        raise ConfigError(f"override key {key!r} is not a dotted key path like 'a.b[0].c'")
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _TOKEN.finditer(key)]


def apply_overrides(data: dict, overrides: typing.Mapping[str, Any] | typing.Iterable[str]) -> dict:
    """Set values at dotted key paths (``{"models[0].train.epochs": 1}`` or ``"k=v"`` strings).

    String overrides ``"key=value"`` parse ``value`` as YAML (so ``3`` is an int,
    ``[a, b]`` a list). Missing intermediate mappings are created; list indices
    must exist. Returns a new dict; ``data`` is not modified.
    """
    import copy

    data = copy.deepcopy(data)
    if not isinstance(overrides, typing.Mapping):
        parsed = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key.path=value")
            k, v = item.split("=", 1)
            try:
                parsed[k.strip()] = safe_load(v, f"--set {k.strip()}") if v.strip() else None
            except yaml.YAMLError as err:
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise ConfigError(
                    f"--set {k.strip()}: cannot read the value {v!r} ({problem}); quote "
                    f"strings that contain ':' '{{' '[' or '#', e.g. --set '{k.strip()}=\"...\"'"
                ) from None
        overrides = parsed
    for key, value in overrides.items():
        parts = _parse_key_path(key)
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[: depth + 1])
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError(f"override {key!r}: {where.lstrip('.')} does not exist")
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(f"override {key!r}: {where.lstrip('.')} is not a mapping")
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError(f"override {key!r}: index {last} does not exist")
        elif not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: parent is not a mapping")
        node[last] = value
    return data


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        args = typing.get_args(tp)
        return f"mapping of {_type_name(args[1])}" if args else "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    if tp is Path:
        return "path"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def convert(value: Any, tp, path: str) -> Any:
    """Convert plain data ``value`` to type ``tp``; raise ConfigError naming ``path``."""
    if tp is Any:
        return str(value) if isinstance(value, EnvStr) else value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (value == "" and type(None) in args):
            # an empty string (e.g. an unset optional ``${VAR:-}``) means "not given"
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got null")
        errors = []
        # dataclass and container members last, so that scalars match first
        for arg in sorted(args, key=lambda a: dataclasses.is_dataclass(a) or a in (dict,)):
            if arg is type(None):
                continue
            try:
                return convert(value, arg, path)
            except ConfigError as err:
                errors.append(err)
        # a mapping for a dataclass member: report its own (deeper) error
        for err in errors:
            if str(err).split(":", 1)[0] != path:
                raise err
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {_show(value)}")
    if value is None:
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got null")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{path}: expected {_type_name(tp)}, got {_show(value)}{hint}"
            )
        return allowed[list(allowed).index(value)]
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {_show(value)}")
        return [convert(v, item_tp, _join(path, i)) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        args = typing.get_args(tp)
        val_tp = args[1] if args else Any
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{_join(path, k)}: keys must be strings, got {_show(k)}")
            out[k] = convert(v, val_tp, _join(path, k))
        return out
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(value, tp, path)
    if isinstance(value, EnvStr) and tp in (bool, int, float):
        value = _env_scalar(value)
    if isinstance(value, EnvStr):
        value = str(value)  # plain str from here on (YAML can dump it)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected bool (true/false), got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected int, got {_show(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected float, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected str, got {_show(value)}")
    if tp is Path:
        if isinstance(value, (str, os.PathLike)) and str(value):
            return Path(os.path.expanduser(str(value)))
        raise ConfigError(f"{path}: expected path, got {_show(value)}")
    raise ConfigError(f"{path}: the config type {tp!r} is not supported by the reader (a bug "
                      "in the config dataclasses: use str, int, float, bool, Path, Literal, "
                      "list, dict, a dataclass or a union of those)")


def _env_scalar(value: str):
    """Read an expanded ``${VAR}`` string as a YAML scalar (``"3"`` -> 3, ``"true"`` -> True)."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return str(value)
    return parsed if isinstance(parsed, (bool, int, float)) else str(value)


def _convert_dataclass(value: Any, cls, path: str):
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping ({cls.__name__}), got {_show(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{_join(path, key)}: unknown key.{hint} Allowed keys here: {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name in value:
            kwargs[name] = convert(value[name], hints[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: required key is missing (expected {_type_name(hints[name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check is not None:
        check(path)
    return obj


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, Paths -> str, recursively (JSON/YAML friendly)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
