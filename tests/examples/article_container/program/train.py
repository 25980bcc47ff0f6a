"""The article's training script, in miniature: the environment from sagemaker_containers, the
labels file from --prepared-train-labels, a model that records what the container looked like."""

import argparse
import json
import os
import sys
import time

import sagemaker_containers

env = sagemaker_containers.training_env()
parser = argparse.ArgumentParser()
parser.add_argument("--prepared-train-labels", type=str, required=True)
parser.add_argument("--epochs", type=int, default=1)
args, _ = parser.parse_known_args()

train_dir = env.channel_input_dirs["train"]
with open(os.path.join(train_dir, args.prepared_train_labels)) as labels_file:
    labels = json.load(labels_file)
images = sorted(name for name in os.listdir(train_dir) if name.endswith(".jpg"))

import cocolike_built  # noqa: E402  built with Cython and numpy from the RUN line before
import pycocotools  # noqa: E402

time.tzset()
summary = {
    "tz": os.environ.get("TZ"),
    "tzname": time.tzname[0],
    "cwd": os.getcwd(),
    "python": sys.executable,
    "hosts": env.hosts,
    "current_host": env.current_host,
    "images": images,
    "labels": labels,
    "epochs": args.epochs,
    "cython_at_build": cocolike_built.CYTHON,
    "pycocotools": os.path.dirname(pycocotools.__file__),
}
print("summary", json.dumps(summary, sort_keys=True))
with open(os.path.join(env.model_dir, "summary.json"), "w") as out:
    json.dump(summary, out)
