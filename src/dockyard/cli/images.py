"""`dockyard images`: for the process runtime, what an image folder's RUN lines become (`check`)
and its Python layer built ahead of the first job (`build FOLDER`), by the server that will run
it; for the docker runtime, images in the Docker engine (`build -t`, `list`, `tag`, `push`, `pull`,
`rm`, in engine_images)."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dockyard.cli.engine_images import (
    build_with_engine,
    list_images,
    pull_image,
    push_image,
    remove_images,
    tag_image,
)
from dockyard.client import Client
from dockyard.client.uris import image_ref
from dockyard.settings import Settings

_POLL_SECONDS = 0.3
_STYLES = {"missing": "bold red", "met": "green", "not run": "dim"}


@click.group()
def images() -> None:
    """Images: folders the process runtime runs (check, build FOLDER) and images in the Docker
    engine the docker runtime runs (build FOLDER -t NAME, list, tag, push, pull, rm)."""


@images.command()
@click.argument("folder")
@click.option("--json", "as_json", is_flag=True, help="Print the CheckImage response.")
@click.pass_obj
def check(settings: Settings, folder: str, as_json: bool) -> None:
    """Show each RUN line of FOLDER's Dockerfile and what it becomes, without running a job:
    built into the image's Python layer, a prerequisite of this machine that is met, or one that
    is missing (with the command that installs it), or not run. Exits 1 when one is missing."""
    checked = Client(settings).dockyard("CheckImage", {"Image": image_ref(folder)})
    missing = any(line["Outcome"] == "missing" for line in checked["RunLines"])
    if as_json:
        click.echo(json.dumps(checked, indent=2))
    else:
        table = Table("#", "becomes", "RUN line", box=None)
        for line in checked["RunLines"]:
            style = _STYLES.get(line["Outcome"], "")
            table.add_row(
                str(line["Number"]), line["Outcome"], escape(_short(line["Line"])), style=style
            )
        console = Console()
        console.print(table)
        for line in checked["RunLines"]:
            if line["Outcome"] == "missing":
                # Whole, never wrapped: a command to copy.
                console.print(
                    f"RUN line {line['Number']} needs {escape(line['Detail'])}",
                    soft_wrap=True,
                    highlight=False,
                )
        layer = checked["PythonLayer"]
        if layer["Status"] == "NoLayer":
            console.print("Python layer: none (no RUN line runs pip)")
        else:
            state = "built" if layer["Status"] == "Built" else "not built yet"
            console.print(
                f"Python layer {layer['Key'][:12]}: {state} ({layer['Path']})", soft_wrap=True
            )
    if missing:
        raise SystemExit(1)


@images.command()
@click.argument("folder")
@click.option(
    "-t",
    "--tag",
    "name",
    metavar="NAME[:TAG]",
    help="Build a real image named NAME in the Docker engine (for the docker runtime).",
)
@click.option("--build-arg", multiple=True, metavar="KEY=VALUE", help="With -t: a build argument.")
@click.option(
    "--pull", is_flag=True, help="With -t: pull the base image even when the engine has it."
)
@click.pass_obj
def build(
    settings: Settings, folder: str, name: str | None, build_arg: tuple[str, ...], pull: bool
) -> None:
    """Without -t, for the process runtime: build FOLDER's Python layer now (its RUN lines' pip
    commands, in order) on the dockyard server, so the first job starts without pip; a layer
    built before is reused at once. With -t NAME, for the docker runtime: `docker build -t NAME
    FOLDER` by the Docker engine (DOCKER_HOST, or Docker's or podman's socket)."""
    if name is not None:
        build_with_engine(folder, name, build_arg, pull)
        return
    if build_arg or pull:
        raise click.UsageError("--build-arg and --pull go with -t (a build by the Docker engine)")
    client = Client(settings)
    started = client.dockyard("BuildImage", {"Image": image_ref(folder)})
    console = Console()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    next_line, described = 0, started
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("pip commands", total=started["PipCommands"] or None)
        while True:
            described = client.dockyard(
                "DescribeImageBuild", {"BuildId": started["BuildId"], "StartLine": next_line}
            )
            for line in described["LogLines"]:
                progress.console.print(escape(line), highlight=False)
                if line.startswith("RUN line "):
                    progress.update(task, completed=progress.tasks[0].completed + 1)
                    progress.update(task, description=escape(_short(line, 60)))
            next_line = described["NextLine"]
            if described["Status"] != "InProgress" and not described["LogLines"]:
                break
            time.sleep(_POLL_SECONDS)
    if described["Status"] == "Failed":
        raise click.ClickException(described.get("FailureReason", "the build failed"))
    seconds = described.get("EndTime", time.time()) - described["StartTime"]
    console.print(f"Image {folder}: Python layer ready ({seconds:.1f} s)")


def _short(line: str, limit: int = 100) -> str:
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


images.add_command(list_images)
images.add_command(tag_image)
images.add_command(push_image)
images.add_command(pull_image)
images.add_command(remove_images)
