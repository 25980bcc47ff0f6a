"""The ECR API with boto3 against a real server and the real registry it runs: each operation,
its answers and its errors (ECR's codes and wording)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dockyard.settings import Settings
from tests.api.ecr_images import login, push
from tests.conftest import RunningServer, free_port
from tests.containers import running_registry

ACCOUNT = "000000000000"


@pytest.fixture
def ecr(server: RunningServer) -> Any:
    return server.client("ecr")


def _error(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


# -- repositories -------------------------------------------------------------------------------


def test_create_repository_answers_ecr_shapes(ecr: Any, server: RunningServer) -> None:
    before = time.time()
    repository = ecr.create_repository(repositoryName="team/model-a")["repository"]
    host = repository["repositoryUri"].split("/", 1)[0]
    assert repository["repositoryUri"] == f"{host}/team/model-a"
    assert repository["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/model-a"
    assert repository["registryId"] == ACCOUNT
    assert repository["repositoryName"] == "team/model-a"
    assert repository["createdAt"].timestamp() >= before - 1
    assert repository["imageTagMutability"] == "MUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}
    assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}
    # The registry's files: its password kept for the user only.
    password = server.settings.home / "registry" / "password"
    assert password.stat().st_mode & 0o777 == 0o600


def test_create_repository_errors(ecr: Any, server: RunningServer) -> None:
    ecr.create_repository(repositoryName="dup", imageTagMutability="IMMUTABLE")
    assert _error(ecr.create_repository, repositoryName="dup") == (
        "RepositoryAlreadyExistsException",
        f"The repository with name 'dup' already exists in the registry with id '{ACCOUNT}'",
    )
    code, message = _error(ecr.create_repository, repositoryName="Upper")
    assert code == "ValidationException"
    assert "Value 'Upper' at 'repositoryName' failed to satisfy constraint" in message
    unchecked = server.client_with_config("ecr", Config(parameter_validation=False))
    code, message = _error(unchecked.create_repository, repositoryName="x")
    assert code == "ValidationException" and "length greater than or equal to 2" in message
    code, message = _error(ecr.create_repository, repositoryName="other", registryId="123456789012")
    assert code == "InvalidParameterException" and ACCOUNT in message
    shown = ecr.describe_repositories(repositoryNames=["dup"])["repositories"][0]
    assert shown["imageTagMutability"] == "IMMUTABLE"


def test_describe_repositories_lists_pages_and_names(ecr: Any) -> None:
    for name in ("b-repo", "a-repo", "c/repo"):
        ecr.create_repository(repositoryName=name)
    everything = ecr.describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in everything] == ["a-repo", "b-repo", "c/repo"]

    first = ecr.describe_repositories(maxResults=2)
    assert [r["repositoryName"] for r in first["repositories"]] == ["a-repo", "b-repo"]
    rest = ecr.describe_repositories(maxResults=2, nextToken=first["nextToken"])
    assert [r["repositoryName"] for r in rest["repositories"]] == ["c/repo"]
    assert "nextToken" not in rest
    paged = ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1})
    assert [r["repositoryName"] for page in paged for r in page["repositories"]] == [
        "a-repo",
        "b-repo",
        "c/repo",
    ]

    named = ecr.describe_repositories(repositoryNames=["c/repo", "a-repo"])["repositories"]
    assert [r["repositoryName"] for r in named] == ["c/repo", "a-repo"]
    assert _error(ecr.describe_repositories, repositoryNames=["a-repo", "nope"]) == (
        "RepositoryNotFoundException",
        f"The repository with name 'nope' does not exist in the registry with id '{ACCOUNT}'",
    )


def test_delete_repository_refuses_images_without_force(ecr: Any) -> None:
    ecr.create_repository(repositoryName="full")
    url, auth = login(ecr)
    push(url, auth, "full", "latest", "one")
    assert _error(ecr.delete_repository, repositoryName="full") == (
        "RepositoryNotEmptyException",
        f"The repository with name 'full' in registry with id '{ACCOUNT}' cannot be deleted "
        "because it still contains images",
    )
    deleted = ecr.delete_repository(repositoryName="full", force=True)["repository"]
    assert deleted["repositoryName"] == "full"
    assert _error(ecr.describe_images, repositoryName="full")[0] == "RepositoryNotFoundException"
    # Its images are gone from the registry too: a new repository of that name starts empty.
    ecr.create_repository(repositoryName="full")
    assert ecr.list_images(repositoryName="full")["imageIds"] == []
    ecr.delete_repository(repositoryName="full")  # empty: no force needed
    assert _error(ecr.delete_repository, repositoryName="full")[0] == (
        "RepositoryNotFoundException"
    )


# -- sign-in ------------------------------------------------------------------------------------


def test_authorization_token_signs_in_to_the_registry(ecr: Any) -> None:
    data = ecr.get_authorization_token()["authorizationData"]
    assert len(data) == 1
    token = base64.b64decode(data[0]["authorizationToken"]).decode()
    user, _, password = token.partition(":")
    assert user == "AWS" and len(password) >= 32
    assert data[0]["proxyEndpoint"].startswith("http://127.0.0.1:")
    assert data[0]["expiresAt"].timestamp() > time.time() + 11 * 3600
    catalog = f"{data[0]['proxyEndpoint']}/v2/"
    assert httpx.get(catalog, auth=(user, password)).status_code == 200
    assert httpx.get(catalog, auth=(user, password + "x")).status_code == 401
    assert httpx.get(catalog).status_code == 401
    # The same password for every call: a login stays good.
    again = ecr.get_authorization_token(registryIds=[ACCOUNT, ACCOUNT])["authorizationData"]
    assert [d["authorizationToken"] for d in again] == [data[0]["authorizationToken"]] * 2


# -- images -------------------------------------------------------------------------------------


def test_describe_and_list_images(ecr: Any) -> None:
    ecr.create_repository(repositoryName="imgs")
    url, auth = login(ecr)
    before = time.time()
    old = push(url, auth, "imgs", "latest", "old")
    one = push(url, auth, "imgs", "v1", "one")
    push(url, auth, "imgs", "stable", "one")  # the same image, a second tag
    two = push(url, auth, "imgs", "latest", "two")  # `latest` moves: `old` is untagged now

    answer = ecr.describe_images(repositoryName="imgs")["imageDetails"]
    details = {d["imageDigest"]: d for d in answer}
    assert set(details) == {old.digest, one.digest, two.digest}
    assert sorted(details[one.digest]["imageTags"]) == ["stable", "v1"]
    assert details[two.digest]["imageTags"] == ["latest"]
    assert "imageTags" not in details[old.digest]
    detail = details[one.digest]
    assert detail["registryId"] == ACCOUNT and detail["repositoryName"] == "imgs"
    assert detail["imageSizeInBytes"] == one.layer_size
    assert detail["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert detail["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert isinstance(detail["imagePushedAt"], datetime)
    assert before - 2 <= detail["imagePushedAt"].timestamp() <= time.time() + 2

    def digests(**filters: Any) -> set[str]:
        answer = ecr.describe_images(repositoryName="imgs", **filters)["imageDetails"]
        return {d["imageDigest"] for d in answer}

    assert digests(filter={"tagStatus": "TAGGED"}) == {one.digest, two.digest}
    assert digests(filter={"tagStatus": "UNTAGGED"}) == {old.digest}
    assert digests(imageIds=[{"imageTag": "stable"}]) == {one.digest}
    assert digests(imageIds=[{"imageDigest": old.digest}]) == {old.digest}
    assert _error(ecr.describe_images, repositoryName="imgs", imageIds=[{"imageTag": "gone"}]) == (
        "ImageNotFoundException",
        "The image with imageId {imageDigest:'null', imageTag:'gone'} does not exist within the "
        f"repository with name 'imgs' in the registry with id '{ACCOUNT}'",
    )
    paged = ecr.get_paginator("describe_images").paginate(
        repositoryName="imgs", PaginationConfig={"PageSize": 2}
    )
    pages = list(paged)
    assert len(pages) == 2
    assert {d["imageDigest"] for p in pages for d in p["imageDetails"]} == set(details)

    ids = ecr.list_images(repositoryName="imgs")["imageIds"]
    assert sorted(ids, key=lambda i: (i["imageDigest"], i.get("imageTag", ""))) == sorted(
        [
            {"imageDigest": one.digest, "imageTag": "v1"},
            {"imageDigest": one.digest, "imageTag": "stable"},
            {"imageDigest": two.digest, "imageTag": "latest"},
            {"imageDigest": old.digest},
        ],
        key=lambda i: (i["imageDigest"], i.get("imageTag", "")),
    )
    untagged = ecr.list_images(repositoryName="imgs", filter={"tagStatus": "UNTAGGED"})
    assert untagged["imageIds"] == [{"imageDigest": old.digest}]
    first = ecr.list_images(repositoryName="imgs", maxResults=3)
    rest = ecr.list_images(repositoryName="imgs", maxResults=3, nextToken=first["nextToken"])
    assert len(first["imageIds"]) == 3 and len(rest["imageIds"]) == 1

    assert _error(ecr.list_images, repositoryName="nope")[0] == "RepositoryNotFoundException"
    code, message = _error(ecr.list_images, repositoryName="imgs", filter={"tagStatus": "SOME"})
    assert code == "ValidationException" and "[TAGGED, UNTAGGED, ANY]" in message


def test_an_empty_repository_has_no_images(ecr: Any) -> None:
    ecr.create_repository(repositoryName="empty")
    assert ecr.describe_images(repositoryName="empty")["imageDetails"] == []
    assert ecr.list_images(repositoryName="empty")["imageIds"] == []


def test_batch_delete_image_by_digest_and_tag_with_failures(ecr: Any) -> None:
    ecr.create_repository(repositoryName="del")
    url, auth = login(ecr)
    one = push(url, auth, "del", "a", "one")
    push(url, auth, "del", "b", "one")
    two = push(url, auth, "del", "c", "two")

    answer = ecr.batch_delete_image(
        repositoryName="del",
        imageIds=[
            {"imageDigest": one.digest},
            {"imageTag": "nope"},
            {"imageDigest": "not-a-digest"},
            {},
            {"imageTag": "c", "imageDigest": one.digest},
        ],
    )
    assert sorted(answer["imageIds"], key=lambda i: i["imageTag"]) == [
        {"imageDigest": one.digest, "imageTag": "a"},
        {"imageDigest": one.digest, "imageTag": "b"},
    ]
    assert answer["failures"] == [
        {
            "imageId": {"imageTag": "nope"},
            "failureCode": "ImageNotFound",
            "failureReason": "Requested image not found",
        },
        {
            "imageId": {"imageDigest": "not-a-digest"},
            "failureCode": "InvalidImageDigest",
            "failureReason": "Invalid request parameters: image digest should satisfy the "
            "regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        },
        {
            "imageId": {},
            "failureCode": "MissingDigestAndTag",
            "failureReason": "Invalid request parameters: both tag and digest cannot be null",
        },
        {
            "imageId": {"imageTag": "c", "imageDigest": one.digest},
            "failureCode": "ImageTagDoesNotMatchDigest",
            "failureReason": "Invalid request parameters: image tag digest did not match "
            "image digest",
        },
    ]
    assert ecr.list_images(repositoryName="del")["imageIds"] == [
        {"imageDigest": two.digest, "imageTag": "c"}
    ]
    by_both = ecr.batch_delete_image(
        repositoryName="del", imageIds=[{"imageTag": "c", "imageDigest": two.digest}]
    )
    assert by_both["imageIds"] == [{"imageDigest": two.digest, "imageTag": "c"}]
    assert ecr.describe_images(repositoryName="del")["imageDetails"] == []
    assert _error(ecr.batch_delete_image, repositoryName="nope", imageIds=[{"imageTag": "a"}])[
        0
    ] == ("RepositoryNotFoundException")


# -- where the registry comes from --------------------------------------------------------------


def test_no_registry_installed_is_a_clear_error(clean_env: Path) -> None:
    settings = Settings(home=clean_env, port=free_port(), registry_command="no-such-registry")
    running = RunningServer(settings)
    try:
        ecr = running.client("ecr")
        with pytest.raises(ClientError) as caught:
            ecr.create_repository(repositoryName="nowhere")
        response = caught.value.response
        assert response["Error"]["Code"] == "ServerException"
        assert "apt-get install docker-registry" in response["Error"]["Message"]
        assert "DOCKYARD_REGISTRY_URL" in response["Error"]["Message"]
        assert response["ResponseMetadata"]["RetryAttempts"] == 0  # nothing to retry
        with pytest.raises(ClientError, match="apt-get install docker-registry"):
            ecr.get_authorization_token()
        # The other APIs do not care.
        assert running.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    finally:
        running.close()


@pytest.fixture
def open_registry(tmp_path: Path) -> Iterator[str]:
    """A registry of someone else's, without auth: the distribution registry started here."""
    with running_registry(tmp_path / "open-registry") as address:
        yield f"http://{address}"


def test_a_registry_url_is_used_and_none_started(clean_env: Path, open_registry: str) -> None:
    settings = Settings(home=clean_env, port=free_port(), registry_url=open_registry)
    running = RunningServer(settings)
    try:
        ecr = running.client("ecr")
        host = open_registry.removeprefix("http://")
        repository = ecr.create_repository(repositoryName="theirs")["repository"]
        assert repository["repositoryUri"] == f"{host}/theirs"
        data = ecr.get_authorization_token()["authorizationData"][0]
        assert data["proxyEndpoint"] == open_registry
        assert base64.b64decode(data["authorizationToken"]) == b"AWS:"
        pushed = push(open_registry, None, "theirs", "latest", "hello")
        (detail,) = ecr.describe_images(repositoryName="theirs")["imageDetails"]
        assert detail["imageDigest"] == pushed.digest and detail["imageTags"] == ["latest"]
        # Not dockyard's storage: the push time is not known, the image's creation time is.
        assert (
            detail["imagePushedAt"].timestamp()
            == datetime.fromisoformat("2024-05-01T12:00:00+00:00").timestamp()
        )
        assert not (clean_env / "registry").exists()
    finally:
        running.close()
