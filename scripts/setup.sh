#!/usr/bin/env bash
# Installs what berth's tests need on Debian (run as root; safe to run again): the Debian
# packages below, then the npm packages when node_modules is missing or out of date.
# With --demo, only what scripts/demo.sh needs (berth and a local Docker engine).
set -euo pipefail
cd "$(dirname "$0")/.."

# What running berth on the local Docker engine needs (the demo), and what the tests add:
# docker-compose and Swarm as peers, an sshd for ssh:// hosts, chromium for the dashboard, and a
# private registry with basic auth over HTTPS (docker-registry, htpasswd from apache2-utils, openssl),
# mmdebstrap, which makes Debian's minimal system for the stand-in base of berth's own image
# where Docker Hub cannot be reached (scripts/image.ts: `npm run image`, test/image.test.ts), and
# postgresql, whose server the tests of several engines on one database start (test/harness/postgres.ts).
# (.ci/run repeats the whole list in its apt-get line for the CI checker.)
DEMO_PACKAGES=(docker.io busybox-static git iproute2 iptables ca-certificates)
TEST_PACKAGES=(docker-compose openssh-server chromium docker-registry apache2-utils openssl mmdebstrap postgresql)
PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
if [ "${1:-}" = "--demo" ]; then PACKAGES=("${DEMO_PACKAGES[@]}"); fi

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
  # berth runs on Node 24 from the npm \`node\` package, which npm ci installs into node_modules;
  # npm itself runs on the machine's Node and would warn (EBADENGINE) for each package that wants
  # a newer one: those lines are left out, and one line says why.
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 24 ]; then
    echo "setup: this machine's Node is $(node --version); berth runs on Node 24 from the npm 'node' package (node_modules/.bin/node)"
    npm ci 2> >(grep -v 'EBADENGINE' >&2)
  else
    npm ci
  fi
else
  echo "setup: node_modules is up to date with package-lock.json"
fi
