"""`dockyard deploy`, `invoke`, `endpoints` and `endpoint-configs` as a user runs them: real CLI
processes against a real server in this process (so a test can also count what each instance
served), real sandboxes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_endpoints_api import make_echo_image
from tests.cli.test_cli_train import DOCKYARD, dockyard
from tests.conftest import RunningServer, free_port, make_image

pytestmark = pytest.mark.slow

STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"  # job_name_from_base's

# One flower of each species, as CSV rows of the four features (no header, no label column):
# rows 1, 51 and 101 of examples/data/iris/iris.csv.
IRIS_ROWS = "5.1,3.5,1.4,0.2\n7.0,3.2,4.7,1.4\n6.3,3.3,6.0,2.5\n"
SPECIES = "setosa\nversicolor\nvirginica\n"


def cli_env_for(server: RunningServer) -> dict[str, str]:
    return {
        **os.environ,
        "DOCKYARD_HOME": str(server.settings.home),
        "DOCKYARD_ENDPOINT_URL": server.url,
    }


@pytest.fixture
def env(server: RunningServer) -> dict[str, str]:
    return cli_env_for(server)


def one_error_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr, result.stderr
    assert result.stderr.startswith("error: ")


def served_by_instance(server: RunningServer, endpoint: str) -> dict[str, int]:
    deployment = server.engine.endpoints._live[endpoint]
    return {instance.name: instance.served for instance in deployment.instances()}


def test_r_example_serves_species_on_two_instances(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Must show: CSV rows in, species out, through `dockyard invoke`; two instances at once."""
    trained = dockyard(
        env, "train", "--image", "examples/r-randomforest", "--input", "train=examples/data/iris",
        "--hp", "target=Species", "--output", "s3://demo/out", "--name", "iris-rf",
        "--runtime", "process",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr

    deployed = dockyard(
        env, "deploy", "--job", "iris-rf", "--name", "iris", "--instance-count", "2"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Model iris created from job iris-rf" in deployed.stdout
    assert "Creating" in deployed.stdout and "InService" in deployed.stdout
    assert "AllTraffic: 2 of 2 instances serving" in deployed.stdout
    assert "dockyard invoke iris --content-type text/csv" in deployed.stdout

    described = json.loads(dockyard(env, "endpoints", "describe", "iris").stdout)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "iris"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    model = json.loads(dockyard(env, "models", "describe", "iris").stdout)["PrimaryContainer"]
    assert model["ModelDataUrl"] == "s3://demo/out/iris-rf/output/model.tar.gz"
    assert model["Image"].endswith("examples/r-randomforest")
    # The model serves in the runtime its job trained in (the job's dockyard:runtime tag).
    sagemaker = server.client("sagemaker")
    model_arn = sagemaker.describe_model(ModelName="iris")["ModelArn"]
    runtime_tag = {"Key": "dockyard:runtime", "Value": "process"}
    assert sagemaker.list_tags(ResourceArn=model_arn)["Tags"] == [runtime_tag]

    rows = tmp_path / "rows.csv"
    rows.write_text(IRIS_ROWS)
    from_file = dockyard(env, "invoke", "iris", "--content-type", "text/csv", "--body", f"@{rows}")
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == SPECIES  # the answer and nothing else
    from_stdin = subprocess.run(
        [*DOCKYARD, "invoke", "iris", "--content-type", "text/csv", "--body", "-"],
        env=env, input=IRIS_ROWS, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert from_stdin.returncode == 0 and from_stdin.stdout == SPECIES, from_stdin.stderr
    literal = dockyard(
        env, "invoke", "iris", "--content-type", "text/csv", "--body", "6,2.9,4.5,1.5"
    )
    assert literal.stdout == "versicolor\n"
    answer = tmp_path / "answer.csv"
    saved = dockyard(
        env, "invoke", "iris", "--content-type", "text/csv", "--body", f"@{rows}",
        "--output", str(answer),
    )  # fmt: skip
    assert saved.returncode == 0 and saved.stdout == "" and answer.read_text() == SPECIES

    # Both instances at once: eight CLI processes in flight together, every answer right, and
    # each instance served a share (the router sends a request to the least busy instance).
    before = served_by_instance(server, "iris")
    calls = [
        subprocess.Popen(
            [*DOCKYARD, "invoke", "iris", "--content-type", "text/csv", "--body", f"@{rows}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [call.communicate(timeout=120) for call in calls]
    assert [out for out, _ in outputs] == [SPECIES] * 8, outputs
    after = served_by_instance(server, "iris")
    assert set(after) == {"AllTraffic-1", "AllTraffic-2"}
    assert sum(after.values()) - sum(before.values()) == 8
    assert all(after[name] > before.get(name, 0) for name in after), (before, after)

    # What the container says about a bad request reaches the user as one model-error line.
    empty = dockyard(env, "invoke", "iris", "--content-type", "text/csv", "--body", "")
    one_error_line(empty, "model error (400): the request body is empty")
    short = dockyard(env, "invoke", "iris", "--content-type", "text/csv", "--body", "1,2")
    one_error_line(short, "model error (400): each row needs 4 values")
    assert short.stdout == ""
    wrong_type = dockyard(
        env, "invoke", "iris", "--content-type", "application/json", "--body", "{}"
    )
    one_error_line(wrong_type, "model error (415): this model accepts Content-Type text/csv")

    missing_job = dockyard(env, "deploy", "--job", "no-such-job", "--name", "nothing")
    one_error_line(missing_job, "training job no-such-job not found")
    missing_endpoint = dockyard(env, "invoke", "no-such-endpoint", "--body", "1,2,3,4")
    one_error_line(missing_endpoint, "Endpoint no-such-endpoint of account")
    listed = json.loads(dockyard(env, "endpoints", "list", "--json").stdout)["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["iris"]  # the failed deploy made nothing


def test_endpoint_lifecycle_with_the_cli(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    image = make_echo_image(tmp_path, "v1")
    assert dockyard(env, "models", "create", "echo-v1", "--image", str(image)).returncode == 0
    config = dockyard(
        env, "endpoint-configs", "create", "echo-v1", "--model", "echo-v1", "--instance-count", "2"
    )
    assert config.returncode == 0, config.stderr
    listed_configs = dockyard(env, "endpoint-configs", "list")
    assert "echo-v1" in listed_configs.stdout
    variants = json.loads(dockyard(env, "endpoint-configs", "describe", "echo-v1").stdout)
    assert variants["ProductionVariants"][0]["InitialInstanceCount"] == 2

    created = dockyard(env, "endpoints", "create", "echo", "--config", "echo-v1")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Creating" in created.stdout and "InService" in created.stdout
    assert "AllTraffic: 2 of 2 instances serving" in created.stdout
    listed = dockyard(env, "endpoints", "list")
    assert "echo" in listed.stdout and "InService" in listed.stdout

    # Every request option reaches the container, and only the answer is on stdout.
    invoked = dockyard(
        env, "invoke", "echo", "--body", "a,b", "--content-type", "text/csv",
        "--accept", "application/json", "--custom-attributes", "trace=1",
        "--target-variant", "AllTraffic", "--inference-id", "req-7", "--verbose",
    )  # fmt: skip
    assert invoked.returncode == 0, invoked.stderr
    answer = json.loads(invoked.stdout)
    assert answer["body"] == "a,b" and answer["content_type"] == "text/csv"
    assert answer["accept"] == "application/json" and answer["attributes"] == "trace=1"
    assert answer["inference_id"] == "req-7" and answer["version"] == "v1"
    assert "InvokedProductionVariant: AllTraffic" in invoked.stderr
    assert "CustomAttributes: seen=yes" in invoked.stderr
    refused = dockyard(env, "invoke", "echo", "--body", "fail")
    one_error_line(refused, "model error (400): the model refuses 'fail'")
    no_variant = dockyard(env, "invoke", "echo", "--body", "x", "--target-variant", "Blue")
    one_error_line(no_variant, "Target variant Blue does not exist")

    # An update to a model that cannot start rolls back: exit 1 with the reason, v1 serves on.
    broken = make_image(tmp_path / "broken", "echo 'no model here' >&2\nexit 3\n", language="sh")
    assert dockyard(env, "models", "create", "broken", "--image", str(broken)).returncode == 0
    assert (
        dockyard(env, "endpoint-configs", "create", "broken", "--model", "broken").returncode == 0
    )
    rolled_back = dockyard(env, "endpoints", "update", "echo", "--config", "broken")
    one_error_line(rolled_back, "the update of endpoint echo failed and it still serves echo-v1")
    assert "exited with code 3" in rolled_back.stderr and "no model here" in rolled_back.stderr
    assert json.loads(dockyard(env, "invoke", "echo", "--body", "x").stdout)["version"] == "v1"

    # A good update switches the answers to v2.
    image_v2 = make_echo_image(tmp_path, "v2")
    assert dockyard(env, "models", "create", "echo-v2", "--image", str(image_v2)).returncode == 0
    assert (
        dockyard(env, "endpoint-configs", "create", "echo-v2", "--model", "echo-v2").returncode == 0
    )
    updated = dockyard(env, "endpoints", "update", "echo", "--config", "echo-v2")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "Updating" in updated.stdout and "InService" in updated.stdout
    assert json.loads(dockyard(env, "invoke", "echo", "--body", "x").stdout)["version"] == "v2"

    # Scaling: UpdateEndpointWeightsAndCapacities.
    scaled = dockyard(env, "endpoints", "scale", "echo", "--instance-count", "3")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    assert "AllTraffic: 3 of 3 instances serving" in scaled.stdout
    one_error_line(
        dockyard(env, "endpoints", "scale", "echo", "--variant", "Blue", "--weight", "2"),
        "The variant Blue does not exist on endpoint echo",
    )

    # An endpoint that cannot start ends Failed: exit 1 with the FailureReason.
    failed = dockyard(env, "endpoints", "create", "bad", "--config", "broken")
    one_error_line(failed, "endpoint bad is Failed: ")
    assert "exited with code 3" in failed.stderr
    not_ready = dockyard(env, "invoke", "bad", "--body", "x")
    one_error_line(not_ready, "Endpoint bad is Failed")

    deleted = dockyard(env, "endpoints", "delete", "echo", "--wait")
    assert deleted.returncode == 0 and "Endpoint echo deleted" in deleted.stdout, deleted.stderr
    gone = dockyard(env, "endpoints", "describe", "echo")
    one_error_line(gone, "Could not find endpoint")
    assert dockyard(env, "endpoints", "delete", "bad").returncode == 0
    missing = dockyard(env, "endpoints", "create", "other", "--config", "no-such-config")
    one_error_line(missing, "Could not find endpoint configuration")


def test_endpoint_logs_show_every_instance(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    image = make_echo_image(tmp_path, "v1")
    assert dockyard(env, "models", "create", "echo", "--image", str(image)).returncode == 0
    deployed = dockyard(
        env, "deploy", "--model", "echo", "--name", "logged", "--instance-count", "2"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    logs = dockyard(env, "endpoints", "logs", "logged")
    assert logs.returncode == 0, logs.stderr
    # One stream per instance, each line marked with the instance that wrote it.
    assert "[AllTraffic-1] serving on 8080" in logs.stdout
    assert "[AllTraffic-2] serving on 8080" in logs.stdout
    assert "[AllTraffic/dockyard] AllTraffic-2 passed the ping health check" in logs.stdout
    missing = dockyard(env, "endpoints", "logs", "no-such-endpoint")
    one_error_line(missing, "Could not find endpoint")


def test_redeploy_updates_the_endpoint_to_a_new_model(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    for version in ("v1", "v2"):
        image = make_echo_image(tmp_path, version)
        created = dockyard(env, "models", "create", f"echo-{version}", "--image", str(image))
        assert created.returncode == 0, created.stderr
    first = dockyard(env, "deploy", "--model", "echo-v1", "--name", "svc")
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(dockyard(env, "invoke", "svc", "--body", "x").stdout)["version"] == "v1"

    # The same name again: a new configuration named with a timestamp, and UpdateEndpoint.
    second = dockyard(env, "deploy", "--model", "echo-v2", "--name", "svc")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "updating to svc-" in second.stdout and "InService" in second.stdout
    described = json.loads(dockyard(env, "endpoints", "describe", "svc").stdout)
    assert described["EndpointConfigName"].startswith("svc-")
    assert json.loads(dockyard(env, "invoke", "svc", "--body", "x").stdout)["version"] == "v2"

    detached = dockyard(env, "deploy", "--model", "echo-v1", "--name", "later", "--no-wait")
    assert detached.returncode == 0 and "dockyard endpoints describe later" in detached.stdout

    both = dockyard(env, "deploy", "--model", "echo-v1", "--job", "j", "--name", "x")
    assert both.returncode == 2 and "one of them" in both.stderr
    env_with_model = dockyard(env, "deploy", "--model", "echo-v1", "--env", "A=1")
    assert env_with_model.returncode == 2 and "use them with --job" in env_with_model.stderr
    bad_type = dockyard(
        env, "deploy", "--model", "echo-v1", "--name", "y", "--instance-type", "ml.x9"
    )
    one_error_line(bad_type, "ml.x9")
    assert dockyard(env, "endpoints", "describe", "y").returncode == 1  # nothing was created


TRAIN_AND_SERVE = """
import json, os

# Training: run as a script by the training toolkit.
if __name__ == "__main__":
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"offset": 10}, f)

# Serving: the same file, imported by dockyard.serving as the inference module.
def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    return [x + model["offset"] for x in data]
"""

OTHER_INFERENCE = """
def model_fn(model_dir):
    return None

def predict_fn(data, model):
    return {"other": data}
"""


@pytest.fixture
def framework_server(clean_env: Path, shared_envs_dir: Path) -> Iterator[RunningServer]:
    from dockyard.settings import Settings

    settings = Settings(home=clean_env, port=free_port(), envs_dir=shared_envs_dir)
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_script_mode_job_deploys_with_its_script_as_inference_code(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    env = cli_env_for(framework_server)
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_AND_SERVE)
    # The hyperparameters as the SageMaker SDK writes them: JSON-encoded strings.
    trained = dockyard(
        env, "train", "--image", "dockyard/python:3.11", "--name", "script",
        "--hp", 'sagemaker_program="train.py"',
        "--hp", f"sagemaker_submit_directory={json.dumps(source.as_uri())}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr

    deployed = dockyard(env, "deploy", "--job", "script")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    container = json.loads(dockyard(env, "models", "describe", "script").stdout)["PrimaryContainer"]
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": source.as_uri(),
    }
    answer = dockyard(
        env, "invoke", "script", "--content-type", "application/json", "--body", "[1, 2]"
    )
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == [11, 12]

    # --entry-point and --source-dir put other inference code beside the same model data.
    other = tmp_path / "other"
    other.mkdir()
    (other / "serve_other.py").write_text(OTHER_INFERENCE)
    overridden = dockyard(
        env, "deploy", "--job", "script", "--name", "other", "--entry-point", "serve_other.py",
        "--source-dir", str(other), "--env", "EXTRA=1",
    )  # fmt: skip
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    container = json.loads(dockyard(env, "models", "describe", "other").stdout)["PrimaryContainer"]
    # A server named by DOCKYARD_ENDPOINT_URL may be elsewhere: the folder went up as an archive.
    submitted = container["Environment"].pop("SAGEMAKER_SUBMIT_DIRECTORY")
    assert re.fullmatch(
        rf"s3://sagemaker-us-east-1-000000000000/script-inference-{STAMP}/source/sourcedir.tar.gz",
        submitted,
    ), submitted
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "serve_other.py", "EXTRA": "1"}
    answer = dockyard(env, "invoke", "other", "--content-type", "application/json", "--body", "[3]")
    assert json.loads(answer.stdout) == {"other": [3]}


def test_invoke_reads_the_body_file_from_the_current_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "rows.csv").write_text("1\n")
    result = dockyard(env, "invoke", "nowhere", "--body", "@rows.csv", cwd=tmp_path)
    one_error_line(result, "Endpoint nowhere of account")
    unreadable = dockyard(env, "invoke", "nowhere", "--body", "@missing.csv", cwd=tmp_path)
    assert unreadable.returncode == 2 and "cannot read missing.csv" in unreadable.stderr
