"""Coders turn a proposal into file changes in a worktree (the lineage commits them).

- config values (``proposal.params``) are written into the task's declared config file,
  YAML, JSON or TOML, keys dotted for nesting. In a YAML file, a top-level ``key: value``
  line is edited in place so the human's comments explaining each value survive;
- whole-file edits (``proposal.edits``) are written as given (scripted and LLM coders).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from progenitor.agents.architect import Proposal
from progenitor.configfile import parse_config
from progenitor.errors import ModelBehaviorError, UserError
from progenitor.search_space import validate_proposal
from progenitor.spec import TaskSpec


def load_config(path: Path) -> dict:
    return parse_config(path.read_text(encoding="utf-8"), path.name)


def get_dotted(data: dict, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


def read_params(tree: Path, spec: TaskSpec) -> dict[str, Any]:
    """Current values of the search-space keys in a tree's config file."""
    if spec.search_space is None:
        return {}
    path = tree / spec.search_space.file
    if not path.exists():
        return {}
    data = load_config(path)
    return {key: get_dotted(data, key) for key in spec.search_space.params}


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def _edit_yaml_lines(text: str, values: dict[str, Any]) -> str:
    """Replace top-level ``key: value`` lines in place, keeping trailing comments."""
    for key, value in values.items():
        pattern = re.compile(rf"^({re.escape(key)}\s*:\s*)([^#\n]*?)(\s+#.*)?$", re.MULTILINE)
        if len(pattern.findall(text)) != 1:
            raise KeyError(key)
        text = pattern.sub(lambda m: m.group(1) + _yaml_scalar(value) + (m.group(3) or ""), text)
    return text


def write_config(path: Path, values: dict[str, Any]) -> None:
    suffix = path.suffix.lower()
    data = load_config(path) if path.exists() else {}
    for key, value in values.items():
        set_dotted(data, key, value)
    if suffix in (".yaml", ".yml"):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        try:
            edited = _edit_yaml_lines(text, values)
            if yaml.safe_load(edited) == data:
                path.write_text(edited, encoding="utf-8")
                return
        except (KeyError, yaml.YAMLError):
            pass  # nested or repeated keys: rewrite the whole file
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        import tomli_w

        path.write_text(tomli_w.dumps(data), encoding="utf-8")


def apply_proposal(proposal: Proposal, tree: Path, spec: TaskSpec) -> None:
    """Write a proposal's changes into ``tree``."""
    tree = tree.resolve()
    for rel, content in proposal.edits.items():
        if ".git" in Path(rel).parts:
            # The worktree's .git file points at the model repo: an edit there could move
            # the user's branches. Git internals are never a candidate's to change.
            raise ModelBehaviorError(f"edit target {rel!r} is inside git's own files")
        target = (tree / rel).resolve()
        if tree not in target.parents:
            raise ModelBehaviorError(f"edit target {rel!r} lies outside the repository")
        try:
            if content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise ModelBehaviorError(f"edit of {rel!r} failed: {exc.strerror or exc}") from None
    if proposal.params:
        if spec.search_space is None:
            raise UserError("a proposal sets config values but progenitor.yaml has no search_space.file")
        write_config(tree / spec.search_space.file, validate_proposal(spec.search_space, proposal.params))


def commit_message(proposal: Proposal, gen: int) -> str:
    body = [f"Author: {proposal.author} architect"]
    if proposal.params:
        body.append("Values: " + json.dumps(proposal.params, sort_keys=True, default=str))
    if proposal.edits:
        body.append("Files: " + ", ".join(sorted(proposal.edits)))
    return f"g{gen}/c{proposal.k}: {proposal.hypothesis}\n\n" + "\n".join(body) + "\n"
