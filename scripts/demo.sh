#!/usr/bin/env bash
# Runs berth on its embedded default: the local Docker socket as the one host and the bundled
# examples as the repo. Installs what is missing, starts the local Docker engine when none runs,
# builds the examples' demo image from busybox (no registry needed), then `npm start`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --demo

if ! docker -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
  echo "demo: starting the local Docker engine (log: /var/log/berth-demo-dockerd.log)"
  nohup dockerd >/var/log/berth-demo-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 && break; sleep 1; done
  docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 || { echo "demo: dockerd did not start, see /var/log/berth-demo-dockerd.log" >&2; exit 1; }
fi

for version in v1 v2; do
  if ! docker -H unix:///var/run/docker.sock image inspect "berth-demo/web:$version" >/dev/null 2>&1; then
    ctx=$(mktemp -d)
    cp examples/images/web/Dockerfile "$ctx/" && cp /bin/busybox "$ctx/busybox"
    echo "demo: building berth-demo/web:$version"
    docker -H unix:///var/run/docker.sock build -q -t "berth-demo/web:$version" --build-arg "VERSION=$version" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
done

echo "demo: berth keeps data/ here; the examples repo it watches is data/examples (edit, git commit, watch)"
exec npm start
