#!/usr/bin/env bash
# The main job: set up, train the R and the Python example through dockyard's server, deploy the
# R model on two instances, invoke it, batch-transform a folder of rows with it, and clean up.
# State goes to $DOCKYARD_HOME (default ~/.dockyard).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
dockyard=.venv/bin/dockyard
stamp=$(date +%Y%m%d-%H%M%S)
# The demo's files go inside the checkout: dockyard reads and writes local paths only under
# DOCKYARD_LOCAL_PATHS (default: your home folder), and the background server started by a first
# run keeps the folders it was started with, so a second run must ask for the same ones.
work=$(mktemp -d "$PWD/demo-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DOCKYARD_LOCAL_PATHS=${DOCKYARD_LOCAL_PATHS:-"$PWD"}

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

echo "== Deploy the R model on two instances and invoke it =="
$dockyard deploy --job "iris-r-$stamp" --name "iris-$stamp" --instance-count 2
printf '5.1,3.5,1.4,0.2\n6.0,2.9,4.5,1.5\n6.3,3.3,6.0,2.5\n' |
  $dockyard invoke "iris-$stamp" --content-type text/csv --body -

echo "== Batch transform: every iris row, without its label, in two files =="
mkdir "$work/rows"
tail -n +2 examples/data/iris/iris.csv | cut -d, -f1-4 | head -n 75 > "$work/rows/part-1.csv"
tail -n +2 examples/data/iris/iris.csv | cut -d, -f1-4 | tail -n +76 > "$work/rows/part-2.csv"
$dockyard transform --model "iris-$stamp" --input "$work/rows" --output "$work/predictions" \
  --content-type text/csv --split-type Line --strategy MultiRecord --assemble-with Line \
  --instance-count 2 --max-concurrent 2 --name "iris-batch-$stamp"
for part in part-1 part-2; do
  echo "$part: $(sort "$work/predictions/$part.csv.out" | uniq -c | tr -s ' \n' ' ')"
done

$dockyard endpoints delete "iris-$stamp" --wait

echo "== See it all in the browser =="
# The jobs' charts and logs, the endpoint's traffic: the console of the same background server.
$dockyard console --no-browser
