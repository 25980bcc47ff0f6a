"""Pulling an image into the engine, including from a registry on this machine's loopback over
plain HTTP: Docker itself treats 127.0.0.0/8 as such, podman's Docker-compatible API has no way
to say it, so a podman engine is asked through its own API with TLS verification off."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any

import docker
import docker.errors
from docker.auth import resolve_repository_name

from dockyard.contract.errors import ImageError

# podman's own API version, in the path of its endpoints (any 4.x accepts it).
LIBPOD = "/v4.0.0/libpod"


def on_loopback(ref: str) -> bool:
    """True when `ref`'s registry (as the docker SDK reads it from the name) is this machine's."""
    host = resolve_repository_name(ref)[0]
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def is_podman(client: docker.DockerClient) -> bool:
    components = client.version().get("Components") or []
    return any("podman" in str(c.get("Name", "")).lower() for c in components)


def pull(
    client: docker.DockerClient, ref: str, auth: dict[str, str] | None, *, podman: bool
) -> Any:
    """The image `ref`, pulled now into the engine (`podman`: whether it is podman); ImageError
    saying what to do when it cannot be."""
    try:
        if podman and on_loopback(ref):
            return client.images.get(_podman_pull(client, ref, auth))
        return client.images.pull(ref, auth_config=auth)
    except docker.errors.APIError as exc:
        raise ImageError(
            f"image {ref} could not be pulled ({exc.explanation or exc}): push it to a "
            "registry this machine reaches, or build it here"
        ) from exc


def _podman_pull(client: docker.DockerClient, ref: str, auth: dict[str, str] | None) -> str:
    api = client.api
    headers = {}
    if auth:
        headers["X-Registry-Auth"] = base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
    response = api.post(
        f"{api.base_url}{LIBPOD}/images/pull",
        params={"reference": ref, "tlsVerify": "false", "quiet": "true"},
        headers=headers,
        stream=True,
        timeout=None,
    )
    image_id = None
    errors = []
    for line in response.iter_lines():
        if not line:
            continue
        event = json.loads(line)
        if event.get("error"):
            errors.append(str(event["error"]).strip())
        image_id = event.get("id") or image_id
    if response.status_code >= 400 or errors or image_id is None:
        detail = "; ".join(errors) or f"HTTP {response.status_code}"
        raise ImageError(
            f"image {ref} could not be pulled ({detail}): push it to the registry first "
            "(`aws ecr get-login-password | podman login ...`, then `podman push`)"
        )
    return str(image_id)
