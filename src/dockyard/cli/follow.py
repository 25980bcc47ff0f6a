"""Following a training job from the terminal: status transitions, progress bars and log lines;
and leaving any job to run on when Ctrl-C stops the following."""

from __future__ import annotations

import re
import time
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from dockyard.client import Client
from dockyard.client.logs import TERMINAL, TRAINING_LOG_GROUP, LogTail

_PROGRESS = re.compile(
    r"^(?P<verb>[^:]+): (?P<done>[\d.]+) (?P<du>B|KiB|MiB|GiB)"
    r" of (?P<total>[\d.]+) (?P<tu>B|KiB|MiB|GiB)$"
)
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def _bytes(value: str, unit: str) -> int:
    return int(float(value) * _UNITS[unit])


def follow_job(client: Client, job: str, console: Console, *, show_logs: bool = True) -> str:
    """Stream a job until it ends, status transitions and log lines in time order; return its
    final status."""
    tail = LogTail(client, TRAINING_LOG_GROUP, job)
    seen_transitions = 0
    bar = _ProgressBar(console)
    while True:
        described = client.sagemaker.describe_training_job(TrainingJobName=job)
        multi_host = described["ResourceConfig"]["InstanceCount"] > 1
        status = described["TrainingJobStatus"]
        transitions = described.get("SecondaryStatusTransitions", [])
        events: list[tuple[float, int, str, str]] = [
            (item["StartTime"].timestamp(), 0, item["Status"], item.get("StatusMessage", ""))
            for item in transitions[seen_transitions:]
        ]
        seen_transitions = len(transitions)
        if show_logs:
            events.extend((at, 1, host, line) for at, host, line in tail.poll())
        for _at, kind, first, second in sorted(events, key=lambda e: (e[0], e[1])):
            bar.stop()
            if kind == 0:
                console.print(f"[bold cyan]{first}[/]: {second}", highlight=False)
            else:
                prefix = f"[{first}] " if multi_host else ""
                console.print(f"{prefix}{second}", markup=False, highlight=False, soft_wrap=True)
        if status in TERMINAL:
            bar.stop()
            return str(status)
        if transitions:
            bar.show(transitions[-1].get("StatusMessage") or "")
        time.sleep(0.3)


def leave_running(console: Console, job: str, see_it: str, stop_it: str) -> NoReturn:
    """After Ctrl-C: the job keeps running on the server; say how to find and stop it, and exit
    130 as a shell does for SIGINT."""
    console.print(
        f"\nDetached; {job} keeps running. {see_it}, stop it with `{stop_it}`.", highlight=False
    )
    raise SystemExit(130) from None


class _ProgressBar:
    """A transfer bar drawn from the `<verb>: <done> of <total>` status messages."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def show(self, message: str) -> None:
        match = _PROGRESS.match(message)
        if match is None:
            self.stop()
            return
        total = _bytes(match["total"], match["tu"])
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(match["verb"], total=total)
        assert self.task is not None
        self.progress.update(self.task, completed=_bytes(match["done"], match["du"]), total=total)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress, self.task = None, None
