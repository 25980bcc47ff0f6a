#!/usr/bin/env bash
# Vendors the console's charting library (uPlot, MIT) as built files into the package, so the
# console needs no CDN and users no build step. Re-run after changing UPLOT_VERSION; it rewrites
# src/dockyard/console/static/vendor/VENDORED.txt with the version and each file's sha256.
set -euo pipefail

UPLOT_VERSION=1.6.32

repo=$(cd "$(dirname "$0")/.." && pwd)
vendor="$repo/src/dockyard/console/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack fetches the published tarball through npm's own configured registry.
(cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
tar -xzf "$work/uplot-$UPLOT_VERSION.tgz" -C "$work"

mkdir -p "$vendor"
# The ES module build: pages import it as they are, with no bundler.
cp "$work/package/dist/uPlot.esm.js" "$vendor/uPlot.esm.js"
cp "$work/package/dist/uPlot.min.css" "$vendor/uPlot.min.css"
cp "$work/package/LICENSE" "$vendor/uPlot.LICENSE"

{
  echo "uplot $UPLOT_VERSION (MIT), from npm pack uplot@$UPLOT_VERSION by scripts/vendor-console.sh"
  (cd "$vendor" && sha256sum uPlot.esm.js uPlot.min.css uPlot.LICENSE)
} > "$vendor/VENDORED.txt"
cat "$vendor/VENDORED.txt"
