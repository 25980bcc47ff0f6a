"""A model's container taken from a training job: its image, its model.tar.gz and, for script
mode, its code — so `deploy --job` and `transform --job` serve what the job trained."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
from botocore.exceptions import ClientError

from dockyard.cli.errors import CliError, error_message, is_not_found
from dockyard.cli.options import runtime_tags
from dockyard.cli.uploads import code_for_server
from dockyard.client import Client
from dockyard.client.uris import data_uri
from dockyard.contract.names import job_name_from_base
from dockyard.contract.tags import RUNTIME_TAG

# Statuses whose job uploaded a model.tar.gz (SageMaker uploads one when a job is stopped too).
_HAS_MODEL = {"Completed", "Stopped"}

# Other inference code than the job's own, for the commands that make a model of a job (--job).
entry_point_option = click.option(
    "--entry-point", help="With --job: the inference script (default: a script-mode job's own)."
)
source_dir_option = click.option(
    "--source-dir", help="With --job: the folder or sourcedir.tar.gz holding the inference code."
)


def _decoded(value: str | None) -> str | None:
    """Framework estimators JSON-encode hyperparameters (`"\\"train.py\\""`); plain text
    (as `dockyard train --hp` passes it) is kept as it is."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, str) else value


def script_environment(
    hyperparameters: Mapping[str, str], entry_point: str | None, source_dir: str | None
) -> dict[str, str]:
    """SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY for serving, as the SageMaker SDK sets
    them on a model made from a script-mode estimator: the training script is the inference
    code unless --entry-point / --source-dir say otherwise."""
    env: dict[str, str] = {}
    program = entry_point or _decoded(hyperparameters.get("sagemaker_program"))
    if program:
        env["SAGEMAKER_PROGRAM"] = program
    if source_dir:
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = data_uri(source_dir)
    else:
        submitted = _decoded(hyperparameters.get("sagemaker_submit_directory"))
        # /opt/ml/code means code baked into the image: nothing for the server to stage.
        if submitted and not submitted.startswith("/opt/ml/"):
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = submitted
    return env


def runtime_of_job(client: Client, job: str, runtime: str | None) -> list[dict[str, str]]:
    """The Tags of a model made from `job`: `runtime` when given, else the job's own
    dockyard:runtime tag, so a model serves in the runtime its job trained in."""
    if runtime:
        return runtime_tags(runtime)
    arn = client.sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobArn"]
    tags = client.sagemaker.list_tags(ResourceArn=arn)["Tags"]
    return [tag for tag in tags if tag["Key"] == RUNTIME_TAG]


def container_from_job(
    client: Client,
    job: str,
    environment: Mapping[str, str],
    entry_point: str | None = None,
    source_dir: str | None = None,
) -> dict[str, Any]:
    """The PrimaryContainer of a model serving what `job` trained."""
    try:
        described = client.sagemaker.describe_training_job(TrainingJobName=job)
    except ClientError as exc:
        if is_not_found(exc):
            raise CliError(
                f"training job {job} not found ({error_message(exc)}); "
                "`dockyard jobs list` shows the jobs there are"
            ) from None
        raise
    status = described["TrainingJobStatus"]
    if status not in _HAS_MODEL:
        hint = "wait until it ends" if status in ("InProgress", "Stopping") else "it has no model"
        raise CliError(f"training job {job} is {status}: {hint}")
    if source_dir:
        # Named by the time too: a model made earlier keeps the code it was made with.
        key_prefix = f"{job_name_from_base(job + '-inference')}/source"
        source_dir = code_for_server(client, source_dir, key_prefix)
    env = script_environment(described.get("HyperParameters") or {}, entry_point, source_dir)
    env.update(environment)
    container: dict[str, Any] = {
        "Image": described["AlgorithmSpecification"]["TrainingImage"],
        "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"],
    }
    if env:
        container["Environment"] = env
    return container
