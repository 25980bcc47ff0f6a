"""A script-mode scikit-learn entry point for the SageMaker SDK test: trains a random forest on
iris epoch by epoch when run, and serves it through model_fn when imported."""

import argparse
import glob
import json
import os
import time

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    # A pause after each epoch keeps the job running long enough for the SDK, which first
    # looks at a job five seconds after creating it, to print its log while it runs.
    parser.add_argument("--epoch-seconds", type=float, default=0.0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    data = pd.concat(pd.read_csv(path) for path in sorted(glob.glob(f"{args.train}/*.csv")))
    features, target = data.drop(columns=["Species"]), data["Species"]
    model = RandomForestClassifier(n_estimators=0, warm_start=True, random_state=0)
    for epoch in range(1, args.epochs + 1):
        model.n_estimators += 5
        model.fit(features, target)
        print(f"epoch {epoch}/{args.epochs}: trees={model.n_estimators}", flush=True)
        time.sleep(args.epoch_seconds)
    print(f"train_accuracy={model.score(features, target):.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    with open(os.path.join(args.model_dir, "trained_on.json"), "w") as out:
        json.dump({"rows": len(data), "classes": sorted(target.unique())}, out)


if __name__ == "__main__":
    main()
