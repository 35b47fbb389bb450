"""``progenitor init``: a template for an existing repo, or a fresh repo from an example."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from progenitor.candidate.keys import IDENTITY
from progenitor.errors import UserError
from progenitor.task.spec import SPEC_FILE

BRIEF = "program.md"
"""The research brief ``progenitor init`` writes beside the spec (``agents.brief``)."""


def examples_root() -> Path:
    """The bundled examples: the copy packaged inside progenitor (a wheel, ``pip install``;
    ``setup.py`` puts it there), else ``examples/`` beside the package in a source checkout or
    an editable install (never a stray ``examples`` directory of some other distribution)."""
    package = Path(__file__).resolve().parents[1]
    if (package / "examples").is_dir():
        return package / "examples"
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "examples").is_dir():
        return checkout / "examples"
    raise UserError(f"this installation of progenitor has no bundled examples ({package / 'examples'} is "
                    f"missing); reinstall it from a wheel or a source checkout (pip install progenitor)")


def available_examples() -> list[str]:
    root = examples_root()
    return sorted(p.name for p in root.iterdir() if (p / SPEC_FILE).exists())


def init_template(directory: Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory; create it (or use --example to make a fresh repo)")
    target = directory / SPEC_FILE
    if target.exists():
        raise UserError(f"{target} exists already; edit it, or remove it to start from the template")
    from progenitor.task.constitution import DEFAULT_TEMPLATE, default_constitution_text

    target.write_text(resources.files("progenitor.task").joinpath("templates", SPEC_FILE).read_text())
    constitution = directory / DEFAULT_TEMPLATE
    if not constitution.exists():
        constitution.write_text(default_constitution_text())
    brief = directory / BRIEF
    if not brief.exists():
        brief.write_text(resources.files("progenitor.task").joinpath("templates", BRIEF).read_text())
    return target


def init_example(name: str, directory: Path) -> Path:
    """Copy a bundled example into a new directory and make it a git repo with one commit."""
    import git

    names = available_examples()
    if name not in names:
        raise UserError(f"unknown example {name!r}; choose one of: {', '.join(names)}")
    directory = Path(directory).resolve()
    if directory.exists() and any(directory.iterdir()):
        raise UserError(f"{directory} exists and is not empty; choose a new directory")
    shutil.copytree(examples_root() / name, directory, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".progenitor"))
    repo = git.Repo.init(directory, initial_branch="main")
    repo.git.add("--all")
    repo.git.commit("--quiet", "-m", f"{name}: the human baseline", env={**os.environ, **IDENTITY})
    return directory
