"""`dockyard endpoint-configs`: the variants an endpoint serves (one variant from the CLI)."""

from __future__ import annotations

import click

from dockyard.cli.output import local_time, newest_first, print_listing, wire_json
from dockyard.client import Client
from dockyard.settings import Settings


def production_variant(
    model: str, instance_count: int, instance_type: str, startup_timeout: int | None = None
) -> dict[str, object]:
    """One variant taking all the traffic, named as the SageMaker SDK names it."""
    variant: dict[str, object] = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InitialInstanceCount": instance_count,
        "InstanceType": instance_type,
        "InitialVariantWeight": 1.0,
    }
    if startup_timeout is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = startup_timeout
    return variant


instance_count_option = click.option(
    "--instance-count", default=1, show_default=True, type=click.IntRange(min=1)
)
instance_type_option = click.option("--instance-type", default="local", show_default=True)
startup_timeout_option = click.option(
    "--startup-timeout",
    type=click.IntRange(60, 3600),
    help="Seconds an instance has to answer /ping (default 240).",
)


@click.group("endpoint-configs")
def endpoint_configs() -> None:
    """Endpoint configurations: which model serves, on how many instances."""


@endpoint_configs.command()
@click.argument("name")
@click.option("--model", required=True, help="The model the variant serves.")
@instance_count_option
@instance_type_option
@startup_timeout_option
@click.pass_obj
def create(
    settings: Settings,
    name: str,
    model: str,
    instance_count: int,
    instance_type: str,
    startup_timeout: int | None,
) -> None:
    """CreateEndpointConfig with one variant, AllTraffic."""
    variant = production_variant(model, instance_count, instance_type, startup_timeout)
    Client(settings).sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[variant]
    )
    click.echo(f"Endpoint configuration {name} created ({model} on {instance_count} instances)")


@endpoint_configs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the ListEndpointConfigs response.")
@click.pass_obj
def list_configs(settings: Settings, as_json: bool) -> None:
    """List endpoint configurations, newest first."""
    response = Client(settings).sagemaker.list_endpoint_configs(**newest_first())
    rows = (
        (config["EndpointConfigName"], local_time(config["CreationTime"]))
        for config in response["EndpointConfigs"]
    )
    print_listing(response, as_json, ("Name", "Created"), rows)


@endpoint_configs.command()
@click.argument("name")
@click.pass_obj
def describe(settings: Settings, name: str) -> None:
    """DescribeEndpointConfig, as JSON."""
    described = Client(settings).sagemaker.describe_endpoint_config(EndpointConfigName=name)
    click.echo(wire_json(described))


@endpoint_configs.command()
@click.argument("name")
@click.pass_obj
def delete(settings: Settings, name: str) -> None:
    """DeleteEndpointConfig (an endpoint serving it keeps serving)."""
    Client(settings).sagemaker.delete_endpoint_config(EndpointConfigName=name)
    click.echo(f"Endpoint configuration {name} deleted")
