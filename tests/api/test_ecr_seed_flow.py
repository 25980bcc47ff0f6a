"""The seed flow with real clients: `aws ecr create-repository`, `aws ecr get-login-password |
podman login`, `podman tag` and `push` to the repository URI, then `aws ecr describe-images` /
`list-images` / `batch-delete-image`, against the registry the server runs."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.containers import podman


@pytest.fixture
def podman_cli(container_engine: Any, tmp_path: Path) -> Iterator[Any]:
    """Runs the podman CLI with an auth file of this test's own (the machine's stays
    untouched); the names it tags are untagged afterwards (the image is shared)."""
    authfile = tmp_path / "auth.json"
    tagged: list[str] = []

    def run(*args: str, stdin: str | None = None, check: bool = True) -> Any:
        command = [podman(), *args]
        if args[0] in ("login", "push", "pull"):
            # Plain HTTP on loopback: see README "Images and the ECR API" for registries.conf.
            command[2:2] = ["--tls-verify=false", "--authfile", str(authfile)]
        if args[0] == "tag":
            tagged.append(args[2])
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {done.stderr}")
        return done

    yield run
    for name in tagged:
        subprocess.run([podman(), "untag", name, name], capture_output=True, check=False)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def test_seed_flow_create_login_tag_push_describe_delete(
    aws: Any, podman_cli: Any, busybox: str
) -> None:
    name = f"seed/{uuid.uuid4().hex[:8]}"
    created = _json(aws("ecr", "create-repository", "--repository-name", name))["repository"]
    uri = created["repositoryUri"]
    host = uri.split("/", 1)[0]
    assert uri == f"{host}/{name}" and host.startswith("127.0.0.1:")
    assert created["repositoryArn"].endswith(f":repository/{name}")

    password = aws("ecr", "get-login-password").stdout.strip()
    login = podman_cli("login", "--username", "AWS", "--password-stdin", host, stdin=password)
    assert "Login Succeeded" in login.stdout

    podman_cli("tag", busybox, f"{uri}:latest")
    podman_cli("tag", busybox, f"{uri}:v1")
    podman_cli("push", f"{uri}:latest")
    podman_cli("push", f"{uri}:v1")

    details = _json(aws("ecr", "describe-images", "--repository-name", name))["imageDetails"]
    assert len(details) == 1
    (image,) = details
    assert sorted(image["imageTags"]) == ["latest", "v1"]
    assert image["imageDigest"].startswith("sha256:")
    assert image["imageSizeInBytes"] > 100_000  # busybox's one compressed layer
    assert image["registryId"] == created["registryId"]
    assert image["imageManifestMediaType"].startswith("application/vnd.")
    assert "imagePushedAt" in image
    # The digest is the registry's own: what a pull by digest names.
    podman_cli("pull", f"{uri}@{image['imageDigest']}")

    listed = _json(aws("ecr", "list-images", "--repository-name", name))["imageIds"]
    assert sorted(listed, key=lambda i: i["imageTag"]) == [
        {"imageDigest": image["imageDigest"], "imageTag": "latest"},
        {"imageDigest": image["imageDigest"], "imageTag": "v1"},
    ]

    # A tag of an image with two: that tag goes, the image stays under the other.
    deleted = _json(
        aws("ecr", "batch-delete-image", "--repository-name", name, "--image-ids", "imageTag=v1")
    )
    assert deleted["imageIds"] == [{"imageDigest": image["imageDigest"], "imageTag": "v1"}]
    assert deleted["failures"] == []
    left = _json(aws("ecr", "describe-images", "--repository-name", name))["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in left] == [
        (image["imageDigest"], ["latest"])
    ]

    # A repository with an image is not deleted without --force.
    refused = aws("ecr", "delete-repository", "--repository-name", name, check=False)
    assert refused.returncode != 0 and "RepositoryNotEmptyException" in refused.stderr

    # Unknown tags are failures, not errors of the whole request.
    gone = _json(
        aws(
            "ecr", "batch-delete-image", "--repository-name", name,
            "--image-ids", "imageTag=latest", "imageTag=nope",
        )
    )  # fmt: skip
    assert gone["imageIds"] == [{"imageDigest": image["imageDigest"], "imageTag": "latest"}]
    assert gone["failures"] == [
        {
            "imageId": {"imageTag": "nope"},
            "failureCode": "ImageNotFound",
            "failureReason": "Requested image not found",
        }
    ]
    assert _json(aws("ecr", "list-images", "--repository-name", name))["imageIds"] == []
    pulled = podman_cli("pull", f"{uri}:latest", check=False)
    assert pulled.returncode != 0

    aws("ecr", "delete-repository", "--repository-name", name)
    missing = aws("ecr", "describe-images", "--repository-name", name, check=False)
    assert "RepositoryNotFoundException" in missing.stderr


def test_the_registry_refuses_a_wrong_password(aws: Any, podman_cli: Any) -> None:
    uri = _json(aws("ecr", "create-repository", "--repository-name", "locked"))["repository"][
        "repositoryUri"
    ]
    host = uri.split("/", 1)[0]
    refused = podman_cli(
        "login", "--username", "AWS", "--password-stdin", host, stdin="not-the-password",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "invalid username/password" in refused.stderr
