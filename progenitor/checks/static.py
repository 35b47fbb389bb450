"""The checks that read files only: cheap enough for every run start.

Each takes plain arguments (the spec, a tree, options) and returns one ``Check``: ok,
warning (the run works, but not as well as it could) or problem (the run would waste its
budget or fail: it is refused).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.checks.programs import command_problems
from progenitor.checks.trees import Tree
from progenitor.errors import UserError
from progenitor.task.placeholders import placeholders_in
from progenitor.task.spec import TaskSpec

Status = Literal["ok", "warning", "problem", "skipped"]


class Check(BaseModel):
    name: str
    """What was checked, short: ``search space``, ``scorer``."""
    status: Status
    detail: str
    """One sentence: what was found, or what is wrong and what to do."""


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status="ok", detail=detail)


def problem(name: str, detail: str) -> Check:
    return Check(name=name, status="problem", detail=detail)


def check_search_space(spec: TaskSpec, tree: Tree) -> list[Check]:
    """Every problem of the space against its file, one check each (each with its did-you-mean)."""
    from progenitor.task.search_space import space_problems

    space = spec.search_space
    if space is None:
        return [ok("search space", "none declared (an LLM architect edits the code instead)")]
    problems = space_problems(space, tree.files(), tree.read, tree.where)
    if problems:
        return [problem("search space", p) for p in problems]
    passed = "; train.command gets them as --name=value flags (search_space.flags)" if space.flags else ""
    return [ok("search space", f"{space.file} has every key of search_space.params ({', '.join(space.params)}){passed}")]


def check_baseline_values(spec: TaskSpec, tree: Tree) -> Check:
    """A warning, not a problem: a baseline outside the space still trains, but the search
    cannot be told its score and starts cold."""
    from progenitor.task.config_files import get_dotted, parse_config
    from progenitor.task.search_space import config_keys, outside_space

    space = spec.search_space
    text = tree.read(space.file) if space else None
    if space is None or text is None:
        return Check(name="baseline values", status="skipped", detail="no search space file to read")
    try:
        config = parse_config(text, space.file)
    except UserError as exc:
        return problem("baseline values", str(exc))
    keys = set(config_keys(config))  # a key the file lacks is the search space check's problem
    present = space.model_copy(update={"params": {n: p for n, p in space.params.items() if n in keys}})
    outside = outside_space(present, {name: get_dotted(config, name) for name in present.params})
    if outside:
        return Check(name="baseline values", status="warning", detail=baseline_warning(outside))
    return ok("baseline values", "the baseline's values lie in the space: the search starts from its score")


def baseline_warning(outside: list[str]) -> str:
    return (f"the baseline's values lie outside the search space ({'; '.join(outside)}): the search cannot be "
            "told the baseline's score and starts cold; widen the range or change the value")


def check_placeholders(spec: TaskSpec) -> Check:
    used = {field: placeholders_in(command) for field, command in commands(spec).items()}
    shown = "; ".join(f"{field} uses {', '.join('{' + n + '}' for n in names) or 'none'}" for field, names in used.items())
    return ok("placeholders", shown)


def commands(spec: TaskSpec) -> dict[str, str]:
    named = {"data.prepare": spec.data.prepare, "train.command": spec.train.command,
             "scorer.command": spec.scorer.command}
    if spec.scorer.test is not None:
        named["scorer.test.command"] = spec.scorer.test.command
    return named


def sandbox_path() -> str:
    """The PATH a sandboxed command gets (the process backend's; Docker images have the same tools)."""
    from progenitor.sandbox.env import SYSTEM_PATH

    return os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), *SYSTEM_PATH]))


def check_programs(spec: TaskSpec, tree: Tree) -> list[Check]:
    """One check per command: its programs on the PATH it will have, its scripts in the tree.

    A program the training needs that this machine lacks is only a warning when the task
    may train in Docker: its image may well have it."""
    from progenitor.evaluation.scorer import trusted_env

    trusted = trusted_env()["PATH"]
    paths = {"data.prepare": trusted, "train.command": sandbox_path(), "scorer.command": trusted,
             "scorer.test.command": trusted}
    checks = []
    for field, command in commands(spec).items():
        found, missing = command_problems(command, tree.files(), paths[field], tree.where)
        name = f"{field} programs"
        if not missing:
            checks.append(ok(name, f"{', '.join(found) or 'shell builtins only'}: found"))
            continue
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        in_image = field == "train.command" and spec.sandbox.backend != "process" and \
            all(m.startswith("program '") for m in missing)
        if in_image:
            checks.append(Check(name=name, status="warning", detail=(
                f"{field} runs {missing[0]}{more} on this machine; a Docker task image may have it")))
        else:
            checks.append(problem(name, f"{field} runs {missing[0]}{more}"))
    return checks


def check_constitution(spec: TaskSpec, tree: Tree) -> Check:
    """The base's constitution loads and the task keeps it (its file from the tree, in a
    scratch directory: the safety package reads a tree on disk)."""
    from progenitor.agents import safety

    name = spec.safety.constitution
    with tempfile.TemporaryDirectory(prefix="progenitor-check-") as scratch:
        if name:
            text = tree.read(name)
            if text is not None:
                target = Path(scratch) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        try:
            rules, findings = safety.check_task(spec, Path(scratch))
        except UserError as exc:
            return problem("constitution", str(exc))
    blocking = safety.blocking(findings, spec.safety.block_at)
    if blocking:
        return problem("constitution", f"the task breaks its own constitution: {blocking[0].message}")
    return ok("constitution", f"{name or 'the packaged default'} loads, and the task keeps its rules")


def check_resources(spec: TaskSpec, executor: str, ray_address: Optional[str]) -> Check:
    from progenitor.compute.resources import machine_resources, shortfall

    res = spec.train.resources
    if executor == "ray" and ray_address:
        return Check(name="resources", status="skipped",
                     detail=f"a cluster at {ray_address} may grow (autoscaling); its executor checks when it joins")
    have = machine_resources()
    where = "this machine" if executor == "local" else "the local Ray instance (this machine)"
    trouble = shortfall(res.cpus, res.gpus, have, where)
    if trouble:
        return problem("resources", trouble)
    return ok("resources", f"{res.cpus:g} CPU, {res.gpus:g} GPU, {res.memory} per candidate; this machine has "
                           f"{have['CPU']:g} CPUs, {have['GPU']:g} GPUs")
