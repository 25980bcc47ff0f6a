#!/usr/bin/env bash
# Starts podman's Docker-compatible service for the docker runtime and prints the DOCKER_HOST to
# export. Usage: scripts/podman-service.sh [SOCKET]  (default /run/dockyard-podman/podman.sock).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
socket="${1:-/run/dockyard-podman/podman.sock}"
folder="$(dirname "$socket")"
mkdir -p "$folder"
# The service's own copy of the configuration, beside its socket: a service outlives the checkout
# that started it (a CI clone removed later), and podman reads the file again as it works.
cp "$here/podman/containers.conf" "$folder/containers.conf"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$folder/containers.conf}"
command -v podman >/dev/null || { echo "podman is not installed: apt-get install podman runc aardvark-dns catatonit" >&2; exit 1; }
if [ -S "$socket" ] && [ "$(cat "$folder/service.conf" 2>/dev/null)" = "$CONTAINERS_CONF" ] \
   && podman --remote --url "unix://$socket" version >/dev/null 2>&1; then
  echo "export DOCKER_HOST=unix://$socket CONTAINERS_CONF=$CONTAINERS_CONF"
  exit 0  # already serving, with this configuration
fi
# A service on this socket with another configuration (or none that answers): replaced.
for pid in $(pgrep -f "podman system service --time=0 unix://$socket" || true); do
  kill "$pid" 2>/dev/null || true
done
for _ in $(seq 50); do pgrep -f "podman system service --time=0 unix://$socket" >/dev/null || break; sleep 0.1; done
rm -f "$socket"
# In its own folder: conmon writes an `oom` file into its working folder when the kernel kills a
# container for memory (podman 4.3 on cgroup v1), which would otherwise be the caller's.
cd "$folder"
nohup podman system service --time=0 "unix://$socket" >"$folder/service.log" 2>&1 &
echo "$CONTAINERS_CONF" >"$folder/service.conf"
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "podman's service did not start; see $folder/service.log" >&2; exit 1; }
echo "export DOCKER_HOST=unix://$socket CONTAINERS_CONF=$CONTAINERS_CONF"
