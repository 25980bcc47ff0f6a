"""`dockyard images build -t / list / tag / push / pull / rm`: images in the Docker engine the
docker runtime uses (DOCKER_HOST, else Docker's or podman's usual socket), as the docker CLI
would, with the engine's progress shown as it comes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dockyard.cli.errors import CliError

if TYPE_CHECKING:
    from dockyard.client.image_engine import Credentials, ImageEngine
    from dockyard.client.image_engine import Progress as EngineProgress


def engine() -> ImageEngine:
    # Imported when an engine command runs: the docker SDK takes ~0.2 s to import, which every
    # other dockyard command would otherwise pay.
    from dockyard.client.image_engine import ImageEngine

    return ImageEngine.connect()


def build_with_engine(folder: str, name: str, build_args: tuple[str, ...], pull: bool) -> None:
    """`images build DIR -t NAME`: a real build by the engine."""
    arguments = {}
    for pair in build_args:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--build-arg takes KEY=VALUE, got {pair!r}")
        arguments[key] = value
    connected = engine()
    try:
        steps = connected.build(Path(folder), name, pull=pull, build_args=arguments)
        _show(steps, f"building {name}")
    finally:
        connected.close()
    Console().print(f"Built {escape(name)}", highlight=False)


@click.command("list")
@click.argument("name", required=False)
def list_images(name: str | None) -> None:
    """List the engine's images (only NAME's, when given): repository, tag, id, size, created."""
    connected = engine()
    try:
        rows = connected.images(name)
    finally:
        connected.close()
    table = Table("REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CREATED", box=None)
    for row in rows:
        table.add_row(
            escape(row.repository),
            escape(row.tag),
            row.image_id,
            _size(row.size),
            _ago(row.created),
        )
    console = Console()
    if not console.is_terminal:
        # Piped: a wide table on one line per image, as `docker images` prints it.
        console.width = max(console.width, 160)
    console.print(table)


@click.command("tag")
@click.argument("source")
@click.argument("target")
def tag_image(source: str, target: str) -> None:
    """Give the image SOURCE the name TARGET too (REGISTRY/REPOSITORY[:TAG] to push it there)."""
    connected = engine()
    try:
        connected.tag(source, target)
    finally:
        connected.close()
    click.echo(f"Tagged {source} as {target}")


@click.command("push")
@click.argument("name")
@click.option("--username", help="User name for the registry (with --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the registry's password from stdin.")
def push_image(name: str, username: str | None, password_stdin: bool) -> None:
    """Push the image NAME to the registry its name starts with, layer by layer. Credentials:
    --username with --password-stdin, else what `docker login` (or `podman login`) stored."""
    credentials = _credentials(username, password_stdin)
    connected = engine()
    try:
        _show(connected.push(name, credentials), f"pushing {name}")
    finally:
        connected.close()
    click.echo(f"Pushed {name}")


@click.command("pull")
@click.argument("name")
@click.option("--username", help="User name for the registry (with --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the registry's password from stdin.")
def pull_image(name: str, username: str | None, password_stdin: bool) -> None:
    """Pull the image NAME from its registry into the engine, layer by layer."""
    credentials = _credentials(username, password_stdin)
    connected = engine()
    try:
        _show(connected.pull(name, credentials), f"pulling {name}")
    finally:
        connected.close()
    click.echo(f"Pulled {name}")


@click.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove even an image containers use.")
def remove_images(names: tuple[str, ...], force: bool) -> None:
    """Remove the images NAMES from the engine (a name another tag shares is only untagged)."""
    connected = engine()
    try:
        for name in names:
            for line in connected.remove(name, force=force):
                click.echo(line)
    finally:
        connected.close()


def _credentials(username: str | None, password_stdin: bool) -> Credentials | None:
    """What a push or pull logs in with. None lets the engine use `docker login`'s stored
    credentials; a lookup by registry (e.g. ECR's GetAuthorizationToken through the dockyard
    server) can be returned here for the registries it knows."""
    from dockyard.client.image_engine import password_credentials

    if password_stdin != (username is not None):
        raise CliError("--username and --password-stdin go together: give both, or neither")
    if username is None:
        return None
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin read no password: pipe it in, e.g. `... | dockyard ...`")
    return password_credentials(username, password)


def _show(events: Iterator[EngineProgress], description: str) -> None:
    """Lines as they come; layers as bars (with bytes when the engine says how many)."""
    console = Console()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    layers: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=True) as progress:
        overall = progress.add_task(escape(description), total=None)
        for event in events:
            if event.line:
                progress.console.print(escape(event.line), highlight=False, soft_wrap=True)
                if event.line.upper().startswith("STEP "):
                    progress.update(overall, description=escape(_short(event.line)))
                continue
            if event.layer not in layers:
                layers[event.layer] = progress.add_task("", total=None)
            task = layers[event.layer]
            progress.update(
                task,
                description=escape(f"{event.layer[:12]} {event.status}"),
                total=event.total,
                completed=event.current or 0,
            )
            if event.status in (
                "Pushed",
                "Pull complete",
                "Layer already exists",
                "Already exists",
            ):
                progress.update(task, visible=False)
                progress.console.print(f"{event.layer[:12]}: {event.status}", highlight=False)


_LAYER_DONE = {"Pushed", "Pull complete", "Layer already exists", "Already exists"}


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"


def _ago(created: float) -> str:
    if created <= 0:
        return "unknown"
    seconds = datetime.now(UTC).timestamp() - created
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def _short(line: str, limit: int = 60) -> str:
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
