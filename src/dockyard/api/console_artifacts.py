"""The console's artifact downloads: `GET /console/artifacts?uri=s3://bucket/key` sends an object
of the server's store as an attachment (never rendered by the browser), under a safe name."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from dockyard.api.console_sign_in import message_page
from dockyard.api.s3.file_response import FileSpanResponse
from dockyard.contract.errors import NoSuchBucket, NoSuchKey, ValidationError
from dockyard.storage.objects import ObjectStore, S3Uri

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class Artifacts:
    """Objects of `store` as downloads. `downloads`: where an object of a remote store is
    fetched to before it is sent (default: the system's temporary folder)."""

    def __init__(self, store: ObjectStore, downloads: Path | None = None) -> None:
        self.store = store
        self.downloads = downloads

    async def download(self, uri: str | None) -> Response:
        """The object at `uri`; 400 for what is not an object's s3:// URI, 404 for a missing
        one (an HTML page saying which)."""
        if not uri:
            return _refusal(400, "No artifact named", "Give the object as ?uri=s3://bucket/key.")
        try:
            where = S3Uri.parse(uri)
        except ValidationError as exc:
            return _refusal(400, "Not an artifact address", exc.message)
        if not where.key or where.key.endswith("/"):
            return _refusal(400, "Not an artifact address", f"{uri} names a folder, not an object.")
        try:
            source, size = await run_in_threadpool(self._open, where)
        except (NoSuchKey, NoSuchBucket):
            return _refusal(404, "No such artifact", f"The object store has no object {uri}.")
        headers = {
            "Content-Disposition": content_disposition(where.key.rsplit("/", 1)[-1]),
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        return FileSpanResponse(source, 0, size, 200, headers)

    def _open(self, where: S3Uri) -> tuple[BinaryIO, int]:
        opened = self.store.open_object(where.bucket, where.key)
        if opened is not None:
            return opened[0], opened[1].size
        # A remote store: fetched whole first, then sent from the local copy (whose name is
        # gone at once; the open file lives until sent).
        info = self.store.head(where.bucket, where.key)
        with tempfile.TemporaryDirectory(dir=self.downloads) as folder:
            copy = Path(folder) / "object"
            self.store.get_file(where.bucket, where.key, copy)
            source = copy.open("rb")
        return source, info.size


def content_disposition(name: str) -> str:
    """An attachment under `name`: a plain ASCII fallback (`filename`) and the name itself,
    percent-encoded (`filename*`, RFC 6266)."""
    plain = _SAFE_FILENAME.sub("_", name).strip(".") or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _refusal(status: int, title: str, message: str) -> Response:
    return HTMLResponse(message_page(title, message), status)
