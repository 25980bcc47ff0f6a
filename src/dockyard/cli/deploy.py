"""`dockyard deploy`: a training job's model (or an existing model) served on an endpoint, made
in one step — model, endpoint configuration, endpoint — or switched to on an existing one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.console import Console

from dockyard.cli.endpoint_configs import (
    instance_count_option,
    instance_type_option,
    production_variant,
    startup_timeout_option,
)
from dockyard.cli.endpoints import check_served
from dockyard.cli.errors import CliError, is_not_found
from dockyard.cli.job_models import (
    container_from_job,
    entry_point_option,
    runtime_of_job,
    source_dir_option,
)
from dockyard.cli.options import key_values, runtime_option
from dockyard.cli.train import DEFAULT_ROLE
from dockyard.cli.watch import wait_for_endpoint
from dockyard.client import Client
from dockyard.contract.names import job_name_from_base
from dockyard.settings import Settings


def _exists(describe: Callable[..., Any], **name: str) -> bool:
    try:
        describe(**name)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def _endpoint_status(client: Client, name: str) -> str | None:
    try:
        return str(client.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def _resource_name(client: Client, name: str, new_model: bool) -> str:
    """`NAME` for the model and configuration the first time; `NAME-<timestamp>` when a
    re-deploy (or a leftover of an endpoint deleted earlier) has taken it, since models and
    configurations cannot be changed, only replaced."""
    taken = _exists(client.sagemaker.describe_endpoint_config, EndpointConfigName=name) or (
        new_model and _exists(client.sagemaker.describe_model, ModelName=name)
    )
    return job_name_from_base(name) if taken else name


@click.command()
@click.option("--job", help="Serve what this training job trained.")
@click.option("--model", help="Serve this existing model.")
@click.option("--name", help="Endpoint name (default: the job's or the model's name).")
@instance_count_option
@instance_type_option
@startup_timeout_option
@click.option(
    "--env", "environment", multiple=True, metavar="KEY=VALUE", help="Model environment variable."
)
@entry_point_option
@source_dir_option
@runtime_option
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for InService.")
@click.pass_obj
def deploy(
    settings: Settings,
    job: str | None,
    model: str | None,
    name: str | None,
    instance_count: int,
    instance_type: str,
    startup_timeout: int | None,
    environment: tuple[str, ...],
    entry_point: str | None,
    source_dir: str | None,
    runtime: str | None,
    wait: bool,
) -> None:
    """Serve a job's model (or a model) on an endpoint; re-deploying updates it (blue/green)."""
    if bool(job) == bool(model):
        raise click.UsageError("give --job JOB or --model MODEL (one of them)")
    if model and (environment or entry_point or source_dir or runtime):
        raise click.UsageError(
            "--env, --entry-point, --source-dir and --runtime make a new model: use them with --job"
        )
    endpoint = name or job or model or ""
    client = Client(settings)
    console = Console()
    current = _endpoint_status(client, endpoint)
    if current == "Failed":
        raise CliError(
            f"endpoint {endpoint} is Failed: delete it (`dockyard endpoints delete {endpoint} "
            "--wait`) and deploy again"
        )
    if current not in (None, "InService"):
        raise CliError(f"endpoint {endpoint} is {current}: deploy again once it is InService")
    # Everything is checked before anything is created, so a mistake leaves nothing behind.
    container = None
    tags: list[dict[str, str]] = []
    if job:
        container = container_from_job(
            client, job, key_values(environment, "--env"), entry_point, source_dir
        )
        tags = runtime_of_job(client, job, runtime)
    resource = _resource_name(client, endpoint, new_model=container is not None)
    model_name = model or resource
    if container is not None:
        client.sagemaker.create_model(
            ModelName=model_name,
            PrimaryContainer=container,
            ExecutionRoleArn=DEFAULT_ROLE,
            Tags=tags,
        )
        console.print(f"Model [bold]{model_name}[/] created from job {job}", highlight=False)
    variant = production_variant(model_name, instance_count, instance_type, startup_timeout)
    try:
        client.sagemaker.create_endpoint_config(
            EndpointConfigName=resource, ProductionVariants=[variant]
        )
    except ClientError:
        if container is not None:
            client.sagemaker.delete_model(ModelName=model_name)
        raise
    if current is None:
        client.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=resource)
        console.print(f"Endpoint [bold]{endpoint}[/] created, serving {resource}", highlight=False)
    else:
        client.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=resource)
        console.print(f"Endpoint [bold]{endpoint}[/] updating to {resource}", highlight=False)
    if not wait:
        console.print(f"Follow it with `dockyard endpoints describe {endpoint}`", highlight=False)
        return
    check_served(wait_for_endpoint(client, endpoint, console), console, resource)
    console.print(
        f"Invoke it: dockyard invoke {endpoint} --content-type text/csv --body @rows.csv\n"
        f"  (or InvokeEndpoint with boto3's sagemaker-runtime at {client.endpoint_url})",
        highlight=False,
        soft_wrap=True,
    )
