"""What a candidate's container is: the options given to ``containers.create`` (the hardening
lives here), its mounts, command, environment and user, and the isolation it reports."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from progenitor.errors import SandboxError
from progenitor.sandbox.access import grant_read, hand_over
from progenitor.sandbox.base import SandboxSpec
from progenitor.sandbox.docker.images import PATH
from progenitor.sandbox.env import build_env, fill_template

__all__ = ["DATA", "LABEL", "OUT", "TREE", "container_options", "fill_command", "grant_access", "isolation",
           "sandbox_env"]

TREE, DATA, OUT = "/sandbox/tree", "/sandbox/data", "/sandbox/out"
LABEL = "progenitor"
NOBODY = (65534, 65534)
ISOLATION = ["container", "mountns", "pidns", "ipcns", "netns", "uid", "nnp", "cap-drop-all", "seccomp",
             "readonly-root", "cgroup-limits"]
"""What is in force (the process backend's words where they mean the same); "netns" only without network."""
TMPFS_BYTES = 1 << 30
"""Size of the tmpfs /tmp (its pages count against the memory limit, as far as it is used)."""
GUARD_SECONDS = 10
"""How long past its wall time a container whose watcher died kills itself."""
SHM_BYTES = 1 << 30
"""/dev/shm for PyTorch data loaders (Docker's 64 MB default breaks them), at most the memory limit:
its pages count against the limit, so that filling it ends as ``oom`` (the kernel's OOM killer),
like any other memory, and not as a bus error at a smaller size."""


def container_options(spec: SandboxSpec, user: str) -> dict[str, Any]:
    """Everything ``containers.create`` is given besides the image: the hardening lives here."""
    import docker

    limits = spec.limits
    options: dict[str, Any] = dict(
        # The wall time is enforced from outside (the container is killed); coreutils'
        # timeout is a second guard for when the process that watches it dies.
        command=["timeout", "-s", "KILL", str(int(limits.wall_time + GUARD_SECONDS)), "/bin/sh", "-c", fill_command(spec)],
        name=_name(spec.labels),
        labels={LABEL: "1", **{f"{LABEL}.{k}": str(v) for k, v in spec.labels.items()}},
        user=user,
        working_dir=TREE,
        environment=sandbox_env(spec),
        mounts=_mounts(spec),
        network_mode="bridge" if spec.network else "none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        read_only=True,
        tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={TMPFS_BYTES},mode=1777"},
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.processes,
        shm_size=min(SHM_BYTES, limits.memory_bytes) if limits.memory_bytes else SHM_BYTES,
        # The daemon keeps stdout/stderr on disk for the logs API; bound it.
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "64m", "max-file": "2"}),
        init=False,
        stdin_open=False,
        tty=False,
    )
    if limits.memory_bytes:
        # Same value for memory+swap: no swapping past the limit.
        options.update(mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes)
    if limits.disk_bytes:
        # No one file past the disk quota (the job's tmpfs holds the whole; see compute.jobdir).
        options["ulimits"] = [docker.types.Ulimit(name="fsize", soft=limits.disk_bytes, hard=limits.disk_bytes)]
    if limits.gpus:
        options["device_requests"] = [docker.types.DeviceRequest(device_ids=list(limits.gpus), capabilities=[["gpu"]])]
    return options


def fill_command(spec: SandboxSpec) -> str:
    """The command with ``{tree}``, ``{data}`` and ``{out}`` as the container sees them."""
    return fill_template(spec.command, Path(TREE), Path(OUT), Path(DATA) if spec.data is not None else None)


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The process backend's minimal environment, with the container's own PATH and GPU numbering."""
    env = build_env(spec, "/tmp")
    env.update({"MPLCONFIGDIR": "/tmp", "PATH": PATH})
    # Docker exposes only the requested GPUs, renumbered from 0 inside the container.
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(spec.limits.gpus)))
    env.update(spec.env)
    return env


def isolation(network: bool) -> list[str]:
    return [label for label in ISOLATION if not (network and label == "netns")]


def grant_access(spec: SandboxSpec) -> str:
    """The container's user, after making the mounted dirs usable by it.

    A non-root host user runs the container as itself, so the files it leaves are its own.
    Root runs it as nobody: the writable dirs are handed to nobody, the read-only ones are
    made readable by others where they are not.
    """
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    tree = [] if spec.read_only_tree else [spec.tree]
    writable = [*tree, spec.out] + [m.source for m in spec.mounts if not m.read_only]
    readable = ([spec.data] if spec.data is not None else []) + [m.source for m in spec.mounts if m.read_only]
    readable += [spec.tree] if spec.read_only_tree else []
    for path in writable:
        hand_over([_present(path)], *NOBODY)
    for path in readable:
        grant_read(_present(path))
    return f"{NOBODY[0]}:{NOBODY[1]}"


def _present(path: Path) -> Path:
    if not Path(path).exists():
        raise SandboxError(f"cannot mount {path} into the sandbox: it does not exist")
    return Path(path)


def _mounts(spec: SandboxSpec) -> list[Any]:
    from docker.types import Mount

    mounts = [
        Mount(TREE, str(spec.tree.resolve()), type="bind", read_only=spec.read_only_tree),
        Mount(OUT, str(spec.out.resolve()), type="bind", read_only=False),
    ]
    if spec.data is not None:
        mounts.append(Mount(DATA, str(spec.data.resolve()), type="bind", read_only=True))
    for extra in spec.mounts:
        source = extra.source.resolve()
        mounts.append(Mount(extra.target or str(source), str(source), type="bind", read_only=extra.read_only))
    return mounts


def _name(labels: dict[str, str]) -> str:
    parts = [labels.get(k, "") for k in ("run", "generation", "candidate")]
    stem = "-".join(p for p in parts if p)
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem)[:60]
    return f"progenitor-{safe + '-' if safe else ''}{secrets.token_hex(4)}"
