"""The ECR API on the wire (X-Amz-Target `AmazonEC2ContainerRegistry_V20150921.*`): the
operations of the build / tag / push flow, answered from engine/repositories.py."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.repositories import CreateRepositoryRequest, ImageIdentifier
from dockyard.engine.core import Engine
from dockyard.engine.repositories import ImageDetail, ImageFailure, Repository


def repository(shown: Repository) -> dict[str, Any]:
    request = shown.record.request
    return {
        "repositoryArn": shown.arn,
        "registryId": shown.registry_id,
        "repositoryName": shown.record.name,
        "repositoryUri": shown.uri,
        "createdAt": shown.record.creation_time,
        "imageTagMutability": request.image_tag_mutability,
        "imageScanningConfiguration": request.image_scanning_configuration.to_wire(),
        "encryptionConfiguration": request.encryption_configuration.to_wire(),
    }


def image_detail(detail: ImageDetail, registry_id: str, name: str) -> dict[str, Any]:
    image = detail.image
    shown: dict[str, Any] = {
        "registryId": registry_id,
        "repositoryName": name,
        "imageDigest": image.digest,
        "imageSizeInBytes": image.manifest.size,
        "imageManifestMediaType": image.manifest.media_type,
    }
    if image.tags:
        shown["imageTags"] = list(image.tags)
    if detail.pushed_at is not None:
        shown["imagePushedAt"] = detail.pushed_at
    config = image.manifest.config
    if config is not None and isinstance(config.get("mediaType"), str):
        shown["artifactMediaType"] = config["mediaType"]
    return shown


def failure(item: ImageFailure) -> dict[str, Any]:
    return {
        "imageId": item.image_id.to_wire(),
        "failureCode": item.code,
        "failureReason": item.reason,
    }


def _image_ids(body: dict[str, Any]) -> list[ImageIdentifier] | None:
    ids = body.get("imageIds")
    return None if ids is None else [ImageIdentifier.from_wire(item) for item in ids]


def _status(body: dict[str, Any]) -> str | None:
    found = (body.get("filter") or {}).get("tagStatus")
    return str(found) if found is not None else None


def _paged(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if token is not None:
        answer["nextToken"] = token
    return answer


def operations(engine: Engine) -> dict[str, Operation]:
    repositories = engine.repositories
    account = engine.settings.account_id

    def create_repository(body: dict[str, Any]) -> dict[str, Any]:
        shown = repositories.create(CreateRepositoryRequest.from_wire(body))
        return {"repository": repository(shown)}

    def describe_repositories(body: dict[str, Any]) -> dict[str, Any]:
        page = repositories.describe(
            body.get("registryId"),
            body.get("repositoryNames"),
            body.get("nextToken"),
            body.get("maxResults"),
        )
        return _paged("repositories", [repository(r) for r in page.items], page.next_token)

    def delete_repository(body: dict[str, Any]) -> dict[str, Any]:
        shown = repositories.delete(
            body.get("registryId"), body["repositoryName"], bool(body.get("force"))
        )
        return {"repository": repository(shown)}

    def describe_images(body: dict[str, Any]) -> dict[str, Any]:
        name = body["repositoryName"]
        page = repositories.describe_images(
            body.get("registryId"),
            name,
            _image_ids(body),
            _status(body),
            body.get("nextToken"),
            body.get("maxResults"),
        )
        details = [image_detail(d, account, name) for d in page.items]
        return _paged("imageDetails", details, page.next_token)

    def list_images(body: dict[str, Any]) -> dict[str, Any]:
        page = repositories.list_images(
            body.get("registryId"),
            body["repositoryName"],
            _status(body),
            body.get("nextToken"),
            body.get("maxResults"),
        )
        return _paged("imageIds", [i.to_wire() for i in page.items], page.next_token)

    def batch_delete_image(body: dict[str, Any]) -> dict[str, Any]:
        deleted, failures = repositories.batch_delete(
            body.get("registryId"), body["repositoryName"], _image_ids(body) or []
        )
        return {
            "imageIds": [i.to_wire() for i in deleted],
            "failures": [failure(f) for f in failures],
        }

    def get_authorization_token(body: dict[str, Any]) -> dict[str, Any]:
        granted = repositories.authorization()
        data = {
            "authorizationToken": granted.token,
            "expiresAt": granted.expires_at,
            "proxyEndpoint": granted.proxy_endpoint,
        }
        # One entry per registry asked for, as ECR answers; all of them are this registry.
        return {"authorizationData": [data for _ in body.get("registryIds") or [account]]}

    return {
        "CreateRepository": create_repository,
        "DescribeRepositories": describe_repositories,
        "DeleteRepository": delete_repository,
        "DescribeImages": describe_images,
        "ListImages": list_images,
        "BatchDeleteImage": batch_delete_image,
        "GetAuthorizationToken": get_authorization_token,
    }
