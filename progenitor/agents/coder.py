"""Coders turn a proposal into file changes in a worktree (the lineage commits them).

- config values (``proposal.params``) are written into the task's declared config file,
  YAML, JSON or TOML, keys dotted for nesting. In a YAML file, a top-level ``key: value``
  line is edited in place so the human's comments explaining each value survive;
- whole-file edits (``proposal.edits``) are written as given (scripted and LLM coders).

Every read and write of the tree goes through ``progenitor.tree_files``: the tree is the
champion's, so a link in it is never followed and git's own files are never touched.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from progenitor import tree_files
from progenitor.agents.architect import Proposal
from progenitor.errors import ModelBehaviorError, UnsafePathError, UserError
from progenitor.spec import TaskSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _in_tree(path: Path, tree: Optional[Path]) -> tuple[Path, str]:
    """(root, relative path): ``tree`` is where links stop being followed (default: the file's directory)."""
    if tree is None:
        return path.parent, path.name
    return tree, path.relative_to(tree).as_posix()


def _read(path: Path, tree: Optional[Path]) -> str:
    try:
        return tree_files.read_text(*_in_tree(path, tree))
    except UnicodeDecodeError:
        raise UserError(f"{path.name}: is not UTF-8 text") from None


def load_config(path: Path, tree: Optional[Path] = None) -> dict:
    suffix = path.suffix.lower()
    text = _read(path, tree)
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise UserError(f"{path.name}: could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path.name}: expected a mapping at the top level")
    return data


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
    kind = tree_files.kind(tree, spec.search_space.file)
    if kind is None:
        return {}
    if kind == "link":  # in the base: the run refuses to start rather than fail every candidate
        raise UserError(f"search_space.file {spec.search_space.file!r} is a symbolic link; progenitor writes no "
                        "file through a link, so name the file it points to")
    data = load_config(path, tree)
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


def write_config(path: Path, values: dict[str, Any], tree: Optional[Path] = None) -> None:
    suffix = path.suffix.lower()
    root, rel = _in_tree(path, tree)
    exists = tree_files.kind(root, rel) is not None
    text = _read(path, tree) if exists else ""
    data = load_config(path, tree) if exists else {}
    for key, value in values.items():
        set_dotted(data, key, value)
    if suffix in (".yaml", ".yml"):
        try:
            edited = _edit_yaml_lines(text, values)
            if yaml.safe_load(edited) == data:
                tree_files.write_text(root, rel, edited)
                return
        except (KeyError, yaml.YAMLError):
            pass  # nested or repeated keys: rewrite the whole file
        tree_files.write_text(root, rel, yaml.safe_dump(data, sort_keys=False))
    elif suffix == ".json":
        tree_files.write_text(root, rel, json.dumps(data, indent=2) + "\n")
    else:
        import tomli_w

        tree_files.write_text(root, rel, tomli_w.dumps(data))


def apply_proposal(proposal: Proposal, tree: Path, spec: TaskSpec) -> None:
    """Write a proposal's changes into ``tree``."""
    tree = tree.resolve()
    for rel, content in proposal.edits.items():
        # tree_files refuses git's own files in any spelling (the worktree's .git file points
        # at the model repo: an edit there could move the user's branches), links and '..'.
        try:
            if content is None:
                tree_files.remove(tree, rel)
            else:
                tree_files.write_text(tree, rel, content)
        except UnsafePathError as exc:
            raise ModelBehaviorError(f"edit target {exc}") from None
        except (OSError, UnicodeError) as exc:
            raise ModelBehaviorError(f"edit of {rel!r} failed: {getattr(exc, 'strerror', None) or exc}") from None
    if proposal.params:
        if spec.search_space is None:
            raise UserError("a proposal sets config values but progenitor.yaml has no search_space.file")
        write_config(tree / spec.search_space.file, proposal.params, tree)


def commit_message(proposal: Proposal, gen: int) -> str:
    body = [f"Author: {proposal.author} architect"]
    if proposal.params:
        body.append("Values: " + json.dumps(proposal.params, sort_keys=True, default=str))
    if proposal.edits:
        body.append("Files: " + ", ".join(sorted(proposal.edits)))
    return f"g{gen}/c{proposal.k}: {proposal.hypothesis}\n\n" + "\n".join(body) + "\n"
