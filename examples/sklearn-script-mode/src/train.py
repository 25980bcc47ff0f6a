"""Script-mode training of a scikit-learn RandomForest on iris: runs unchanged on SageMaker."""

import argparse
import glob
import json
import os

import joblib
import pandas as pd
from sagemaker_training import environment
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=None)
    parser.add_argument("--target", default="Species")
    # The toolkit passes these as environment variables; reading them as defaults lets the
    # script also run by hand outside a container.
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAINING", "data"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    env = environment.Environment()
    print("hosts:", env.hosts, "current host:", env.current_host)
    frames = [pd.read_csv(path) for path in sorted(glob.glob(os.path.join(args.train, "*.csv")))]
    data = pd.concat(frames)
    features = data.drop(columns=[args.target])
    target = data[args.target]
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=0
    )
    accuracy = cross_val_score(model, features, target, cv=5).mean()
    print(f"cv_accuracy={accuracy:.4f};")
    model.fit(features, target)
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    with open(os.path.join(args.model_dir, "features.json"), "w") as out:
        json.dump(list(features.columns), out)
    print("saved", os.path.join(args.model_dir, "model.joblib"))


if __name__ == "__main__":
    main()
