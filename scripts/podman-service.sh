#!/usr/bin/env bash
# Starts podman's Docker-compatible service for the docker runtime and prints the DOCKER_HOST to
# export. Usage: scripts/podman-service.sh [SOCKET]  (default /run/dockyard-podman/podman.sock).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
socket="${1:-/run/dockyard-podman/podman.sock}"
mkdir -p "$(dirname "$socket")"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"
command -v podman >/dev/null || { echo "podman is not installed: apt-get install podman runc aardvark-dns" >&2; exit 1; }
if [ -S "$socket" ] && podman --remote --url "unix://$socket" version >/dev/null 2>&1; then
  echo "export DOCKER_HOST=unix://$socket CONTAINERS_CONF=$CONTAINERS_CONF"
  exit 0  # already serving
fi
rm -f "$socket"
# In its own folder: conmon writes an `oom` file into its working folder when the kernel kills a
# container for memory (podman 4.3 on cgroup v1), which would otherwise be the caller's.
cd "$(dirname "$socket")"
nohup podman system service --time=0 "unix://$socket" >"$(dirname "$socket")/service.log" 2>&1 &
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "podman's service did not start; see $(dirname "$socket")/service.log" >&2; exit 1; }
echo "export DOCKER_HOST=unix://$socket CONTAINERS_CONF=$CONTAINERS_CONF"
