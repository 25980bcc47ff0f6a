"""`dockyard s3 ls|cp`: the object store, read directly until the server speaks S3."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from dockyard.cli.output import local_time
from dockyard.settings import Settings
from dockyard.storage.objects import ObjectStore, S3Uri
from dockyard.storage.stores import store_from_settings


@click.group()
def s3() -> None:
    """The object store behind s3:// URIs."""


@s3.command()
@click.argument("uri", required=False)
@click.option("--recursive", "-r", is_flag=True, help="List every object under the prefix.")
@click.pass_obj
def ls(settings: Settings, uri: str | None, recursive: bool) -> None:
    """List buckets, or the objects and folders under a prefix."""
    store = store_from_settings(settings)
    console = Console(highlight=False)
    if not uri:
        for bucket in store.list_buckets():
            console.print(f"s3://{bucket}/")
        return
    target = S3Uri.parse(uri)
    prefix = target.key
    folders: set[str] = set()
    for info in store.list_objects(target.bucket, prefix):
        rest = info.key[len(prefix) :]
        if not recursive and "/" in rest.lstrip("/"):
            folder = rest.lstrip("/").split("/", 1)[0]
            if folder not in folders:
                folders.add(folder)
                console.print(f"{'PRE':>30} {folder}/")
            continue
        stamp = local_time(info.last_modified)
        shown = info.key if recursive else rest.lstrip("/")
        console.print(f"{stamp} {info.size:>10} {shown}")


@s3.command()
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Copy a folder or a whole prefix.")
@click.pass_obj
def cp(settings: Settings, source: str, destination: str, recursive: bool) -> None:
    """Copy a file or folder to s3://, or an object or prefix to a local path."""
    store = store_from_settings(settings)
    if source.startswith("s3://") and not destination.startswith("s3://"):
        _download(store, S3Uri.parse(source), Path(destination), recursive)
    elif destination.startswith("s3://") and not source.startswith("s3://"):
        _upload(store, Path(source), S3Uri.parse(destination), recursive)
    else:
        raise click.UsageError("copy between a local path and an s3:// URI (one of each)")


def _upload(store: ObjectStore, source: Path, target: S3Uri, recursive: bool) -> None:
    if not source.exists():
        raise click.UsageError(f"{source} does not exist")
    store.create_bucket(target.bucket)
    if source.is_dir():
        if not recursive:
            raise click.UsageError(f"{source} is a folder: add --recursive")
        base = target.key.rstrip("/")
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = "/".join(filter(None, [base, path.relative_to(source).as_posix()]))
            store.put_file(target.bucket, key, path)
            click.echo(f"upload: {path} to s3://{target.bucket}/{key}")
        return
    key = target.key + source.name if target.key.endswith("/") or not target.key else target.key
    store.put_file(target.bucket, key, source)
    click.echo(f"upload: {source} to s3://{target.bucket}/{key}")


def _download(store: ObjectStore, source: S3Uri, dest: Path, recursive: bool) -> None:
    if recursive:
        for path in store.get_prefix(source.bucket, source.key, dest):
            click.echo(f"download: {path}")
        return
    target = dest / source.key.rsplit("/", 1)[-1] if dest.is_dir() else dest
    store.get_file(source.bucket, source.key, target)
    click.echo(f"download: s3://{source.bucket}/{source.key} to {target}")
