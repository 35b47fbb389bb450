"""Reading and editing a task's config file (YAML, JSON or TOML) by dotted key.

Edits go through round-trip libraries (ruamel.yaml, tomlkit), so that the human's comments
explaining each value survive on every key, nested ones included, and the file keeps its
order and layout. A key that is not in the file is never added: a value written where the
training code does not read it would be a dead knob (``missing_keys`` finds them first).

The file lives in a tree a candidate (or the champion it was built on) committed, so it is
read and written through ``progenitor.boundary.tree_files``: never through a link, never outside the tree.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from progenitor.boundary import tree_files
from progenitor.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["get_dotted", "missing_keys", "parse_config", "read_config", "set_values", "write_values"]

_MISSING = object()


def _kind(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".toml": "toml"}.get(suffix, "yaml")


def parse_config(text: str, name: str) -> dict:
    """Plain data of a config file's text; a parse error is a ``UserError`` naming the file."""
    kind = _kind(name)
    try:
        if kind == "yaml":
            import yaml

            data = yaml.safe_load(text) or {}
        elif kind == "json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise UserError(f"{name}: could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{name}: expected a mapping at the top level")
    return data


def _text(tree: Path, rel: str) -> str:
    try:
        return tree_files.read_text(tree, rel)
    except UnicodeDecodeError:
        raise UserError(f"{rel}: is not UTF-8 text") from None


def read_config(tree: Path, rel: str) -> dict:
    """Plain data of the config file ``rel`` of ``tree`` (read with no link followed)."""
    return parse_config(_text(tree, rel), rel)


def config_text(tree: Path, rel: str) -> str:
    """The text of ``tree``'s config file ``rel``, read with no link followed."""
    return _text(tree, rel)


def write_values(tree: Path, rel: str, values: dict[str, Any]) -> None:
    """Set existing dotted keys of ``tree``'s config file ``rel``, comments kept, no link followed."""
    tree_files.write_text(tree, rel, set_values(_text(tree, rel), rel, values))


def get_dotted(data: dict, key: str, default: Any = None) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def missing_keys(data: dict, keys: list[str]) -> list[str]:
    """The dotted keys that do not exist in ``data``."""
    return [key for key in keys if get_dotted(data, key, _MISSING) is _MISSING]


def _round_trip_yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a human's long line
    return yaml


def set_values(text: str, name: str, values: dict[str, Any]) -> str:
    """``text`` with each dotted key set to its value, comments and layout kept.

    Every key must exist already (``UserError`` otherwise, naming it). The file may be a
    candidate's (the champion's): nesting too deep for the round-trip libraries is a ``UserError`` too."""
    absent = missing_keys(parse_config(text, name), list(values))
    if absent:
        raise UserError(f"{name}: has no key {absent[0]!r} to set")
    try:
        return _set(text, name, values)
    except (RecursionError, MemoryError):
        raise UserError(f"{name}: nests too deep to be edited") from None
    except Exception as exc:  # noqa: BLE001 - the round-trip parsers are stricter than the plain ones
        # (ruamel refuses a key given twice, which PyYAML reads): the file's fault, in one sentence
        raise UserError(f"{name}: could not be edited: {type(exc).__name__}: {str(exc)[:200]}") from None


def _set(text: str, name: str, values: dict[str, Any]) -> str:
    kind = _kind(name)
    if kind == "yaml":
        yaml = _round_trip_yaml()
        doc = yaml.load(text)
        _assign(doc, values)
        out = io.StringIO()
        yaml.dump(doc, out)
        return out.getvalue()
    if kind == "toml":
        import tomlkit

        doc = tomlkit.parse(text)
        _assign(doc, values)
        return tomlkit.dumps(doc)
    data = json.loads(text)
    _assign(data, values)
    return json.dumps(data, indent=2) + "\n"


def _assign(doc: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        parts = key.split(".")
        node = doc
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
