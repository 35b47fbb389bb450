"""Reading a task's config file (YAML, JSON or TOML, by its suffix) into a mapping."""

from __future__ import annotations

import json
import sys
from pathlib import PurePath

import yaml

from progenitor.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["parse_config"]


def parse_config(text: str, name: str) -> dict:
    """The mapping a config file's text holds; a parse error is one ``UserError`` naming it."""
    suffix = PurePath(name).suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise UserError(f"{PurePath(name).name}: could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{PurePath(name).name}: expected a mapping at the top level")
    return data
