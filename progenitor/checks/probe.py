"""The probe candidate: what ``progenitor doctor`` runs through the real sandbox, so that every
line it prints about a sandbox is something that just happened, never an inference.

The probe is laid out as a run would be: a run directory made by ``RunDir`` (so with its
real permissions) holding a label file next to the visible data, the candidate's tree
unpacked into a job directory under its disk quota by ``execute_job``, the command run by
the interpreter a candidate would use. It reports which Python ran it and as whom, which of
the task's packages it could import, whether it could read its data, whether it could read
the labels (it must not: by the path ``../data/...`` from its data, and by their absolute
path), and whether a port on the host's loopback answered it (it must not).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.errors import ProgenitorError

__all__ = ["ProbeReport", "judge", "probe_sandbox", "requirement_names"]

PROBE = r'''
import importlib, importlib.metadata as md, json, os, socket, sys
wanted, data, labels, port = sys.argv[1].strip("-"), sys.argv[2], sys.argv[3], int(sys.argv[4])
report = {"python": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3], "uid": os.getuid(),
          "imports": {}, "labels": []}
for name in [n for n in wanted.split(",") if n]:
    try:
        dist = md.distribution(name)
        top = (dist.read_text("top_level.txt") or "").split()
        for f in dist.files or []:  # no top_level.txt (newer build backends): the first package
            if not top and len(f.parts) == 2 and f.parts[1] == "__init__.py" and "." not in f.parts[0]:
                top.append(f.parts[0])
        importlib.import_module((top or [name.replace("-", "_").lower()])[0])
        report["imports"][name] = "ok"
    except Exception as exc:
        report["imports"][name] = "%s: %s" % (type(exc).__name__, str(exc)[:120])
try:
    report["data"] = open(os.path.join(data, "train.txt")).read().strip()
except OSError as exc:
    report["data"] = "unreadable: %s" % exc
for path in (os.path.join(data, os.pardir, "data", "holdout_labels.txt"), labels):
    try:
        report["labels"].append(open(path).read().strip())
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    report["network"] = "reached"
except OSError:
    report["network"] = "cut"
print("probe-report: " + json.dumps(report))
'''


class ProbeReport(BaseModel):
    ok: bool
    detail: str
    """One line: what ran, as whom, what it could and could not reach."""


def requirement_names(repo: Optional[Path]) -> list[str]:
    """The distributions a model repo's ``requirements.txt`` names (what the probe imports)."""
    if repo is None or not (Path(repo) / "requirements.txt").is_file():
        return []
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in (Path(repo) / "requirements.txt").read_text(encoding="utf-8").splitlines():
        text = line.split(" #")[0].strip()
        if text and not text.startswith(("#", "-")):
            try:
                names.append(Requirement(text).name)
            except InvalidRequirement:
                continue
    return names


def probe_sandbox(backend: str, backend_options: dict, python: str = "python",
                  imports: tuple[str, ...] = ()) -> ProbeReport:
    """Run the probe candidate through ``backend`` and say what it found, in one line."""
    from progenitor.compute.base import TrainJob, execute_job, tree_archive
    from progenitor.run.rundir import RunDir
    from progenitor.sandbox.base import Limits

    canary = secrets.token_hex(8)
    place = Path(tempfile.mkdtemp(prefix="progenitor-doctor-"))
    server = socket.socket()
    try:
        place.chmod(0o755)  # a model repo that others may enter, as a user's often is
        run = RunDir(place, f"doctor-{secrets.token_hex(3)}")
        run.create({"doctor": True})
        for path, text in ((run.data / "holdout_labels.txt", canary), (run.visible / "train.txt", "visible")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        server.bind(("127.0.0.1", 0))
        server.listen()
        labels = run.data / "holdout_labels.txt"
        job = TrainJob(
            key="doctor/probe", tree_archive=tree_archive({"probe.py": PROBE}), backend=backend, backend_options=backend_options,
            command=f"{python} probe.py {','.join(imports) or '-'} {{data}} {labels} {server.getsockname()[1]}",
            limits=Limits(wall_time=120, memory_bytes=2 << 30, disk_bytes=64 << 20), disk_files=1000,
        )
        try:
            result = execute_job(job, run.visible).sandbox
        except ProgenitorError as exc:
            return ProbeReport(ok=False, detail=str(exc))
    finally:
        server.close()
        shutil.rmtree(place, ignore_errors=True)
    return judge(result, canary)


def judge(result, canary: str) -> ProbeReport:
    """The probe's report, read from what it printed: every problem named."""
    line = next((ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("probe-report: ")), None)
    if not result.ok or line is None:
        return ProbeReport(ok=False, detail=f"the probe candidate did not run: {result.reason or 'no report'}")
    report = json.loads(line.removeprefix("probe-report: "))
    failed = {name: why for name, why in report["imports"].items() if why != "ok"}
    problems = []
    if canary in report["labels"]:
        problems.append("NOT SEALED: it read the holdout labels in its run directory")
    if report["network"] != "cut":
        problems.append("it reached the host's loopback")
    if report.get("data") != "visible":
        problems.append(f"its data was {report.get('data')}")
    if failed:
        problems.append("it could not import " + "; ".join(f"{n} ({w})" for n, w in failed.items()))
    ran = f"python {report['version']} ({report['python']}) ran as uid {report['uid']}"
    if problems:
        return ProbeReport(ok=False, detail=f"probe: {ran}, but " + "; ".join(problems))
    imported = f", imported {', '.join(report['imports'])}" if report["imports"] else ""
    return ProbeReport(ok=True, detail=(f"probe: {ran}{imported}, read its data, could not read the labels "
                                        f"beside it, no network ({', '.join(result.isolation)})"))
