"""Following a training job from the terminal: status transitions, progress bars and log lines."""

from __future__ import annotations

import re
import time
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from dockyard.cli.client import Client

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"Completed", "Failed", "Stopped"}
_PROGRESS = re.compile(
    r"^(?P<verb>[^:]+): (?P<done>[\d.]+) (?P<du>B|KiB|MiB|GiB)"
    r" of (?P<total>[\d.]+) (?P<tu>B|KiB|MiB|GiB)$"
)
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


class LogTail:
    """Reads every host stream of a job forward from where it last stopped."""

    def __init__(self, client: Client, job: str) -> None:
        self.client = client
        self.job = job
        self.tokens: dict[str, str | None] = {}

    def poll(self) -> list[tuple[str, str]]:
        lines: list[tuple[str, str]] = []
        try:
            streams = self.client.logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job}/"
            )["logStreams"]
        except ClientError:
            return lines
        for stream in streams:
            name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                token = self.tokens.get(name)
                if token:
                    kwargs["nextToken"] = token
                response = self.client.logs.get_log_events(**kwargs)
                host = name.split("/", 1)[1].rsplit("-", 1)[0]
                lines.extend((host, event["message"]) for event in response["events"])
                self.tokens[name] = response["nextForwardToken"]
                if not response["events"]:
                    break
        return lines


def _bytes(value: str, unit: str) -> int:
    return int(float(value) * _UNITS[unit])


def follow_job(client: Client, job: str, console: Console, *, show_logs: bool = True) -> str:
    """Stream a job until it ends; return its final status."""
    tail = LogTail(client, job)
    seen_transitions = 0
    progress: Progress | None = None
    task: TaskID | None = None
    multi_host = False
    while True:
        described = client.sagemaker.describe_training_job(TrainingJobName=job)
        multi_host = described["ResourceConfig"]["InstanceCount"] > 1
        transitions = described.get("SecondaryStatusTransitions", [])
        for item in transitions[seen_transitions:]:
            if progress is not None:
                progress.stop()
                progress, task = None, None
            console.print(
                f"[bold cyan]{item['Status']}[/]: {item.get('StatusMessage', '')}", highlight=False
            )
        seen_transitions = len(transitions)
        if transitions:
            message = transitions[-1].get("StatusMessage", "")
            match = _PROGRESS.match(message or "")
            if match:
                total = _bytes(match["total"], match["tu"])
                if progress is None:
                    progress = Progress(
                        TextColumn("{task.description}"),
                        BarColumn(),
                        DownloadColumn(),
                        TransferSpeedColumn(),
                        console=console,
                        transient=True,
                    )
                    progress.start()
                    task = progress.add_task(match["verb"], total=total)
                assert task is not None
                progress.update(task, completed=_bytes(match["done"], match["du"]), total=total)
        if show_logs:
            for host, line in tail.poll():
                prefix = f"[{host}] " if multi_host else ""
                console.print(f"{prefix}{line}", markup=False, highlight=False)
        status = described["TrainingJobStatus"]
        if status in TERMINAL:
            if progress is not None:
                progress.stop()
            if show_logs:
                for host, line in tail.poll():
                    prefix = f"[{host}] " if multi_host else ""
                    console.print(f"{prefix}{line}", markup=False, highlight=False)
            return str(status)
        time.sleep(0.3)
