"""`dockyard endpoints`: create, list, describe, update, scale, delete, and their logs."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console

from dockyard.cli.errors import CliError
from dockyard.cli.output import local_time, newest_first, print_listing, wire_json
from dockyard.cli.watch import wait_for_endpoint, wait_until_deleted
from dockyard.client import Client
from dockyard.client.logs import LogTail, endpoint_log_group
from dockyard.settings import Settings

STATUSES = [
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
]


def check_served(described: dict[str, Any], console: Console, config: str | None = None) -> None:
    """After waiting: say what serves, or raise with the FailureReason. An update that failed
    rolls back to the old configuration and ends InService, so `config` (the one asked for) is
    compared too."""
    name, status = described["EndpointName"], described["EndpointStatus"]
    reason = described.get("FailureReason") or "no reason given"
    if status != "InService":
        raise CliError(f"endpoint {name} is {status}: {reason}")
    serving = described.get("EndpointConfigName")
    if config is not None and serving != config:
        raise CliError(
            f"the update of endpoint {name} failed and it still serves {serving}: {reason}"
        )
    for variant in described.get("ProductionVariants", []):
        console.print(
            f"  {variant['VariantName']}: {variant['CurrentInstanceCount']} of "
            f"{variant['DesiredInstanceCount']} instances serving",
            highlight=False,
        )


@click.group()
def endpoints() -> None:
    """Endpoints: models served over HTTP by one or more instances."""


@endpoints.command()
@click.argument("name")
@click.option("--config", required=True, help="The endpoint configuration to serve.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for InService.")
@click.pass_obj
def create(settings: Settings, name: str, config: str, wait: bool) -> None:
    """CreateEndpoint; waits until it is InService (exit 1 if it fails)."""
    client = Client(settings)
    console = Console()
    client.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    console.print(f"Endpoint [bold]{name}[/] created, serving {config}", highlight=False)
    if wait:
        check_served(wait_for_endpoint(client, name, console), console)


@endpoints.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only endpoints with this status.")
@click.option("--name-contains", help="Only endpoints whose name contains this.")
@click.option("--json", "as_json", is_flag=True, help="Print the ListEndpoints response.")
@click.pass_obj
def list_endpoints(
    settings: Settings, status: str | None, name_contains: str | None, as_json: bool
) -> None:
    """List endpoints, newest first."""
    response = Client(settings).sagemaker.list_endpoints(**newest_first(status, name_contains))
    rows = (
        (
            endpoint["EndpointName"],
            endpoint["EndpointStatus"],
            local_time(endpoint["CreationTime"]),
            local_time(endpoint["LastModifiedTime"]),
        )
        for endpoint in response["Endpoints"]
    )
    print_listing(response, as_json, ("Name", "Status", "Created", "Modified"), rows)


@endpoints.command()
@click.argument("name")
@click.pass_obj
def describe(settings: Settings, name: str) -> None:
    """DescribeEndpoint, as JSON."""
    click.echo(wire_json(Client(settings).sagemaker.describe_endpoint(EndpointName=name)))


@endpoints.command()
@click.argument("name")
@click.option("--config", required=True, help="The endpoint configuration to switch to.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the switch.")
@click.pass_obj
def update(settings: Settings, name: str, config: str, wait: bool) -> None:
    """UpdateEndpoint, blue/green: the new instances serve before the old ones stop."""
    client = Client(settings)
    console = Console()
    client.sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config)
    console.print(f"Endpoint [bold]{name}[/] updating to {config}", highlight=False)
    if wait:
        check_served(wait_for_endpoint(client, name, console), console, config)


@endpoints.command()
@click.argument("name")
@click.option("--variant", default="AllTraffic", show_default=True, help="The variant to change.")
@click.option("--instance-count", type=click.IntRange(min=1), help="Instances it should have.")
@click.option("--weight", type=click.FloatRange(min=0), help="Its share of the traffic.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the change.")
@click.pass_obj
def scale(
    settings: Settings,
    name: str,
    variant: str,
    instance_count: int | None,
    weight: float | None,
    wait: bool,
) -> None:
    """UpdateEndpointWeightsAndCapacities: new instances serve once they pass /ping; removed ones
    finish their requests first."""
    if instance_count is None and weight is None:
        raise click.UsageError("give --instance-count N, --weight W or both")
    desired: dict[str, Any] = {"VariantName": variant}
    if instance_count is not None:
        desired["DesiredInstanceCount"] = instance_count
    if weight is not None:
        desired["DesiredWeight"] = weight
    client = Client(settings)
    console = Console()
    client.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=name, DesiredWeightsAndCapacities=[desired]
    )
    console.print(f"Endpoint [bold]{name}[/] resizing {variant}", highlight=False)
    if wait:
        described = wait_for_endpoint(client, name, console)
        if described.get("FailureReason"):
            raise CliError(f"endpoint {name}: {described['FailureReason']}")
        check_served(described, console)


@endpoints.command()
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until every instance has stopped.")
@click.pass_obj
def delete(settings: Settings, name: str, wait: bool) -> None:
    """DeleteEndpoint (its configuration and models stay)."""
    client = Client(settings)
    console = Console()
    client.sagemaker.delete_endpoint(EndpointName=name)
    if not wait:
        console.print(f"Deleting {name}", highlight=False)
        return
    wait_until_deleted(client, name, console)
    console.print(f"Endpoint {name} deleted", highlight=False)


@endpoints.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.pass_obj
def logs(settings: Settings, name: str, follow: bool) -> None:
    """Print an endpoint's log: every instance's output, and the platform's lines."""
    client = Client(settings)
    client.sagemaker.describe_endpoint(EndpointName=name)  # a clear error if it's missing
    tail = LogTail(client, endpoint_log_group(name))
    console = Console()
    printed = 0
    try:
        while True:
            for _, source, line in tail.poll():
                console.print(f"[{source}] {line}", markup=False, highlight=False, soft_wrap=True)
                printed += 1
            if not follow:
                if not printed:
                    click.echo(f"endpoint {name} has no log lines yet", err=True)
                return
            time.sleep(0.5)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
