"""The `dockyard` command: parses settings once and turns errors into one clear line."""

from __future__ import annotations

import sys

import click
from botocore.exceptions import BotoCoreError, ClientError

from dockyard import __version__
from dockyard.cli.console import console
from dockyard.cli.credentials import credentials
from dockyard.cli.deploy import deploy
from dockyard.cli.endpoint_configs import endpoint_configs
from dockyard.cli.endpoints import endpoints
from dockyard.cli.images import images
from dockyard.cli.invoke import invoke
from dockyard.cli.jobs import jobs
from dockyard.cli.models import models
from dockyard.cli.s3 import s3
from dockyard.cli.train import train
from dockyard.cli.transform import transform, transforms
from dockyard.client import local_server as server_control
from dockyard.contract.errors import DockyardError
from dockyard.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dockyard")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run SageMaker-style training jobs, endpoints and batch transforms on this machine."""
    ctx.obj = Settings()


@cli.group(invoke_without_command=True)
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default 8411).")
@click.pass_context
def server(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the dockyard server in the foreground, or manage the background one."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings: Settings = ctx.obj.model_copy(update=overrides)
    ctx.obj = settings
    if ctx.invoked_subcommand is None:
        from dockyard.api.server import serve

        serve(settings)


@server.command()
@click.pass_obj
def start(settings: Settings) -> None:
    """Start the background server (or report the one running)."""
    info = server_control.start_background(settings)
    click.echo(f"dockyard server running at {info.url} (pid {info.pid})")


@server.command("stop")
@click.pass_obj
def stop_server(settings: Settings) -> None:
    """Stop the background server; running jobs end Failed with a reason saying so."""
    stopped = server_control.stop_background(settings)
    click.echo("dockyard server stopped" if stopped else "no dockyard server was running")


@server.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """Say whether a server is running for this DOCKYARD_HOME."""
    info = server_control.running_server(settings)
    if info is None:
        click.echo("no dockyard server is running")
        raise SystemExit(1)
    click.echo(f"dockyard server running at {info.url} (pid {info.pid})")


cli.add_command(train)
cli.add_command(jobs)
cli.add_command(models)
cli.add_command(endpoint_configs)
cli.add_command(endpoints)
cli.add_command(deploy)
cli.add_command(invoke)
cli.add_command(transform)
cli.add_command(transforms)
cli.add_command(s3)
cli.add_command(credentials)
cli.add_command(images)
cli.add_command(console)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        click.echo(f"error: {error.get('Message') or exc} ({error.get('Code', 'Error')})", err=True)
        sys.exit(1)
    except (DockyardError, BotoCoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
