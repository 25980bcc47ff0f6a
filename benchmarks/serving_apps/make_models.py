"""Makes the serving benchmark's models (run in the bench venv): usage make_models.py OUT_DIR.

OUT_DIR/echo and OUT_DIR/rf are SageMaker model folders (model/ with code/inference.py), beside
them each model's model.tar.gz (for CreateModel) and MLflow copies of the same models
(mlflow-echo, mlflow-rf). Prints one JSON line: the versions pinned and the in-process time of
one request through the RandomForest's handlers."""

import importlib.metadata
import json
import shutil
import statistics
import sys
import tarfile
import time
from pathlib import Path

import joblib
import mlflow.pyfunc
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

HERE = Path(__file__).resolve().parent
BODY = "5.1,3.5,1.4,0.2"  # the first iris row (setosa, class 0)
TIMED_CALLS = 200


class Echo(mlflow.pyfunc.PythonModel):
    """MLflow's trivial model: answers with its input (pickled by value from this script)."""

    def predict(self, context, model_input, params=None):
        return model_input


def pins(*names):
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def model_folder(out, name, inference, requirements):
    model = out / name / "model"
    (model / "code").mkdir(parents=True)
    shutil.copy(HERE / inference, model / "code" / "inference.py")
    if requirements:
        # What dockyard installs into the endpoint's environment: the versions that pickled it.
        (model / "code" / "requirements.txt").write_text("\n".join(requirements) + "\n")
    return model


def model_tarball(model, target):
    """The model folder without code/ (CreateModel names the code separately)."""
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(model.iterdir()):
            if path.name != "code":
                archive.add(path, arcname=path.name)


def in_process_ms(model_dir):
    """Median ms of input_fn + predict_fn + output_fn on one row, in this process."""
    sys.path.insert(0, str(model_dir / "code"))
    import inference  # the RF handlers just written

    model = inference.model_fn(str(model_dir))
    times = []
    for _ in range(TIMED_CALLS):
        start = time.perf_counter()
        inference.output_fn(inference.predict_fn(inference.input_fn(BODY, "text/csv"), model), "")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), inference.output_fn(
        inference.predict_fn(inference.input_fn(BODY, "text/csv"), model), ""
    )[0]


def main():
    out = Path(sys.argv[1])
    requirements = pins("scikit-learn", "numpy", "scipy", "joblib")
    iris = load_iris()
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)
    forest.fit(iris.data, iris.target)

    echo = model_folder(out, "echo", "echo_inference.py", [])
    (echo / "model.json").write_text('{"model": "echo"}\n')  # so the tarball is not empty
    rf = model_folder(out, "rf", "rf_inference.py", requirements)
    joblib.dump(forest, rf / "model.joblib")
    model_tarball(echo, out / "echo" / "model.tar.gz")
    model_tarball(rf, out / "rf" / "model.tar.gz")

    # Explicit requirements: MLflow would otherwise import the model in a subprocess to guess.
    mlflow.sklearn.save_model(
        forest,
        str(out / "mlflow-rf"),
        pip_requirements=requirements,
        # MLflow's default format (skops) refuses tree models unless their type is trusted.
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    mlflow.pyfunc.save_model(
        str(out / "mlflow-echo"), python_model=Echo(), pip_requirements=pins("mlflow")
    )
    per_request, answer = in_process_ms(rf)
    print(
        json.dumps(
            {"requirements": requirements, "rf_in_process_ms": per_request, "rf_answer": answer}
        )
    )


if __name__ == "__main__":
    main()
