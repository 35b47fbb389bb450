#!/usr/bin/env bash
# What `make demo` needs of the machine besides Python: bubblewrap, for the process sandbox's
# whitelist view. Installed with apt where we are root (or sudo asks no password). Elsewhere
# nothing is installed and the demo still runs with the best isolation there is: Docker when
# a daemon answers and the task image is built, else, as root, the same view in our own mount
# namespace; a user who is neither root nor has bubblewrap or Docker is told in one sentence
# what to install. Idempotent.
set -euo pipefail

if command -v bwrap >/dev/null; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "demo-setup: bubblewrap is missing and this user cannot install it; the run says what it can do without"
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "demo-setup: bubblewrap is missing and there is no apt-get here; install bubblewrap with this system's packages"
  exit 0
fi
echo "demo-setup: installing bubblewrap"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null; }; then
  echo "demo-setup: could not install bubblewrap; the run says what it can do without"
fi
