"""`dockyard jobs`: describe, list, logs and stop training jobs."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from dockyard.client import Client
from dockyard.client.logs import TERMINAL, LogTail
from dockyard.settings import Settings


def wire_json(response: dict[str, Any]) -> str:
    """A boto3 response back in wire form: no ResponseMetadata, timestamps as epoch seconds."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}

    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.timestamp()
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(body, indent=2, default=default)


@click.group()
def jobs() -> None:
    """Training jobs."""


@jobs.command()
@click.argument("name")
@click.pass_obj
def describe(settings: Settings, name: str) -> None:
    """DescribeTrainingJob, as JSON."""
    click.echo(wire_json(Client(settings).sagemaker.describe_training_job(TrainingJobName=name)))


@jobs.command("list")
@click.option("--status", help="Only jobs with this TrainingJobStatus.")
@click.option("--name-contains", help="Only jobs whose name contains this.")
@click.option("--max", "max_results", default=100, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Print the ListTrainingJobs response.")
@click.pass_obj
def list_jobs(
    settings: Settings,
    status: str | None,
    name_contains: str | None,
    max_results: int,
    as_json: bool,
) -> None:
    """List training jobs, newest first."""
    kwargs: dict[str, Any] = {"MaxResults": max_results, "SortOrder": "Descending"}
    if status:
        kwargs["StatusEquals"] = status
    if name_contains:
        kwargs["NameContains"] = name_contains
    response = Client(settings).sagemaker.list_training_jobs(**kwargs)
    if as_json:
        click.echo(wire_json(response))
        return
    table = Table("Name", "Status", "Secondary", "Created", box=None)
    for job in response["TrainingJobSummaries"]:
        table.add_row(
            job["TrainingJobName"],
            job["TrainingJobStatus"],
            job.get("SecondaryStatus", ""),
            job["CreationTime"].astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        )
    Console().print(table)


@jobs.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.pass_obj
def logs(settings: Settings, name: str, follow: bool) -> None:
    """Print a job's log (every host's stream)."""
    client = Client(settings)
    client.sagemaker.describe_training_job(TrainingJobName=name)  # a clear error if it's missing
    tail = LogTail(client, name)
    console = Console()
    while True:
        done = (
            client.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
            in TERMINAL
        )
        lines = tail.poll()
        hosts = {host for _, host, _ in lines}
        for _, host, line in sorted(lines, key=lambda item: item[0]):
            shown = f"[{host}] {line}" if len(hosts) > 1 else line
            console.print(shown, markup=False, highlight=False, soft_wrap=True)
        if not follow or done:
            return
        time.sleep(0.3)


@jobs.command()
@click.argument("name")
@click.pass_obj
def stop(settings: Settings, name: str) -> None:
    """StopTrainingJob: SIGTERM, a grace period, then SIGKILL."""
    Client(settings).sagemaker.stop_training_job(TrainingJobName=name)
    click.echo(f"Stopping {name}")
