"""`dockyard train`: CreateTrainingJob from flags, then follow the job until it ends."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from dockyard.cli.follow import follow_job, leave_running
from dockyard.cli.options import key_values, runtime_option, runtime_tags
from dockyard.cli.uploads import code_for_server, data_for_server
from dockyard.client import Client
from dockyard.client.uris import image_ref
from dockyard.contract.names import job_name_from_base
from dockyard.settings import Settings

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/dockyard"
EXIT_CODES = {"Completed": 0, "Failed": 1, "Stopped": 2}


def _channels(
    client: Client,
    job: str,
    inputs: tuple[str, ...],
    input_mode: str | None,
    distributions: tuple[str, ...],
) -> list[dict[str, object]]:
    default_distribution = "FullyReplicated"
    per_channel: dict[str, str] = {}
    for item in distributions:
        channel, sep, value = item.rpartition("=")
        if sep:
            per_channel[channel] = value
        else:
            default_distribution = value
    channels: list[dict[str, object]] = []
    for name, uri in key_values(inputs, "--input").items():
        entry: dict[str, object] = {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": data_for_server(client, uri, f"{job}/input/{name}", f"--input {name}"),
                    "S3DataDistributionType": per_channel.pop(name, default_distribution),
                }
            },
        }
        if input_mode:
            entry["InputMode"] = input_mode
        channels.append(entry)
    if per_channel:
        raise click.BadParameter(
            f"no --input channel named {', '.join(sorted(per_channel))}",
            param_hint="--distribution",
        )
    return channels


@click.command()
@click.option("--image", required=True, help="Image folder (with a Dockerfile) or image URI.")
@click.option("--name", help="Job name (default: image name + timestamp).")
@click.option("--hp", "hyperparameters", multiple=True, metavar="KEY=VALUE", help="Hyperparameter.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="CHANNEL=URI",
    help="Input channel: s3://, file:// or a local path.",
)
@click.option(
    "--input-mode",
    type=click.Choice(["File", "Pipe", "FastFile"]),
    help="Input mode of every channel.",
)
@click.option(
    "--distribution",
    "distributions",
    multiple=True,
    metavar="[CHANNEL=]TYPE",
    help="FullyReplicated or ShardedByS3Key, for all channels or one.",
)
@click.option("--output", help="S3 output path (default: s3://sagemaker-<region>-<account>/).")
@click.option("--instance-count", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--instance-type", default="local", show_default=True)
@click.option(
    "--max-run",
    default=86400,
    show_default=True,
    type=click.IntRange(min=1),
    help="MaxRuntimeInSeconds.",
)
@click.option(
    "--env", "environment", multiple=True, metavar="KEY=VALUE", help="Environment variable."
)
@click.option("--metric", "metrics", multiple=True, metavar="NAME=REGEX", help="Metric definition.")
@click.option("--checkpoint", help="S3 URI to mirror /opt/ml/checkpoints to.")
@click.option("--entrypoint", help="ContainerEntrypoint (space separated).")
@click.option("--entry-point", "program", help="Script mode: the training script, in --source-dir.")
@click.option(
    "--source-dir",
    help="Script mode: the folder (or sourcedir.tar.gz) holding the script and its "
    "requirements.txt; uploaded for a server named by DOCKYARD_ENDPOINT_URL.",
)
@runtime_option
@click.option("--detach", is_flag=True, help="Submit and return at once.")
@click.pass_obj
def train(
    settings: Settings,
    image: str,
    name: str | None,
    hyperparameters: tuple[str, ...],
    inputs: tuple[str, ...],
    input_mode: str | None,
    distributions: tuple[str, ...],
    output: str | None,
    instance_count: int,
    instance_type: str,
    max_run: int,
    environment: tuple[str, ...],
    metrics: tuple[str, ...],
    checkpoint: str | None,
    entrypoint: str | None,
    program: str | None,
    source_dir: str | None,
    runtime: str | None,
    detach: bool,
) -> None:
    """Run a training job and follow it until it ends (exit 1 if Failed, 2 if Stopped)."""
    if bool(program) != bool(source_dir):
        raise click.UsageError("script mode takes both --entry-point and --source-dir")
    console = Console()
    client = Client(settings)
    image_uri = image_ref(image)
    job = name or job_name_from_base(Path(image_uri.rstrip("/")).name.split(":")[0])
    hyperparameter_values = key_values(hyperparameters, "--hp")
    if program and source_dir:
        # JSON-encoded, as the SageMaker SDK's framework estimators send them.
        code = code_for_server(client, source_dir, f"{job}/source")
        hyperparameter_values["sagemaker_program"] = json.dumps(program)
        hyperparameter_values["sagemaker_submit_directory"] = json.dumps(code)
    algorithm: dict[str, object] = {
        "TrainingImage": image_uri,
        "TrainingInputMode": input_mode or "File",
        "MetricDefinitions": [
            {"Name": k, "Regex": v} for k, v in key_values(metrics, "--metric").items()
        ],
    }
    if entrypoint:
        algorithm["ContainerEntrypoint"] = entrypoint.split()
    request: dict[str, object] = {
        "TrainingJobName": job,
        "RoleArn": DEFAULT_ROLE,
        "AlgorithmSpecification": algorithm,
        "OutputDataConfig": {"S3OutputPath": output or f"s3://{client.default_bucket}/"},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_run},
        "HyperParameters": hyperparameter_values,
        "Environment": key_values(environment, "--env"),
        "Tags": runtime_tags(runtime),
    }
    channels = _channels(client, job, inputs, input_mode, distributions)
    if channels:
        request["InputDataConfig"] = channels
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint}
    client.sagemaker.create_training_job(**request)
    console.print(f"Training job [bold]{job}[/] created", highlight=False)
    if detach:
        return
    try:
        status = follow_job(client, job, console)
    except KeyboardInterrupt:
        follow = f"Follow it with `dockyard jobs logs {job} --follow`"
        leave_running(console, job, follow, f"dockyard jobs stop {job}")
    _report(client, job, status, console)
    raise SystemExit(EXIT_CODES.get(status, 1))


def _report(client: Client, job: str, status: str, console: Console) -> None:
    described = client.sagemaker.describe_training_job(TrainingJobName=job)
    if status == "Failed":
        console.print(
            f"[bold red]Failed[/]: {described.get('FailureReason', '(no reason)')}", highlight=False
        )
        return
    style = "green" if status == "Completed" else "yellow"
    console.print(f"[bold {style}]{status}[/] ({described['SecondaryStatus']})", highlight=False)
    for metric in described.get("FinalMetricDataList", []):
        console.print(f"  {metric['MetricName']} = {metric['Value']:g}", highlight=False)
    console.print(f"  model: {described['ModelArtifacts']['S3ModelArtifacts']}", highlight=False)
