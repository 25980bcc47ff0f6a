"""`dockyard jobs`: describe, list, logs, stop and prune training jobs."""

from __future__ import annotations

import time

import click
from rich.console import Console

from dockyard.cli.output import local_time, newest_first, print_listing, wire_json
from dockyard.client import Client
from dockyard.client.logs import TERMINAL, TRAINING_LOG_GROUP, LogTail
from dockyard.settings import Settings


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
    request = newest_first(status, name_contains, max_results)
    response = Client(settings).sagemaker.list_training_jobs(**request)
    rows = (
        (
            job["TrainingJobName"],
            job["TrainingJobStatus"],
            job.get("SecondaryStatus", ""),
            local_time(job["CreationTime"]),
        )
        for job in response["TrainingJobSummaries"]
    )
    print_listing(response, as_json, ("Name", "Status", "Secondary", "Created"), rows)


@jobs.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.pass_obj
def logs(settings: Settings, name: str, follow: bool) -> None:
    """Print a job's log (every host's stream)."""
    client = Client(settings)
    # A clear error if it's missing. Lines are marked with their host when the job has several,
    # on every poll alike (a poll may bring lines of one host only).
    described = client.sagemaker.describe_training_job(TrainingJobName=name)
    multi_host = described["ResourceConfig"]["InstanceCount"] > 1
    tail = LogTail(client, TRAINING_LOG_GROUP, name)
    console = Console()
    while True:
        done = (
            client.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
            in TERMINAL
        )
        lines = tail.poll()
        for _, host, line in sorted(lines, key=lambda item: item[0]):
            shown = f"[{host}] {line}" if multi_host else line
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


@jobs.command()
@click.option(
    "--older-than",
    "older_than_hours",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Only jobs that ended at least this many hours ago.",
)
@click.pass_obj
def prune(settings: Settings, older_than_hours: float) -> None:
    """Remove finished jobs' folders (their hosts' volumes) now, not after the retention
    period (DOCKYARD_JOB_FOLDER_RETENTION_HOURS). Artifacts, logs and records stay."""
    pruned = Client(settings).dockyard("PruneJobFolders", {"OlderThanHours": older_than_hours})
    for name in pruned["PrunedJobs"]:
        click.echo(name)
    count = len(pruned["PrunedJobs"])
    click.echo(
        f"Removed {count} job folder{'s' * (count != 1)}, {pruned['FreedBytes'] / 2**20:.1f} MiB"
    )
