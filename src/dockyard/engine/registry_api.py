"""The registry's HTTP API v2, as the ECR API needs it: tags, manifests (digest, media type,
size, the config's media type and creation time), deleting and re-tagging manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from dockyard.contract.errors import RegistryUnavailable
from dockyard.engine.registry import RegistryAccess

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
TIMEOUT = 30.0


@dataclass(frozen=True)
class Manifest:
    """One manifest as the registry holds it (its exact bytes: the digest is theirs)."""

    digest: str
    media_type: str
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        return parsed if isinstance(parsed, dict) else {}

    @property
    def size(self) -> int:
        """What ECR reports as imageSizeInBytes: the compressed layers (an index: the
        manifests it lists)."""
        document = self.document
        parts = document.get("manifests" if self.media_type in INDEX_TYPES else "layers") or []
        return sum(int(part.get("size", 0)) for part in parts if isinstance(part, dict))

    @property
    def config(self) -> dict[str, Any] | None:
        config = self.document.get("config")
        return config if isinstance(config, dict) else None


class RegistryApi:
    """Calls to one registry, signed in as its access says."""

    def __init__(self, access: RegistryAccess) -> None:
        self.access = access
        auth = (access.username, access.password) if access.password is not None else None
        self._client = httpx.Client(base_url=access.url, auth=auth, timeout=TIMEOUT)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository` (none when nothing was ever pushed to it)."""
        tags: list[str] = []
        url: str | None = f"/v2/{_path(repository)}/tags/list?n=1000"
        while url is not None:
            response = self._call("GET", url)
            if response.status_code == 404:
                return tags
            _check(response, self.access)
            tags.extend(response.json().get("tags") or [])
            url = _next_link(response)
        return tags

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest a tag or digest names; None when there is none."""
        response = self._call(
            "GET",
            f"/v2/{_path(repository)}/manifests/{quote(reference, safe=':')}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            return None
        _check(response, self.access)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        digest = response.headers.get("docker-content-digest", "")
        return Manifest(digest, media_type, response.content)

    def created(self, repository: str, manifest: Manifest) -> float | None:
        """When the image was built, by its config's `created` (None if it says nothing)."""
        config = manifest.config
        if config is None or not isinstance(config.get("digest"), str):
            return None
        response = self._call("GET", f"/v2/{_path(repository)}/blobs/{config['digest']}")
        if response.status_code != 200:
            return None
        try:
            created = response.json().get("created")
            return datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    def delete(self, repository: str, digest: str) -> bool:
        """Delete a manifest and every tag naming it; False when there is no such manifest."""
        response = self._call("DELETE", f"/v2/{_path(repository)}/manifests/{digest}")
        if response.status_code == 404:
            return False
        _check(response, self.access)
        return True

    def put(self, repository: str, tag: str, manifest: Manifest) -> None:
        """Tag `manifest` (its exact bytes, so its digest stays) as `tag`."""
        response = self._call(
            "PUT",
            f"/v2/{_path(repository)}/manifests/{quote(tag)}",
            content=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )
        _check(response, self.access)

    def untagged_digests(self, repository: str) -> list[str]:
        """Manifests no tag names: only a registry whose storage dockyard holds can tell (the
        HTTP API lists tags only). The distribution registry keeps one `link` per manifest
        under _manifests/revisions/<algorithm>/<hex>/."""
        revisions = self._revisions(repository)
        if revisions is None or not revisions.is_dir():
            return []
        return [
            f"{algorithm.name}:{entry.name}"
            for algorithm in sorted(revisions.iterdir())
            for entry in sorted(algorithm.iterdir())
            if (entry / "link").is_file()
        ]

    def pushed_at(self, repository: str, digest: str) -> float | None:
        """When the manifest was pushed: its link's time in storage dockyard holds."""
        revisions = self._revisions(repository)
        if revisions is None:
            return None
        algorithm, _, hex_digest = digest.partition(":")
        try:
            return (revisions / algorithm / hex_digest / "link").stat().st_mtime
        except OSError:
            return None

    def _revisions(self, repository: str) -> Path | None:
        storage = self.access.storage
        if storage is None:
            return None
        root = storage / "docker" / "registry" / "v2" / "repositories"
        return root / repository / "_manifests" / "revisions"

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(
                f"the image registry at {self.access.url} did not answer ({exc})"
            ) from exc


def _path(repository: str) -> str:
    return quote(repository, safe="/")


def _next_link(response: httpx.Response) -> str | None:
    """The registry pages its tag lists with `Link: </v2/...>; rel="next"`."""
    link = response.headers.get("link")
    if not link or 'rel="next"' not in link:
        return None
    target = link.split(";", 1)[0].strip().strip("<>")
    return urljoin(str(response.url), target)


def _check(response: httpx.Response, access: RegistryAccess) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 401:
        detail = f"it refused dockyard's credentials (user {access.username})"
    else:
        detail = f"HTTP {response.status_code}: {response.text[:300]}"
    raise RegistryUnavailable(f"the image registry at {access.url} answered an error: {detail}")
