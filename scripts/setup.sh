#!/usr/bin/env bash
# Sets up everything dockyard needs on a Debian/Ubuntu machine: system packages (with sudo when
# not root), a virtual environment in .venv and the project with its development tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-dev and build-essential: framework environments build sagemaker-training's C extension.
# The sandboxes: bubblewrap, libseccomp2 (their seccomp filter), slirp4netns (outside network for
# jobs without network isolation), e2fsprogs and util-linux (each host's volume; setpriv, nsenter).
# r-cran-reticulate: the R notebook (examples/r-reticulate) drives dockyard.sdk from R.
# The docker runtime and its tests: podman (a Docker-compatible engine; runc and aardvark-dns for
# it, see scripts/podman/containers.conf), docker-registry (the distribution registry behind the
# ECR API), busybox-static and debootstrap (base images made from a rootfs: no outside registry).
# postgresql: the metadata store's PostgreSQL backend is tested against a real server; the tests
# start their own cluster from its initdb and postgres (tests/postgres.py), as the postgres user
# the package creates (the Debian service itself is not used).
# chromium: the web console's pages are tested in a real headless browser (tests/console, driven
# by Playwright, whose own browser downloads are not used).
APT_PACKAGES=(bubblewrap libseccomp2 slirp4netns e2fsprogs util-linux
              r-base-core r-cran-randomforest r-cran-plumber r-cran-jsonlite r-cran-reticulate
              python3-venv python3-dev build-essential ca-certificates
              podman runc aardvark-dns catatonit docker-registry busybox-static debootstrap
              iproute2 iptables postgresql
              chromium)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${APT_PACKAGES[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "dockyard needs Python 3.11 or newer"'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: done (.venv/bin/dockyard)"
