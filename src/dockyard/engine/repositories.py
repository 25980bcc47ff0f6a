"""ECR repositories: kept in the metadata store, their images read from and deleted in the
registry (engine/registry.py), with ECR's error codes and failure codes from botocore's model."""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import botocore.session

from dockyard.contract.errors import EcrError, ValidationError
from dockyard.contract.repositories import CreateRepositoryRequest, ImageIdentifier
from dockyard.contract.shapes import NoState
from dockyard.engine.paging import Page, decode_token, encode_token
from dockyard.engine.registry import Registry, RegistryAccess
from dockyard.engine.registry_api import Manifest, RegistryApi
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.records import REPOSITORIES, Record

RepositoryRecord = Record[CreateRepositoryRequest, NoState]
Item = TypeVar("Item")

# ECR's own answers (its messages, with the codes of its model).
_DIGEST = re.compile(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+")
# GetAuthorizationToken's tokens are good for 12 hours at ECR; this registry's password does
# not expire, but clients are told the same.
TOKEN_SECONDS = 12 * 3600


@functools.cache
def _model_names() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """ECR's error codes, image failure codes and tag statuses, from botocore's model."""
    model = botocore.session.get_session().get_service_model("ecr")
    errors = frozenset(shape.name for shape in model.error_shapes)
    failures = frozenset(model.shape_for("ImageFailureCode").metadata["enum"])
    statuses = frozenset(model.shape_for("TagStatus").metadata["enum"])
    return errors, failures, statuses


def ecr_error(code: str, message: str) -> EcrError:
    if code not in _model_names()[0]:
        raise AssertionError(f"{code} is not an error of botocore's ECR model")
    return EcrError(code, message)


def failure_code(code: str) -> str:
    if code not in _model_names()[1]:
        raise AssertionError(f"{code} is not an ImageFailureCode of botocore's ECR model")
    return code


def tag_status(value: str) -> str:
    if value not in _model_names()[2]:
        raise AssertionError(f"{value} is not a TagStatus of botocore's ECR model")
    return value


@dataclass(frozen=True)
class Repository:
    record: RepositoryRecord
    arn: str
    uri: str
    registry_id: str


@dataclass(frozen=True)
class Image:
    """One manifest of a repository, with the tags that name it."""

    manifest: Manifest
    tags: tuple[str, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest


@dataclass(frozen=True)
class ImageDetail:
    image: Image
    pushed_at: float | None


@dataclass(frozen=True)
class ImageFailure:
    image_id: ImageIdentifier
    code: str
    reason: str


@dataclass(frozen=True)
class Authorization:
    token: str
    expires_at: float
    proxy_endpoint: str


class Repositories:
    def __init__(self, settings: Settings, metadata: MetadataStore, registry: Registry) -> None:
        self.account = settings.account_id
        self.region = settings.region
        self.metadata = metadata
        self.registry = registry

    # -- repositories ------------------------------------------------------------------------

    def create(self, request: CreateRepositoryRequest) -> Repository:
        self._check_registry_id(request.registry_id)
        access = self.registry.access()
        name = request.repository_name
        record = RepositoryRecord(
            name=name,
            arn=self.arn(name),
            creation_time=time.time(),
            state=NoState(),
            request=request,
        )
        if self.metadata.resource(REPOSITORIES, name) is None:
            try:
                self.metadata.insert_resource(REPOSITORIES, record, "exists")
                return self._shown(record, access)
            except ValidationError:
                pass  # created meanwhile
        raise ecr_error(
            "RepositoryAlreadyExistsException",
            f"The repository with name '{name}' already exists in the registry with id "
            f"'{self.account}'",
        )

    def describe(
        self,
        registry_id: str | None,
        names: Sequence[str] | None,
        token: str | None,
        max_results: int | None,
    ) -> Page[Repository]:
        self._check_registry_id(registry_id)
        access = self.registry.access()
        if names:
            if max_results is not None:
                raise ecr_error(
                    "InvalidParameterException",
                    "Invalid parameter: maxResults cannot be given with repositoryNames",
                )
            return Page([self._shown(self._record(name), access) for name in names])
        offset, limit = decode_token(token), max_results or 100
        rows = self.metadata.list_resources(
            REPOSITORIES, sort_by="Name", descending=False, offset=offset, limit=limit + 1
        )
        found = [self.metadata.resource(REPOSITORIES, row.name) for row in rows[:limit]]
        shown = [self._shown(record, access) for record in found if record is not None]
        return Page(shown, encode_token(offset + limit) if len(rows) > limit else None)

    def delete(self, registry_id: str | None, name: str, force: bool) -> Repository:
        self._check_registry_id(registry_id)
        record = self._record(name)
        with self._api() as api:
            images = self._images(api, name)
            if images and not force:
                raise ecr_error(
                    "RepositoryNotEmptyException",
                    f"The repository with name '{name}' in registry with id '{self.account}' "
                    "cannot be deleted because it still contains images",
                )
            for image in images:
                api.delete(name, image.digest)
            shown = self._shown(record, api.access)
        self.metadata.delete_resource(REPOSITORIES, name)
        return shown

    # -- images ------------------------------------------------------------------------------

    def describe_images(
        self,
        registry_id: str | None,
        name: str,
        image_ids: Sequence[ImageIdentifier] | None,
        status: str | None,
        token: str | None,
        max_results: int | None,
    ) -> Page[ImageDetail]:
        self._check_registry_id(registry_id)
        self._record(name)
        with self._api() as api:
            images = self._images(api, name)
            if image_ids:
                chosen = []
                for image_id in image_ids:
                    image = _find(images, image_id)
                    if image is None:
                        raise ecr_error(
                            "ImageNotFoundException",
                            f"The image with imageId {image_id.shown()} does not exist within "
                            f"the repository with name '{name}' in the registry with id "
                            f"'{self.account}'",
                        )
                    chosen.append(image)
                details = [self._detail(api, name, image) for image in chosen]
                return Page(details)
            details = [self._detail(api, name, image) for image in _with_status(images, status)]
        details.sort(key=lambda d: (-(d.pushed_at or 0), d.image.digest))
        return _page(details, token, max_results or 100)

    def list_images(
        self,
        registry_id: str | None,
        name: str,
        status: str | None,
        token: str | None,
        max_results: int | None,
    ) -> Page[ImageIdentifier]:
        self._check_registry_id(registry_id)
        self._record(name)
        with self._api() as api:
            images = _with_status(self._images(api, name), status)
        ids = [
            ImageIdentifier(image_digest=image.digest, image_tag=tag)
            for image in images
            for tag in image.tags or (None,)
        ]
        return _page(ids, token, max_results or 100)

    def batch_delete(
        self, registry_id: str | None, name: str, image_ids: Sequence[ImageIdentifier]
    ) -> tuple[list[ImageIdentifier], list[ImageFailure]]:
        """ECR's rules: a digest deletes the image and all its tags; a tag deletes that tag,
        and the image with it when it was its last tag. Each id that cannot be deleted is a
        failure, not an error of the whole request."""
        self._check_registry_id(registry_id)
        self._record(name)
        deleted: list[ImageIdentifier] = []
        failures: list[ImageFailure] = []
        with self._api() as api:
            for image_id in image_ids:
                failure = _invalid(image_id)
                if failure is None:
                    image = _find(self._images(api, name), image_id)
                    if image is None:
                        failure = ImageFailure(
                            image_id, failure_code("ImageNotFound"), "Requested image not found"
                        )
                    elif image_id.image_tag is not None and image_id.image_digest not in (
                        None,
                        image.digest,
                    ):
                        failure = ImageFailure(
                            image_id,
                            failure_code("ImageTagDoesNotMatchDigest"),
                            "Invalid request parameters: image tag digest did not match "
                            "image digest",
                        )
                if failure is not None:
                    failures.append(failure)
                    continue
                assert image is not None
                deleted.extend(_delete(api, name, image, image_id.image_tag))
        return deleted, failures

    # -- sign-in -----------------------------------------------------------------------------

    def authorization(self) -> Authorization:
        """A token `docker login` / `podman login` takes: base64 of `AWS:<password>`."""
        access = self.registry.access()
        secret = f"{access.username}:{access.password or ''}"
        return Authorization(
            base64.b64encode(secret.encode()).decode(),
            time.time() + TOKEN_SECONDS,
            access.url,
        )

    # -- helpers -----------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{name}"

    def _shown(self, record: RepositoryRecord, access: RegistryAccess) -> Repository:
        return Repository(record, record.arn, f"{access.host}/{record.name}", self.account)

    def _record(self, name: str) -> RepositoryRecord:
        record = self.metadata.resource(REPOSITORIES, name)
        if record is None:
            raise ecr_error(
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id "
                f"'{self.account}'",
            )
        return record

    def _check_registry_id(self, registry_id: str | None) -> None:
        if registry_id is not None and registry_id != self.account:
            raise ecr_error(
                "InvalidParameterException",
                f"Invalid parameter at 'registryId': this registry's id is '{self.account}' "
                f"(DOCKYARD_ACCOUNT_ID), not '{registry_id}'",
            )

    @contextmanager
    def _api(self) -> Iterator[RegistryApi]:
        with RegistryApi(self.registry.access()) as api:
            yield api

    def _images(self, api: RegistryApi, name: str) -> list[Image]:
        by_digest: dict[str, Manifest] = {}
        tags: dict[str, list[str]] = {}
        for tag in api.tags(name):
            manifest = api.manifest(name, tag)
            if manifest is not None:  # deleted meanwhile
                by_digest[manifest.digest] = manifest
                tags.setdefault(manifest.digest, []).append(tag)
        for digest in api.untagged_digests(name):
            if digest not in by_digest:
                manifest = api.manifest(name, digest)
                if manifest is not None:
                    by_digest[digest] = manifest
        return [
            Image(manifest, tuple(sorted(tags.get(digest, ()))))
            for digest, manifest in by_digest.items()
        ]

    def _detail(self, api: RegistryApi, name: str, image: Image) -> ImageDetail:
        pushed = api.pushed_at(name, image.digest)
        if pushed is None:
            pushed = api.created(name, image.manifest)
        return ImageDetail(image, pushed)


def _invalid(image_id: ImageIdentifier) -> ImageFailure | None:
    if image_id.image_digest is None and image_id.image_tag is None:
        return ImageFailure(
            image_id,
            failure_code("MissingDigestAndTag"),
            "Invalid request parameters: both tag and digest cannot be null",
        )
    if image_id.image_digest is not None and not _DIGEST.fullmatch(image_id.image_digest):
        return ImageFailure(
            image_id,
            failure_code("InvalidImageDigest"),
            "Invalid request parameters: image digest should satisfy the regex "
            f"'{_DIGEST.pattern}'",
        )
    return None


def _find(images: Sequence[Image], image_id: ImageIdentifier) -> Image | None:
    for image in images:
        if image_id.image_tag is not None:
            if image_id.image_tag in image.tags:
                return image
        elif image.digest == image_id.image_digest:
            return image
    return None


def _with_status(images: Sequence[Image], status: str | None) -> list[Image]:
    if status is None or status == tag_status("ANY"):
        return list(images)
    tagged = status == tag_status("TAGGED")
    return [image for image in images if bool(image.tags) == tagged]


def _delete(api: RegistryApi, name: str, image: Image, tag: str | None) -> list[ImageIdentifier]:
    """Delete `tag` of `image`, or the whole image when no tag is given or it is the last.
    The distribution registry deletes manifests only, never a single tag: the tags that stay
    are put back on the same manifest bytes (same digest; its layers are still there)."""
    api.delete(name, image.digest)
    if tag is None:
        return [
            ImageIdentifier(image_digest=image.digest, image_tag=t) for t in image.tags or (None,)
        ]
    for kept in image.tags:
        if kept != tag:
            api.put(name, kept, image.manifest)
    return [ImageIdentifier(image_digest=image.digest, image_tag=tag)]


def _page(items: list[Item], token: str | None, limit: int) -> Page[Item]:
    offset = decode_token(token)
    window = items[offset : offset + limit]
    more = offset + limit < len(items)
    return Page(list(window), encode_token(offset + limit) if more else None)
