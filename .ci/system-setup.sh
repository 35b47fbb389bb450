#!/usr/bin/env bash
# Machine-level set-up for the full test suite: the process sandbox's bubblewrap, and the
# Docker engine with progenitor's locally built images. Idempotent; needs root (or sudo)
# the first time only.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v dockerd >/dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  echo "system-setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -x .ci/docker-setup.sh ] || [ -f .ci/docker-setup.sh ]; then
  bash .ci/docker-setup.sh
fi
