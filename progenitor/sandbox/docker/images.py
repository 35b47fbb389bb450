"""Docker images for the docker sandbox, built with no registry reachable.

Two layers:

- the **base image** (``progenitor-base:bookworm``): a minimal Debian root made locally
  with ``debootstrap --variant=minbase`` and ``docker import``, holding Python and venv;
- a **task image** (``progenitor-task:<hash>``): the base plus a virtualenv at
  ``/opt/venv`` with the model repo's ``requirements.txt`` installed. The hash covers the
  base image, the requirements and the versions pinned from the host, so an unchanged repo
  reuses its image.

The container that installs the requirements has no network: wheels are gathered on the
host first (``pip wheel``, which also builds the sdists; ``pip download`` of binary wheels
when the host's Python differs from the image's), into a wheelhouse mounted read-only, and
installed with ``--no-index --find-links``. A requirement the host already has installed is
pinned to the host's version (so a CPU-only ``torch`` on the host stays CPU-only in the
image rather than becoming a multi-gigabyte CUDA download).

Gathering wheels resolves and builds on the host, so a model repo whose dependency manifest
a progenitor candidate changed last is built only with ``approve_dependencies=True`` (the
CLI's ``--approve-dependencies``): a person's word, see ``progenitor.task.manifests``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from progenitor.errors import SandboxError, UserError

DEFAULT_BASE = "progenitor-base:bookworm"
TASK_REPOSITORY = "progenitor-task"
RECIPE = "1"
"""Bump when the way task images are made changes, so old tags are not reused."""
VENV = "/opt/venv"
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_PACKAGES = ("python3", "python3-venv")

Log = Callable[[str], None]


def connect() -> Any:
    """A Docker client whose daemon answered a ping, or a SandboxError saying what to do."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - DockerException, socket errors: all mean "no daemon"
        raise SandboxError(
            f"no Docker daemon answers ({_short(exc)}); start one (see docs/docker.md) or use --sandbox process"
        ) from None


def image_exists(client: Any, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def missing_image_message(name: str) -> str:
    if name.startswith(DEFAULT_BASE.split(":")[0] + ":"):
        how = "make it with 'progenitor sandbox base' (debootstrap, about a minute, as root)"
    else:
        how = "build it with 'progenitor sandbox build DIR' (DIR: the model repo)"
    return f"docker image {name} not found; {how} - progenitor never pulls images"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _run(cmd: list[str], log: Optional[Log], what: str, **kwargs: Any) -> None:
    """Run a host command, streaming its output to ``log``; raise with its tail on failure."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        if log:
            log(line.rstrip())
    if proc.wait() != 0:
        raise SandboxError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail[-5:]))


# --- the base image -------------------------------------------------------------------


def make_base_image(
    tag: str = DEFAULT_BASE, suite: str = "bookworm", mirror: Optional[str] = None,
    force: bool = False, client: Any = None, log: Optional[Log] = None,
) -> str:
    """Make the base image with debootstrap and ``docker import``, unless it exists already."""
    client = client or connect()
    if image_exists(client, tag) and not force:
        return tag
    if os.getuid() != 0:
        raise SandboxError("making the base image runs debootstrap, which needs root; run it as root")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed; install it (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="progenitor-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(root)]
        _run(cmd + ([mirror] if mirror else []), log, "debootstrap")
        _trim(root)
        minor = os.readlink(root / "usr/bin/python3").removeprefix("python")
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], log, "tar of the root")
        repository, _, version = tag.partition(":")
        changes = [
            f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["/bin/sh"]',
            "LABEL progenitor.base=1", f"LABEL progenitor.python={minor}", f"LABEL progenitor.suite={suite}",
        ]
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version or "latest", changes=changes)
    return tag


def _trim(root: Path) -> None:
    """Drop what a sandbox never needs: package caches, docs, manuals."""
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
        target = root / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


# --- the task image -------------------------------------------------------------------


def host_pins(requirements: str) -> list[str]:
    """``name==version`` for each named requirement the host has installed in a version it allows."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    pins = []
    for line in requirements.splitlines():
        text = line.split(" #")[0].strip()
        if not text or text.startswith(("#", "-")):
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.url:
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue
        if req.specifier.contains(version, prereleases=True):
            pins.append(f"{req.name}=={version}")
    return sorted(pins, key=str.lower)


def image_python(client: Any, image: str) -> str:
    """``3.11``: the Python of an image (its label, else asked of a throwaway container)."""
    labels = client.images.get(image).labels or {}
    if labels.get("progenitor.python"):
        return labels["progenitor.python"]
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        out = client.containers.run(image, ["python3", "-c", code], network_mode="none", remove=True)
    except Exception as exc:  # noqa: BLE001 - ContainerError: no python3 in there
        raise SandboxError(f"image {image} has no working python3 ({_short(exc)}); pick another base") from None
    return out.decode().strip()


def _requirements(repo: Path) -> str:
    if not repo.is_dir():
        raise UserError(f"{repo} is not a directory; give the model repo's directory")
    req = repo / "requirements.txt"
    return req.read_text(encoding="utf-8") if req.exists() else ""


def task_image(repo: Path, base: str = DEFAULT_BASE, client: Any = None) -> str:
    """The tag ``build_task_image`` gives this repo's image (whether or not it is built yet)."""
    client = client or connect()
    if not image_exists(client, base):
        raise SandboxError(missing_image_message(base))
    requirements = _requirements(Path(repo))
    return _tag(client.images.get(base).id, requirements, host_pins(requirements), image_python(client, base))


def _tag(base_id: str, requirements: str, pins: list[str], python: str) -> str:
    digest = hashlib.sha256("\0".join([RECIPE, base_id, python, requirements, *pins]).encode()).hexdigest()
    return f"{TASK_REPOSITORY}:{digest[:12]}"


def check_dependencies(repo: Path, approved: bool, say: Log) -> None:
    """Refuse (``UserError``) to build from manifests a candidate changed, unless a person approved them."""
    from progenitor.task.manifests import candidate_manifests

    changed = candidate_manifests(Path(repo))
    if not changed:
        return
    named = ", ".join(f"{m.path} ({m.ref or 'commit'} {m.commit[:10]})" for m in changed)
    if not approved:
        first = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise UserError(
            f"{first.path}{more} was last changed by a progenitor candidate ({first.ref or 'commit'} "
            f"{first.commit[:10]}), not by a person: review what it installs, then build with "
            "--approve-dependencies to say you approve it"
        )
    say(f"building from dependency manifests a candidate changed, approved by a person: {named}")


def build_task_image(
    repo: Path, base: str = DEFAULT_BASE, wheelhouse: Optional[Path] = None, tag: Optional[str] = None,
    download: bool = True, force: bool = False, client: Any = None, log: Optional[Log] = None,
    approve_dependencies: bool = False,
) -> str:
    """Build (or reuse) the task image of the model repo ``repo``; returns its tag.

    ``wheelhouse``: where wheels are gathered (kept; default a temporary directory).
    ``download=False``: use the wheelhouse as it is (a machine with no registry at all).
    ``approve_dependencies``: a person approved the manifests a candidate changed (see
    ``check_dependencies``); without it such a repo is refused before anything runs.
    """
    say = log or (lambda _line: None)
    if not Path(repo).is_dir():
        raise UserError(f"{repo} is not a directory; give the model repo's directory")
    check_dependencies(Path(repo), approve_dependencies, say)
    client = client or connect()
    if not image_exists(client, base):
        raise SandboxError(missing_image_message(base))
    requirements = _requirements(Path(repo))
    pins = host_pins(requirements)
    python = image_python(client, base)
    name = _tag(client.images.get(base).id, requirements, pins, python)
    if image_exists(client, name) and not force:
        say(f"reusing {name}")
        return _retag(client, name, tag)
    if not download and wheelhouse is None:
        raise UserError("--no-download needs --wheelhouse: a directory that already holds the wheels")
    with tempfile.TemporaryDirectory(prefix="progenitor-build-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        (context / "requirements.txt").write_text(requirements, encoding="utf-8")
        (context / "constraints.txt").write_text("".join(p + "\n" for p in pins), encoding="utf-8")
        house = Path(wheelhouse) if wheelhouse else Path(tmp) / "wheels"
        house.mkdir(parents=True, exist_ok=True)
        if download and requirements.strip():
            say(f"gathering wheels into {house} (pins from this host: {', '.join(pins) or 'none'})")
            fill_wheelhouse(context, house, python, log)
        say(f"installing into {VENV} on {base}, with no network")
        _install(client, base, context, house, name, python, log)
    say(f"built {name}")
    return _retag(client, name, tag)


def fill_wheelhouse(context: Path, house: Path, python: str, log: Optional[Log] = None) -> None:
    """Gather on the host every wheel the requirements need, for the image's Python."""
    common = ["-r", str(context / "requirements.txt"), "-c", str(context / "constraints.txt"), "--find-links", str(house)]
    host = "%d.%d" % sys.version_info[:2]
    if python == host:
        # pip wheel also builds the sdists, with the same Python minor and glibc family as the image.
        cmd = [sys.executable, "-m", "pip", "wheel", "-w", str(house), *common]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "-d", str(house), "--only-binary=:all:",
               "--python-version", python, *common]
    _run(cmd, log, "gathering wheels on the host")


def _install(client: Any, base: str, context: Path, house: Path, name: str, python: str, log: Optional[Log]) -> None:
    from docker.types import Mount

    script = (
        f"set -e; python3 -m venv {VENV}; "
        f"{VENV}/bin/pip install --disable-pip-version-check --no-cache-dir --root-user-action=ignore "
        "--no-index --find-links /wheels -r /context/requirements.txt -c /context/constraints.txt"
    )
    container = client.containers.create(
        base, ["/bin/sh", "-c", script], network_mode="none", user="0:0",
        # Not progenitor=1: commit copies a container's labels into the image, and every
        # container of the image would then carry it.
        labels={"progenitor.build": name},
        mounts=[Mount("/context", str(context.resolve()), type="bind", read_only=True),
                Mount("/wheels", str(house.resolve()), type="bind", read_only=True)],
    )
    try:
        container.start()
        for chunk in container.logs(stream=True, follow=True):
            for line in chunk.decode(errors="replace").splitlines():
                if log:
                    log(line)
        code = container.wait().get("StatusCode")
        if code != 0:
            tail = container.logs(tail=5).decode(errors="replace").strip().replace("\n", " | ")
            raise SandboxError(f"installing the requirements in the image failed (exit {code}): {tail}")
        repository, _, version = name.partition(":")
        container.commit(repository=repository, tag=version, changes=[
            f"ENV PATH={PATH}", f"ENV VIRTUAL_ENV={VENV}", 'CMD ["/bin/sh"]', "WORKDIR /",
            f"LABEL progenitor.task={name}", f"LABEL progenitor.python={python}", "LABEL progenitor.build=\"\"",
        ])
    finally:
        container.remove(force=True)


def _retag(client: Any, name: str, tag: Optional[str]) -> str:
    if not tag:
        return name
    repository, _, version = tag.partition(":")
    client.images.get(name).tag(repository, version or "latest")
    return tag
