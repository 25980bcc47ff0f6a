"""`dockyard s3 ls|cp|mb`: the object store behind s3:// URIs, through the server's S3 API."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from dockyard.cli.output import local_time
from dockyard.client import Client
from dockyard.client.objects import ApiObjects
from dockyard.settings import Settings
from dockyard.storage.objects import S3Uri


@click.group()
def s3() -> None:
    """The object store behind s3:// URIs."""


@s3.command()
@click.argument("uri", required=False)
@click.option("--recursive", "-r", is_flag=True, help="List every object under the prefix.")
@click.pass_obj
def ls(settings: Settings, uri: str | None, recursive: bool) -> None:
    """List buckets, or the objects and folders under a prefix."""
    objects = Client(settings).objects
    console = Console(highlight=False)
    if not uri:
        for bucket in objects.list_buckets():
            console.print(f"s3://{bucket}/")
        return
    target = S3Uri.parse(uri)
    prefix = target.key
    if recursive:
        for info in objects.list_objects(target.bucket, prefix):
            console.print(f"{local_time(info.last_modified)} {info.size:>10} {info.key}")
        return
    # As `aws s3 ls`: a prefix that is not a folder's name lists what starts with it.
    folders, found = objects.list_folders(target.bucket, prefix)
    base = prefix[: prefix.rfind("/") + 1]
    for folder in folders:
        console.print(f"{'PRE':>30} {folder[len(base) :]}")
    for info in found:
        console.print(f"{local_time(info.last_modified)} {info.size:>10} {info.key[len(base) :]}")


@s3.command()
@click.argument("uri")
@click.pass_obj
def mb(settings: Settings, uri: str) -> None:
    """Make a bucket (as `aws s3 mb`); one that is there already is no error."""
    target = S3Uri.parse(uri)
    if target.key:
        raise click.UsageError(f"{uri} names an object; give only the bucket, s3://BUCKET")
    Client(settings).objects.create_bucket(target.bucket)
    click.echo(f"make_bucket: {target.bucket}")


@s3.command()
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Copy a folder or a whole prefix.")
@click.pass_obj
def cp(settings: Settings, source: str, destination: str, recursive: bool) -> None:
    """Copy a file or folder to s3://, or an object or prefix to a local path."""
    objects = Client(settings).objects
    if source.startswith("s3://") and not destination.startswith("s3://"):
        _download(objects, S3Uri.parse(source), destination, recursive)
    elif destination.startswith("s3://") and not source.startswith("s3://"):
        _upload(objects, Path(source), S3Uri.parse(destination), recursive)
    else:
        raise click.UsageError("copy between a local path and an s3:// URI (one of each)")


def _upload(objects: ApiObjects, source: Path, target: S3Uri, recursive: bool) -> None:
    if not source.exists():
        raise click.UsageError(f"{source} does not exist")
    objects.create_bucket(target.bucket)
    if source.is_dir():
        if not recursive:
            raise click.UsageError(f"{source} is a folder: add --recursive")
        base = target.key.rstrip("/")
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = "/".join(filter(None, [base, path.relative_to(source).as_posix()]))
            objects.put_file(target.bucket, key, path)
            click.echo(f"upload: {path} to s3://{target.bucket}/{key}")
        return
    key = target.key + source.name if target.key.endswith("/") or not target.key else target.key
    objects.put_file(target.bucket, key, source)
    click.echo(f"upload: {source} to s3://{target.bucket}/{key}")


def _download(objects: ApiObjects, source: S3Uri, destination: str, recursive: bool) -> None:
    dest = Path(destination)
    if recursive:
        for path in objects.get_prefix(source.bucket, source.key, dest):
            click.echo(f"download: {path}")
        return
    # As `aws s3 cp`: a destination ending with `/` is a folder, made if missing.
    into_folder = dest.is_dir() or destination.endswith("/")
    target = dest / source.key.rsplit("/", 1)[-1] if into_folder else dest
    objects.get_file(source.bucket, source.key, target)
    click.echo(f"download: s3://{source.bucket}/{source.key} to {target}")
