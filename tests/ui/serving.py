"""``progenitor ui`` as a real process on a free loopback port, with the link it prints."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.helpers.gating import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "progenitor.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


class Lines:
    """What a process prints, read in a thread (its pipe never fills)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def find(self, pattern: str) -> str | None:
        return next((m.group(1) for line in list(self.lines) if (m := re.search(pattern, line))), None)


def start_ui(repo: Path, *extra: str) -> tuple[subprocess.Popen, str, str]:
    """The page of ``repo``: the process, its base URL and the owner's sign-in link it printed."""
    port = free_port()
    proc = spawn("ui", "--repo", str(repo), "--port", str(port), *extra)
    out = Lines(proc.stdout)
    link = wait_for(lambda: proc.poll() is not None or out.find(r"by opening: (\S+)"), timeout=60,
                    what="progenitor ui to print its link")
    assert proc.poll() is None, f"progenitor ui exited {proc.returncode}: {proc.stderr.read()}"
    base = out.find(r" at (\S+) \(Ctrl-C stops\)")
    import ssl
    import urllib.request

    context = ssl._create_unverified_context()

    def answers() -> bool:
        try:
            with urllib.request.urlopen(base + "static/app.css", timeout=2, context=context) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(lambda: proc.poll() is not None or answers(), timeout=60, what="the page to answer")
    return proc, base, link


@contextmanager
def spawn_ui(repo: Path, *extra: str) -> Iterator[tuple[str, str]]:
    proc, base, link = start_ui(repo, *extra)
    try:
        yield base, link
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ask it to end (uvicorn waits for open connections a while), then make it."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
