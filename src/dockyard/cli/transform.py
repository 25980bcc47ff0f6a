"""`dockyard transform` (a batch transform job, followed until it ends) and `dockyard transforms`
(list, describe, stop)."""

from __future__ import annotations

import time
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.console import Console

from dockyard.cli.endpoint_configs import instance_count_option, instance_type_option
from dockyard.cli.errors import CliError
from dockyard.cli.follow import leave_running
from dockyard.cli.job_models import (
    container_from_job,
    entry_point_option,
    runtime_of_job,
    source_dir_option,
)
from dockyard.cli.options import key_values, runtime_option
from dockyard.cli.output import local_time, newest_first, print_listing, wire_json
from dockyard.cli.train import DEFAULT_ROLE, EXIT_CODES
from dockyard.cli.uploads import data_for_server
from dockyard.client import Client
from dockyard.client.logs import TERMINAL, TRANSFORM_LOG_GROUP, LogTail
from dockyard.client.uris import data_uri, local_path
from dockyard.contract.names import job_name_from_base
from dockyard.settings import Settings
from dockyard.storage.objects import S3Uri

STATUSES = ["InProgress", "Completed", "Failed", "Stopping", "Stopped"]


def transform_request(name: str, model: str, **given: Any) -> dict[str, Any]:
    """A CreateTransformJob request from the command's options; unset options are left out so
    the server's precedence (request → /execution-parameters → defaults) applies."""
    data_input: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": given["input"]}}
    }
    data_output: dict[str, Any] = {"S3OutputPath": given["output"]}
    for target, key, option in (
        (data_input, "ContentType", "content_type"),
        (data_input, "SplitType", "split_type"),
        (data_output, "Accept", "accept"),
        (data_output, "AssembleWith", "assemble_with"),
    ):
        if given.get(option) is not None:
            target[key] = given[option]
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": data_input,
        "TransformOutput": data_output,
        "TransformResources": {
            "InstanceType": given["instance_type"],
            "InstanceCount": given["instance_count"],
        },
    }
    for key, option in (
        ("BatchStrategy", "strategy"),
        ("MaxConcurrentTransforms", "max_concurrent"),
        ("MaxPayloadInMB", "max_payload"),
    ):
        if given.get(option) is not None:
            request[key] = given[option]
    if given.get("environment"):
        request["Environment"] = given["environment"]
    processing = {
        key: given[option]
        for key, option in (
            ("InputFilter", "input_filter"),
            ("JoinSource", "join_source"),
            ("OutputFilter", "output_filter"),
        )
        if given.get(option) is not None
    }
    if processing:
        request["DataProcessing"] = processing
    return request


@click.command()
@click.option("--model", help="The model to run.")
@click.option("--job", help="Run the model this training job trained.")
@click.option(
    "--input", "input_uri", required=True, help="s3:// prefix, or a local file or folder."
)
@click.option(
    "--output",
    "output_uri",
    required=True,
    help="s3:// prefix, or a local folder (the local server writes the .out files there; "
    "from a server named by DOCKYARD_ENDPOINT_URL they are downloaded there).",
)
@click.option("--content-type", help="Content-Type of every request, e.g. text/csv.")
@click.option("--split-type", type=click.Choice(["None", "Line", "RecordIO", "TFRecord"]))
@click.option("--strategy", type=click.Choice(["SingleRecord", "MultiRecord"]))
@click.option("--accept", help="Accept of every request.")
@click.option("--assemble-with", type=click.Choice(["None", "Line"]))
@instance_count_option
@instance_type_option
@click.option(
    "--max-concurrent", type=click.IntRange(min=0), help="Requests in flight per instance."
)
@click.option("--max-payload", type=click.IntRange(0, 100), help="MaxPayloadInMB of a request.")
@click.option("--input-filter", help="JSONPath applied to each input record.")
@click.option("--join-source", type=click.Choice(["None", "Input"]))
@click.option("--output-filter", help="JSONPath applied to each output record.")
@click.option(
    "--env", "environment", multiple=True, metavar="KEY=VALUE", help="Environment variable."
)
@entry_point_option
@source_dir_option
@runtime_option
@click.option("--name", help="Transform job name (default: model or job name + timestamp).")
@click.option("--wait/--detach", default=True, show_default=True, help="Follow until it ends.")
@click.pass_obj
def transform(
    settings: Settings,
    model: str | None,
    job: str | None,
    input_uri: str,
    output_uri: str,
    entry_point: str | None,
    source_dir: str | None,
    runtime: str | None,
    name: str | None,
    wait: bool,
    environment: tuple[str, ...],
    **options: Any,
) -> None:
    """Run a batch transform job: every input object through the model, a .out per object
    (exit 1 if it fails, 2 if stopped)."""
    if bool(job) == bool(model):
        raise click.UsageError("give --model MODEL or --job JOB (one of them)")
    if model and (entry_point or source_dir or runtime):
        raise click.UsageError(
            "--entry-point, --source-dir and --runtime make a new model: use them with --job"
        )
    client = Client(settings)
    console = Console()
    transform_job = name or job_name_from_base(model or job or "transform")
    model_name = model or transform_job
    download_to = None if client.server_reads_local_files else local_path(output_uri)
    if download_to is not None and not wait:
        raise click.UsageError(
            f"the server at {client.endpoint_url} cannot write the local folder {output_uri}: "
            "give an s3:// --output, or leave out --detach so the output is downloaded there "
            "when the job ends"
        )
    if download_to is None:
        output = data_uri(output_uri)  # s3://, or a local folder the local server writes itself
    else:
        # From a server elsewhere the .out files come back through the S3 API, from here.
        client.objects.create_bucket(client.default_bucket)
        output = str(S3Uri(client.default_bucket).join(transform_job, "output/"))
    data_input = data_for_server(client, input_uri, f"data/{transform_job}", "--input")
    container = None
    if job:
        container = container_from_job(client, job, {}, entry_point, source_dir)
        client.sagemaker.create_model(
            ModelName=model_name,
            PrimaryContainer=container,
            ExecutionRoleArn=DEFAULT_ROLE,
            Tags=runtime_of_job(client, job, runtime),
        )
    request = transform_request(
        transform_job,
        model_name,
        input=data_input,
        output=output,
        environment=key_values(environment, "--env"),
        **options,
    )
    try:
        client.sagemaker.create_transform_job(**request)
    except ClientError:
        if container is not None:  # the model was made for this job only
            client.sagemaker.delete_model(ModelName=model_name)
        raise
    console.print(f"Transform job [bold]{transform_job}[/] created", highlight=False)
    if not wait:
        return
    try:
        status = follow_transform(client, transform_job, console)
    except KeyboardInterrupt:
        see = f"See it with `dockyard transforms describe {transform_job}`"
        leave_running(console, transform_job, see, f"dockyard transforms stop {transform_job}")
    described = client.sagemaker.describe_transform_job(TransformJobName=transform_job)
    if status == "Failed":
        raise CliError(f"transform job {transform_job} failed: {described.get('FailureReason')}")
    where = described["TransformOutput"]["S3OutputPath"]
    if download_to is not None and status == "Completed":
        stored = S3Uri.parse(where)
        client.objects.get_prefix(stored.bucket, stored.key, download_to)
        where = f"{download_to} (downloaded from {where})"
    console.print(f"[bold]{status}[/]: output in {where}", highlight=False, soft_wrap=True)
    raise SystemExit(EXIT_CODES.get(status, 1))


def follow_transform(client: Client, name: str, console: Console) -> str:
    """Print status changes and the instances' log lines until the job ends; its last status."""
    tail = LogTail(client, TRANSFORM_LOG_GROUP, name)
    shown = None
    while True:
        status = client.sagemaker.describe_transform_job(TransformJobName=name)[
            "TransformJobStatus"
        ]
        changed, shown = status != shown, status
        # A new status heads the lines that follow it, but the final one closes the output.
        if changed and status not in TERMINAL:
            console.print(f"[bold cyan]{status}[/]", highlight=False)
        for _, source, line in tail.poll():
            console.print(f"[{source}] {line}", markup=False, highlight=False, soft_wrap=True)
        if status in TERMINAL:
            return str(status)
        time.sleep(0.5)


@click.group()
def transforms() -> None:
    """Batch transform jobs."""


@transforms.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs with this status.")
@click.option("--name-contains", help="Only jobs whose name contains this.")
@click.option("--json", "as_json", is_flag=True, help="Print the ListTransformJobs response.")
@click.pass_obj
def list_transforms(
    settings: Settings, status: str | None, name_contains: str | None, as_json: bool
) -> None:
    """List transform jobs, newest first."""
    request = newest_first(status, name_contains)
    response = Client(settings).sagemaker.list_transform_jobs(**request)
    rows = (
        (
            summary["TransformJobName"],
            summary["TransformJobStatus"],
            local_time(summary["CreationTime"]),
        )
        for summary in response["TransformJobSummaries"]
    )
    print_listing(response, as_json, ("Name", "Status", "Created"), rows)


@transforms.command()
@click.argument("name")
@click.pass_obj
def describe(settings: Settings, name: str) -> None:
    """DescribeTransformJob, as JSON."""
    click.echo(wire_json(Client(settings).sagemaker.describe_transform_job(TransformJobName=name)))


@transforms.command()
@click.argument("name")
@click.pass_obj
def stop(settings: Settings, name: str) -> None:
    """StopTransformJob."""
    Client(settings).sagemaker.stop_transform_job(TransformJobName=name)
    click.echo(f"Stopping {name}")
