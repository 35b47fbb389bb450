#!/usr/bin/env bash
# Docker for the docker-marked tests and `--sandbox docker`: the engine (Debian's docker.io),
# a running daemon, the base image made locally (debootstrap + docker import: no registry is
# needed) and the digits and charlm examples' task images. Idempotent: a step whose result is already
# there is skipped. Needs root, or sudo, for apt, dockerd and debootstrap.
#
#   PYTHON       Python with progenitor's dependencies (default: .venv/bin/python, else python3)
#   DOCKERD_LOG  where the daemon started here logs (default: /tmp/progenitor-dockerd.log)
#   DOCKERD_WAIT seconds to wait for that daemon to answer (default: 60)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
LOG=${DOCKERD_LOG:-/tmp/progenitor-dockerd.log}
WAIT=${DOCKERD_WAIT:-60}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "docker-setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

answers() { $SUDO docker info >/dev/null 2>&1; }
if ! answers; then
  echo "docker-setup: starting dockerd (log: $LOG)"
  $SUDO sh -c "nohup dockerd >'$LOG' 2>&1 </dev/null &"
  for _ in $(seq "$WAIT"); do
    if answers; then break; fi
    sleep 1
  done
  if ! answers; then
    echo "docker-setup: dockerd did not answer within ${WAIT}s; the end of $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi
echo "docker-setup: $($SUDO docker version --format 'daemon {{.Server.Version}} answers')"

# `python -m progenitor.cli`: works before the `progenitor` script is on PATH.
echo "docker-setup: base image $($SUDO "$PYTHON" -m progenitor.cli sandbox base --quiet)"
echo "docker-setup: digits task image $($SUDO "$PYTHON" -m progenitor.cli sandbox build examples/digits --quiet)"
# charlm's (a language model scored with evaluate: model): kept buildable, for `--sandbox docker` and the bench.
echo "docker-setup: charlm task image $($SUDO "$PYTHON" -m progenitor.cli sandbox build examples/charlm --quiet)"
# Containers a crashed run or test left behind on this daemon (nothing runs yet at set-up time).
echo "docker-setup: $($SUDO "$PYTHON" -m progenitor.cli sandbox sweep)"
