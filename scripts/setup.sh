#!/usr/bin/env bash
# Installs what berth's tests need on Debian (run as root; safe to run again):
# the Debian packages below, then the npm packages when node_modules is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one list of Debian packages (.ci/run repeats it in its apt-get line for the CI checker).
PACKAGES=(docker.io docker-compose busybox-static git iproute2 iptables ca-certificates openssh-server chromium)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: Debian packages already installed: ${PACKAGES[*]}"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  echo "setup: installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${PACKAGES[@]}"
fi

# npm ci records the installed tree in node_modules/.package-lock.json.
if [ ! -e node_modules/.package-lock.json ] || [ node_modules/.package-lock.json -ot package-lock.json ]; then
  echo "setup: node_modules is missing or older than package-lock.json: running npm ci"
  npm ci
else
  echo "setup: node_modules is up to date with package-lock.json"
fi
