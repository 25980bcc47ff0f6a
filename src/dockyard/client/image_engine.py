"""Images in the Docker engine the docker runtime uses (Docker, or podman's compatible service):
build, list, tag, push, pull and remove, as the docker CLI would, with the engine's progress
streamed as events and its failures turned into one message that says what to do."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.auth import resolve_repository_name
from docker.utils import kwargs_from_env, parse_repository_tag
from requests.exceptions import RequestException

from dockyard.contract.errors import DockyardError

# Where an engine listens when DOCKER_HOST names none: Docker's socket, then podman's (rootful,
# then rootless); the first that exists is used.
_USUAL_SOCKETS = (
    "/var/run/docker.sock",
    "/run/podman/podman.sock",
    f"/run/user/{os.getuid()}/podman/podman.sock",
)
_START_ENGINE = (
    "start Docker, or podman's service (`podman system service --time=0 &`), "
    "or point DOCKER_HOST at the engine's socket"
)

# A registry's credentials for a push or pull: {"username": ..., "password": ...} (docker's
# auth config), or None to let the engine use what `docker login` / `podman login` stored.
Credentials = Callable[[str], dict[str, str] | None]


class ImageEngineError(DockyardError):
    """The engine could not be reached, or refused what was asked of it."""

    code = "ImageEngineError"


@dataclass(frozen=True)
class ImageRow:
    """One line of `images list`: an image under one of its names (or `<none>`)."""

    repository: str
    tag: str
    image_id: str
    size: int
    created: float


@dataclass(frozen=True)
class Progress:
    """One event of a build, push or pull: a line to show, or a layer's progress."""

    line: str = ""
    layer: str = ""
    status: str = ""
    current: int | None = None
    total: int | None = None


class ImageEngine:
    """A connection to the engine, and the image operations the CLI offers on it."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address

    @classmethod
    def connect(cls, base_url: str | None = None) -> ImageEngine:
        """The engine at `base_url`, else DOCKER_HOST's, else the first usual socket found."""
        if base_url is None and "base_url" not in kwargs_from_env():
            base_url = next((f"unix://{s}" for s in _USUAL_SOCKETS if Path(s).exists()), None)
            if base_url is None:
                raise ImageEngineError(f"no Docker engine is running here: {_START_ENGINE}")
        try:
            client = (
                docker.from_env(timeout=600)
                if base_url is None
                else docker.DockerClient(base_url=base_url, timeout=600)
            )
            client.ping()
        except (docker.errors.DockerException, RequestException) as exc:
            address = base_url or kwargs_from_env().get("base_url", "DOCKER_HOST")
            raise ImageEngineError(
                f"no Docker engine answers at {address}: {_START_ENGINE}"
            ) from exc
        return cls(client, base_url or str(client.api.base_url))

    def close(self) -> None:
        self.client.close()

    def build(
        self, folder: Path, name: str, *, pull: bool = False, build_args: dict[str, str]
    ) -> Iterator[Progress]:
        """`docker build -t name folder`, its output as it comes."""
        if not (folder / "Dockerfile").is_file():
            raise ImageEngineError(f"{folder} has no Dockerfile: give the folder that holds one")
        events = self._call(
            "build",
            name,
            lambda: self.client.api.build(
                path=str(folder),
                tag=name,
                # forcerm: podman keeps a failed step's container otherwise, and with it the
                # image below it (shared with any build that cached the same steps) in use.
                rm=True,
                forcerm=True,
                pull=pull,
                buildargs=build_args or None,
                decode=True,
            ),
        )
        yield from _progress(events, f"build of {name}")
        try:
            self.client.images.get(name)
        except docker.errors.ImageNotFound as exc:
            # podman reports some failed builds only by not making the image.
            raise ImageEngineError(f"the build of {name} made no image: see its output") from exc

    def images(self, name: str | None = None) -> list[ImageRow]:
        """The engine's images (under `name` only, when given), newest first."""
        images = self._call("list", name or "", lambda: self.client.api.images(name=name))
        rows = []
        for image in images:
            names = [n for n in image.get("RepoTags") or [] if n != "<none>:<none>"]
            # podman lists an image known only by digest as repo@sha256:...: no tag, as Docker.
            tagged = [n for n in names if "@" not in n] or [
                n.split("@", 1)[0] + ":<none>" for n in names[:1]
            ]
            for full in tagged or ["<none>:<none>"]:
                repository, tag = parse_repository_tag(full)
                rows.append(
                    ImageRow(
                        repository=repository,
                        tag=tag or "<none>",
                        image_id=str(image["Id"]).removeprefix("sha256:")[:12],
                        size=int(image.get("Size") or 0),
                        created=float(image.get("Created") or 0),
                    )
                )
        return sorted(rows, key=lambda row: (-row.created, row.repository, row.tag))

    def tag(self, source: str, target: str) -> None:
        """Give the image `source` the name `target` too."""
        repository, tag = parse_repository_tag(target)
        self._call("tag", source, lambda: self.client.api.tag(source, repository, tag or "latest"))

    def push(self, name: str, credentials: Credentials | None = None) -> Iterator[Progress]:
        """`docker push name`, layer by layer."""
        repository, tag = parse_repository_tag(name)
        registry = registry_of(repository)
        auth = credentials(registry) if credentials else None
        self._call("push", name, lambda: self.client.api.inspect_image(name))
        events = self._call(
            "push",
            name,
            lambda: self.client.api.push(
                repository, tag or "latest", stream=True, decode=True, auth_config=auth
            ),
        )
        yield from _progress(events, f"push of {name} to {registry}", registry)

    def pull(self, name: str, credentials: Credentials | None = None) -> Iterator[Progress]:
        """`docker pull name`, layer by layer."""
        repository, tag = parse_repository_tag(name)
        registry = registry_of(repository)
        auth = credentials(registry) if credentials else None
        events = self._call(
            "pull",
            name,
            lambda: self.client.api.pull(
                repository, tag or "latest", stream=True, decode=True, auth_config=auth
            ),
        )
        yield from _progress(events, f"pull of {name} from {registry}", registry)

    def remove(self, name: str, *, force: bool = False) -> list[str]:
        """`docker rmi name`: what the engine untagged and deleted."""
        removed = self._call("rm", name, lambda: self.client.api.remove_image(name, force=force))
        lines = []
        for entry in removed or []:
            lines += [f"{what}: {value}" for what, value in entry.items()]
        return lines

    def _call(self, action: str, name: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except docker.errors.NotFound as exc:
            if action == "pull":
                raise ImageEngineError(_api_message(action, name, exc)) from exc
            raise ImageEngineError(
                f"no image {name} in the engine: `dockyard images list` shows the images there"
            ) from exc
        except docker.errors.APIError as exc:
            raise ImageEngineError(_api_message(action, name, exc)) from exc
        except (docker.errors.DockerException, RequestException) as exc:
            raise ImageEngineError(
                f"the Docker engine at {self.address} stopped answering ({exc}): {_START_ENGINE}"
            ) from exc


def registry_of(repository: str) -> str:
    """The registry host a repository name points at (docker.io when it names none)."""
    return str(resolve_repository_name(repository)[0])


def password_credentials(username: str, password: str) -> Credentials:
    """One user's credentials, for whichever registry a push or pull goes to."""
    return lambda registry: {"username": username, "password": password}


def _progress(events: Any, what: str, registry: str = "") -> Iterator[Progress]:
    try:
        for event in events:
            yield from _events(event, what, registry)
    except (docker.errors.DockerException, RequestException) as exc:
        raise ImageEngineError(f"the {what} stopped: {exc}") from exc


def _events(event: dict[str, Any], what: str, registry: str) -> Iterator[Progress]:
    error = event.get("error") or (event.get("errorDetail") or {}).get("message")
    if error:
        raise ImageEngineError(_refusal(what, str(error).strip(), registry))
    if "stream" in event:
        for line in str(event["stream"]).splitlines():
            if line.strip():
                yield Progress(line=line)
    elif "status" in event:
        detail = event.get("progressDetail") or {}
        if event.get("id") and (detail or event["status"] in _LAYER_STATES):
            yield Progress(
                layer=str(event["id"]),
                status=str(event["status"]),
                current=detail.get("current"),
                total=detail.get("total"),
            )
        else:
            prefix = f"{event['id']}: " if event.get("id") else ""
            yield Progress(line=prefix + str(event["status"]))
    elif "aux" in event and "Digest" in (event["aux"] or {}):
        yield Progress(line=f"digest: {event['aux']['Digest']}")


# Statuses Docker gives a layer (with its id) that are states, not lines to print.
_LAYER_STATES = {
    "Preparing",
    "Waiting",
    "Pushing",
    "Pushed",
    "Layer already exists",
    "Pulling fs layer",
    "Downloading",
    "Verifying Checksum",
    "Download complete",
    "Extracting",
    "Pull complete",
    "Already exists",
}


def _api_message(action: str, name: str, exc: docker.errors.APIError) -> str:
    detail = str(exc.explanation or exc).strip()
    if exc.status_code == 409:
        return f"image {name} is in use ({detail}): remove its containers first, or use --force"
    if action in ("push", "pull"):
        repository, _ = parse_repository_tag(name)
        return _refusal(f"{action} of {name}", detail, registry_of(repository))
    return f"the {action} of {name} failed: {_first_line(detail)}"


def _refusal(what: str, detail: str, registry: str) -> str:
    """A registry's refusal, with the fix for the usual causes."""
    detail = _first_line(detail)
    lowered = detail.lower()
    if "http response to https client" in lowered:
        hint = (
            f"{registry} speaks plain HTTP: mark it insecure (podman: a [[registry]] entry with "
            "insecure = true in registries.conf; Docker: insecure-registries in daemon.json)"
        )
    elif any(word in lowered for word in ("unauthorized", "authentication required", "denied")):
        hint = (
            f"log in to {registry} first (`docker login {registry}`), "
            "or give --username and --password-stdin"
        )
    elif "connection refused" in lowered or "no such host" in lowered or "dial tcp" in lowered:
        hint = f"is the registry {registry} running and reachable from the engine?"
    elif "manifest unknown" in lowered or "not found" in lowered:
        hint = f"{registry} has no such image: check the name and tag"
    else:
        hint = f"check the name and that {registry} accepts it"
    return f"the {what} failed: {detail} — {hint}"


def _first_line(text: str) -> str:
    # podman sometimes wraps the engine's error in a JSON body.
    with contextlib.suppress(ValueError, AttributeError):
        text = str(json.loads(text).get("message", text))
    return " ".join(text.split())[:500]
