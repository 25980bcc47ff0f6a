"""Pushing a small image straight through a registry's HTTP API v2 (what `docker push` does,
without an engine): a layer blob, a config blob, then the manifest under a tag."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Pushed:
    digest: str
    layer_size: int
    manifest: bytes


def login(ecr: Any) -> tuple[str, tuple[str, str]]:
    """The registry URL and (user, password), from GetAuthorizationToken as a client reads it."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return data["proxyEndpoint"], (user, password)


def push(url: str, auth: tuple[str, str] | None, repository: str, tag: str, text: str) -> Pushed:
    """An image of one file holding `text` (different text: a different digest)."""
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:
        layer = _layer(text)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-05-01T12:00:00Z",
                "rootfs": {"type": "layers", "diff_ids": [_digest(gzip.decompress(layer))]},
                "config": {"Cmd": ["/hello"]},
            }
        ).encode()
        for blob in (layer, config):
            _upload(client, repository, blob)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": _digest(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        response = client.put(
            f"/v2/{repository}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        response.raise_for_status()
        return Pushed(response.headers["docker-content-digest"], len(layer), manifest)


def _layer(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = text.encode()
        member = tarfile.TarInfo("hello.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _upload(client: httpx.Client, repository: str, blob: bytes) -> None:
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    started.raise_for_status()
    location = started.headers["location"]
    separator = "&" if "?" in location else "?"
    done = client.put(
        f"{location}{separator}digest={_digest(blob)}",
        content=blob,
        headers={"Content-Type": "application/octet-stream"},
    )
    done.raise_for_status()
