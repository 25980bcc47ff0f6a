"""ECR image URIs resolved to dockyard's registry, and the sign-in for them (what the docker
runtime takes as `locate` and `auth_for`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from dockyard.contract.errors import EcrError, RegistryUnavailable
from dockyard.engine.ecr_images import EcrImages, ecr_repository_ref, locate
from dockyard.engine.registry import Registry
from dockyard.engine.repositories import ecr_error, failure_code, tag_status
from dockyard.settings import Settings

HOST = "127.0.0.1:5123"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "located"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/test:latest", f"{HOST}/test:latest"),
        ("123456789012.dkr.ecr.eu-west-3.amazonaws.com/test", f"{HOST}/test"),
        ("000000000000.dkr.ecr.us-west-2.amazonaws.com/team/model:v1", f"{HOST}/team/model:v1"),
        (f"123456789012.dkr.ecr.us-east-1.amazonaws.com/test@{DIGEST}", f"{HOST}/test@{DIGEST}"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/test:1", f"{HOST}/test:1"),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/test:1", f"{HOST}/test:1"),
        ("123456789012.dkr-ecr.us-east-1.on.aws/test:1", f"{HOST}/test:1"),
        ("123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM/test:1", f"{HOST}/test:1"),
    ],
)
def test_ecr_uris_resolve_to_the_registry(ref: str, located: str) -> None:
    assert locate(ref, HOST) == located


@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "busybox:latest",
        "localhost/dockyard-test/busybox:abc",
        "docker.io/library/python:3.11",
        f"{HOST}/test:latest",
        "12345678901.dkr.ecr.us-east-1.amazonaws.com/test:1",  # 11 digits: not an account
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",  # no repository
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/test:1",
        "/work/examples/r",
        "dockyard/python:3.11",
    ],
)
def test_other_references_are_left_as_they_are(ref: str) -> None:
    assert ecr_repository_ref(ref) is None
    assert locate(ref, HOST) == ref


def _external(tmp_path: Path, password: str | None = "s3cret") -> Registry:
    return Registry(
        Settings(
            home=tmp_path / "home",
            registry_url=f"http://{HOST}",
            registry_password=SecretStr(password) if password is not None else None,
        )
    )


def test_auth_for_refs_on_the_registry(tmp_path: Path) -> None:
    images = EcrImages(_external(tmp_path))
    expected = {"username": "AWS", "password": "s3cret"}
    assert images.locate("123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1") == f"{HOST}/a:1"
    assert images.auth_for("123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1") == expected
    assert images.auth_for(f"{HOST}/a:1") == expected
    assert images.auth_for("localhost/other:1") is None
    assert images.auth_for("busybox") is None
    assert EcrImages(_external(tmp_path, None)).auth_for(f"{HOST}/a:1") is None


def test_no_registry_other_refs_are_fine_and_ecr_uris_say_what_to_do(tmp_path: Path) -> None:
    registry = Registry(Settings(home=tmp_path / "home", registry_command="no-such-registry"))
    images = EcrImages(registry)
    assert images.locate("busybox:latest") == "busybox:latest"
    assert images.auth_for("localhost/x:1") is None
    assert not (tmp_path / "home" / "registry").exists()  # nothing was started for them
    with pytest.raises(RegistryUnavailable, match="apt-get install docker-registry"):
        images.locate("123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1")


def test_registry_url_must_name_a_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("takes http://host:port")):
        Settings(home=tmp_path, registry_url="127.0.0.1:5000")


def test_codes_come_from_botocores_ecr_model() -> None:
    error = ecr_error("RepositoryNotFoundException", "gone")
    assert isinstance(error, EcrError) and error.code == "RepositoryNotFoundException"
    assert RegistryUnavailable("x").code == ecr_error("ServerException", "x").code
    with pytest.raises(AssertionError):
        ecr_error("RepositoryMissing", "not ECR's")
    assert failure_code("ImageNotFound") == "ImageNotFound"
    with pytest.raises(AssertionError):
        failure_code("NotAFailure")
    assert tag_status("UNTAGGED") == "UNTAGGED"
    with pytest.raises(AssertionError):
        tag_status("SOME")
