"""Shared fixtures. Every test gets its own run index (PROGENITOR_HOME) so nothing is
written to the real home directory, and no test can reach a real LLM provider: a TCP
connection to anything but this machine (loopback, or its own addresses, which a local Ray
uses) is refused and fails the test, even where the code under test swallows the error."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import defaultdict
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def pytest_collection_modifyitems(config, items):
    """Which marked tests must share one worker when ``make test`` runs them on both cores
    (``-n 2 --dist loadgroup``; without xdist these marks do nothing): every test that starts
    Ray or trains an example end to end (one Ray at a time on the machine, and those trainings
    would starve each other), the browser tests (one Chromium), and each backend's red team
    (its attacks share one run of the loop per group, cached in the worker that ran it)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker("ray") or item.nodeid.startswith("tests/e2e/"):
            group = "heavy"
        elif item.get_closest_marker("browser"):
            group = "browser"
        elif item.nodeid.startswith("tests/redteam/"):
            backend = callspec.params.get("backend", "process") if callspec is not None else "process"
            group = f"redteam-{backend}"
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))


def _own_addresses() -> set[str]:
    try:
        return {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return set()


_OWN = _own_addresses()


def _local(address) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket (the Docker daemon)
    host = str(address[0])
    if host == "localhost" or host in _OWN:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it would be the first step out


class NetworkGuard:
    """The non-local connections a test tried (each was refused)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def check(self, sock: socket.socket, address) -> None:
        if sock.type == socket.SOCK_STREAM and not _local(address):
            self.attempts.append(repr(address))
            raise ConnectionRefusedError(f"tests may not reach the network: {address!r}")


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    guard = NetworkGuard()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self, address):
        guard.check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        guard.check(self, address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield guard
    if guard.attempts:
        pytest.fail(f"the test tried to reach the network: {', '.join(guard.attempts)}")


def docker_required(config: pytest.Config) -> bool:
    """Must the docker tests run (fail when Docker is unusable) rather than skip?

    ``make test`` (and so CI) sets PROGENITOR_REQUIRE_DOCKER=1 after starting the daemon; a
    developer who selects the marker (``-m docker``) asks for them too."""
    if os.environ.get("PROGENITOR_REQUIRE_DOCKER") == "1":
        return True
    expr = config.option.markexpr or ""
    return "docker" in expr and "not docker" not in expr


def skip_unless_docker(config: pytest.Config, usable: bool, detail: str) -> None:
    """Skip a docker test on a machine without Docker; fail it where Docker is required."""
    if usable:
        return
    if docker_required(config):
        pytest.fail(f"Docker is required here but not usable: {detail} (run .ci/docker-setup.sh)")
    pytest.skip(f"no usable Docker here ({detail}); `make test` runs these with the daemon started")


POSTGRES = "postgresql://progenitor@127.0.0.1:55432/postgres"
"""Where .ci/postgres-setup.sh starts the test cluster (PROGENITOR_TEST_POSTGRES overrides it)."""


@pytest.fixture
def postgres() -> str:
    """The URL of a fresh database of its own on the test PostgreSQL server, dropped afterwards;
    the test fails where no server answers."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    base = os.environ.get("PROGENITOR_TEST_POSTGRES", POSTGRES)
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # Never a skip: a postgres test runs only when selected (`-m postgres`, `make test`), and
        # one that cannot reach its server has not shown anything.
        pytest.fail(f"PostgreSQL is required here but {base} does not answer: {detail} "
                    "(run .ci/postgres-setup.sh, which `make test` runs)")
    name = f"progenitor_test_{secrets.token_hex(5)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(base)
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PROGENITOR_HOME", str(tmp_path_factory.mktemp("progenitor-home")))
    # Default-deny: a test that forgets to point the LLM at the local stand-in server fails.
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def toy_repo(tmp_path) -> Path:
    from progenitor.testing import make_repo, toy_task_files

    return make_repo(tmp_path / "toy", toy_task_files())


@pytest.fixture
def llm_server():
    """A scripted OpenAI-compatible server on 127.0.0.1 (``progenitor.testing``)."""
    from progenitor.testing.llm_server import ScriptedLLMServer

    with ScriptedLLMServer() as server:
        yield server


# -- the red team's tally (tests/redteam) ---------------------------------------------------------
_TALLY: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"tried": [], "stopped": []})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each red-team attack's report carries what the tally needs (under xdist the reports travel to
    the controlling process, which prints the summary; the items stay in the workers)."""
    report = (yield).get_result()
    spec = getattr(item, "callspec", None)
    if spec is not None and "attack" in spec.params and "layer" in spec.params:
        report.user_properties.append(("redteam", (spec.params["backend"], spec.params["layer"],
                                                   spec.params["attack"].name)))


def pytest_runtest_logreport(report):
    attack = dict(report.user_properties).get("redteam")
    if attack is None:
        return
    backend, layer, name = attack
    if report.when == "call" or (report.when == "setup" and report.failed):
        tally = _TALLY[(backend, layer)]
        tally["tried"].append(name)
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            tally["stopped"].append(name)


def pytest_terminal_summary(terminalreporter):
    if not _TALLY:
        return
    terminalreporter.section("red team")
    for (backend, layer), tally in sorted(_TALLY.items()):
        missed = sorted(set(tally["tried"]) - set(tally["stopped"]))
        line = (f"{backend} sandbox, {layer} layer: {len(tally['tried'])} attacks tried, "
                f"{len(tally['stopped'])} stopped")
        terminalreporter.write_line(line + (f"; NOT stopped: {', '.join(missed)}" if missed else ""))
