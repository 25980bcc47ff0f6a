#!/usr/bin/env bash
# The main job: set up, then train the R and the Python example through dockyard's server,
# show the jobs and the model artifacts. State goes to $DOCKYARD_HOME (default ~/.dockyard).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
dockyard=.venv/bin/dockyard
stamp=$(date +%Y%m%d-%H%M%S)

echo "== R randomForest (BYOC, no Docker) =="
$dockyard train --image examples/r-randomforest --input train=examples/data/iris \
  --hp target=Species --output s3://demo/out --name "iris-r-$stamp" \
  --metric 'train:accuracy=train:accuracy=([0-9.]+)'

echo "== Python BYOC (stdlib only) =="
$dockyard train --image examples/python-byoc --input train=examples/data/iris \
  --hp target=Species --hp epochs=3 --output s3://demo/out --name "iris-py-$stamp" \
  --metric 'accuracy=^accuracy=([0-9.]+)'

$dockyard jobs list
$dockyard s3 ls "s3://demo/out/iris-r-$stamp/output/"
