"""Local data and code a request names, made readable by the server: the background server of this
DOCKYARD_HOME runs here and reads them in place (an absolute file:// URI, no copy); a server named
by DOCKYARD_ENDPOINT_URL may be on another machine, so they travel through its S3 API first — it
must never read a path of the client's from its own disk by the same name."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.client.uris import local_path
from dockyard.storage.objects import S3Uri

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.client.objects import ApiObjects

SOURCE_ARCHIVE = "sourcedir.tar.gz"


def upload_path(objects: ApiObjects, path: Path, bucket: str, prefix: str) -> str:
    """Upload a file, or a folder with everything under it (relative paths kept), into `bucket`
    (made if missing); the URI of the folder's prefix, or of the file (`<prefix>/<file name>`)."""
    objects.create_bucket(bucket)
    prefix = prefix.strip("/")

    def key(relative: str) -> str:
        return "/".join(part for part in (prefix, relative) if part)

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            objects.put_file(bucket, key(file.relative_to(path).as_posix()), file)
        return f"s3://{bucket}/{prefix}"
    objects.put_file(bucket, key(path.name), path)
    return f"s3://{bucket}/{key(path.name)}"


def upload_code(objects: ApiObjects, folder: Path, extra: list[Path], target: S3Uri) -> str:
    """The source folder, plus `extra` files or folders at its top, as one sourcedir.tar.gz at
    `target`, as the SageMaker SDK uploads script-mode code; its URI."""
    with tempfile.TemporaryDirectory(prefix="dockyard-code-") as scratch:
        archive = Path(scratch) / SOURCE_ARCHIVE
        # Links are followed: the engine refuses archived links that point out of the folder.
        with tarfile.open(archive, "w:gz", dereference=True) as tar:
            for child in sorted(folder.iterdir()):
                tar.add(child, arcname=child.name, recursive=True)
            for path in extra:
                tar.add(path, arcname=path.name, recursive=True)
        objects.create_bucket(target.bucket)
        objects.put_file(target.bucket, target.key, archive, move=True)
    return str(target)


def server_data_uri(
    client: Client,
    uri: str,
    key_prefix: str,
    what: str,
    upload: Callable[[Path, str], str] | None = None,
) -> str:
    """A URI the server can read: s3:// as is; a local file or folder as an absolute file:// URI
    for the local server, else uploaded under `key_prefix` (by `upload(path, key_prefix)`, the
    SDK's session's own; by default into the client's default bucket). ValueError, naming
    `what`, when the local path does not exist."""
    path = _to_upload(client, uri, what)
    if isinstance(path, str):
        return path
    if upload is None:
        uploaded = upload_path(client.objects, path, client.default_bucket, key_prefix)
    else:
        uploaded = upload(path, key_prefix)
    # A folder's prefix ends with `/`, or `data/job` would also take in `data/job-2/...`.
    return uploaded + "/" if path.is_dir() else uploaded


def server_code_uri(client: Client, source_dir: str, key_prefix: str) -> str:
    """SAGEMAKER_SUBMIT_DIRECTORY for a source folder (or a sourcedir.tar.gz) of the client's:
    the folder in place for the local server, else a sourcedir.tar.gz uploaded under
    `key_prefix` in the client's default bucket (an archive given is uploaded as it is)."""
    path = _to_upload(client, source_dir, "source dir")
    if isinstance(path, str):
        return path
    if path.is_file():
        return upload_path(client.objects, path, client.default_bucket, key_prefix)
    target = S3Uri(client.default_bucket).join(key_prefix, SOURCE_ARCHIVE)
    return upload_code(client.objects, path.absolute(), [], target)


def _to_upload(client: Client, uri: str, what: str) -> str | Path:
    """The URI as the server gets it without an upload (s3:// as is; a local path as an absolute
    file:// URI for the local server), or the local path to upload for a server elsewhere.
    ValueError, naming `what`, when the local path does not exist."""
    path = local_path(uri)
    if path is None:
        return uri
    if not path.exists():
        raise ValueError(f"{what} {uri}: {path} does not exist")
    if client.server_reads_local_files:
        return "file://" + str(path.absolute())
    return path
