"""The docker runtime's pure parts: the image reference grammar, what resolve checks at create
time, build tags, and the container a host spec becomes (GPU device requests included: this
machine has no GPU, so that request is checked as built, not run)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from dockyard.contract.errors import ImageError, ValidationError
from dockyard.runtimes.base import HostSpec, Limits
from dockyard.runtimes.docker_hosts import container_plan
from dockyard.runtimes.docker_images import (
    DockerImage,
    DockerImages,
    build_tag,
    check_reference,
    run_lines,
)
from dockyard.runtimes.docker_runtime import API_VERSION

ACCOUNT_URI = "111111111111.dkr.ecr.us-east-1.amazonaws.com/test:latest"


@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "library/busybox:1.36",
        "localhost:5000/team/name:tag",
        ACCOUNT_URI,
        "registry.example/a/b-c__d.e@sha256:" + "a" * 64,
    ],
)
def test_references_docker_accepts(ref: str) -> None:
    assert check_reference(ref) == ref


@pytest.mark.parametrize(
    "ref", ["Busybox", "name:", "a//b", "-leading", "name:tag with space", "x@sha256:short", ""]
)
def test_references_docker_refuses(ref: str) -> None:
    with pytest.raises(ValidationError, match="image reference"):
        check_reference(ref)


def test_resolve_checks_without_asking_the_engine(tmp_path: Path) -> None:
    # No engine at this address: resolve must not need one.
    client = docker.DockerClient(base_url="unix:///nowhere.sock", version=API_VERSION)
    located: list[str] = []

    def locate(ref: str) -> str:
        located.append(ref)
        return "localhost:5000/test:latest"

    images = DockerImages(client, tmp_path, locate=locate)
    resolved = images.resolve(ACCOUNT_URI, lambda what, path: path)
    assert resolved.located == "localhost:5000/test:latest"
    assert located == [ACCOUNT_URI]
    with pytest.raises(ValidationError, match="image reference"):
        images.resolve("Not A Reference", lambda what, path: path)
    folder = tmp_path / "image"
    folder.mkdir()
    with pytest.raises(ImageError, match="no Dockerfile"):
        images.resolve(str(folder), lambda what, path: path)
    (folder / "Dockerfile").write_text('FROM busybox\nRUN echo a \\\n  b\nCMD ["x"]\n')
    assert images.resolve(str(folder), lambda what, path: path).folder == folder
    assert run_lines(folder / "Dockerfile") == ["RUN echo a b"]


def test_a_build_tag_follows_the_folder_content(tmp_path: Path) -> None:
    folder = tmp_path / "My Image"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    first = build_tag(folder)
    assert first.startswith("localhost/dockyard-build/my-image:")
    assert build_tag(folder) == first
    (folder / "train").write_text("#!/bin/sh\n")
    assert build_tag(folder) != first


def test_a_host_given_gpus_asks_for_them_by_device_request(tmp_path: Path) -> None:
    api = docker.APIClient(base_url="unix:///nowhere.sock", version=API_VERSION)
    image = DockerImage("img", "sha256:abc", "train")
    spec = HostSpec(
        image=image,
        argv=["train"],
        hostname="algo-1",
        folder=None,  # type: ignore[arg-type]  # the plan reads only the paths given below
        network=None,  # type: ignore[arg-type]
        read_only_binds=[(tmp_path / "train", "/opt/ml/input/data/train")],
        limits=Limits(cpus=2, memory_bytes=1 << 30, pids=64),
        gpus=2,
    )
    plan = container_plan(
        api,
        spec,
        image_id=image.image_id,
        network="net",
        address="10.89.0.10",
        opt_ml=tmp_path / "opt_ml",
        tmp=tmp_path / "tmp",
        labels={"dockyard.home": "/h"},
    )
    config = plan.host_config
    assert config["DeviceRequests"] == [
        {"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert config["Binds"] == [
        f"{tmp_path / 'opt_ml'}:/opt/ml:rw",
        f"{tmp_path / 'tmp'}:/tmp:rw",
        f"{tmp_path / 'train'}:/opt/ml/input/data/train:ro",
    ]
    assert config["Init"] is True
    assert config["SecurityOpt"] == ["no-new-privileges"]
    assert plan.networking_config["EndpointsConfig"]["net"]["IPAMConfig"] == {
        "IPv4Address": "10.89.0.10"
    }
    no_gpu = container_plan(
        api,
        HostSpec(
            image=image,
            argv=["train"],
            hostname="algo-1",
            folder=None,  # type: ignore[arg-type]
            network=None,  # type: ignore[arg-type]
        ),
        image_id=image.image_id,
        network="net",
        address="10.89.0.10",
        opt_ml=tmp_path / "opt_ml",
        tmp=tmp_path / "tmp",
        labels={},
    )
    assert "DeviceRequests" not in no_gpu.host_config
    assert "Memory" not in no_gpu.host_config
