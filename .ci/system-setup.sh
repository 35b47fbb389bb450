#!/usr/bin/env bash
# Machine-level set-up for the full test suite: the process sandbox's bubblewrap, Chromium and PostgreSQL here, then
# the Docker engine and progenitor's locally built images (.ci/docker-setup.sh installs and
# starts what it needs). Idempotent; needs root (or sudo) the first time only.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

bash .ci/demo-setup.sh
command -v bwrap >/dev/null || { echo "system-setup: bubblewrap could not be installed" >&2; exit 1; }

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used: the tests launch /usr/bin/chromium).
if ! [ -x /usr/bin/chromium ]; then
  echo "system-setup: installing chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The team store's tests run against a real PostgreSQL: Debian's, a cluster of our own on loopback.
bash .ci/postgres-setup.sh

bash .ci/docker-setup.sh
