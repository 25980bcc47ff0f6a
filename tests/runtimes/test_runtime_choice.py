"""Which runtime runs an image: the `dockyard:runtime` tag, else the reference (an image folder or a
framework image runs in the process runtime, anything else needs a container engine), else the
server's default."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.contract.tags import RUNTIME_TAG, requested_runtime
from dockyard.contract.training_jobs import Tag
from dockyard.runtimes.factory import Runtimes
from dockyard.runtimes.process import ProcessRuntime
from dockyard.settings import Settings

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
OWN_ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com/test:latest"


@pytest.mark.parametrize(
    ("ref", "runtime"),
    [
        ("/work/examples/r-randomforest", "process"),
        ("file:///work/examples/r-randomforest", "process"),
        ("dockyard/python:3.11", "process"),
        ("dockyard/nonesuch:1", "process"),  # the process runtime's error names the frameworks
        (SKLEARN, "process"),
        # Named as a framework image but no framework dockyard knows: refused with the list.
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-cpu-py38", "process"),
        (OWN_ECR, "docker"),
        ("busybox:latest", "docker"),
        ("127.0.0.1:5000/team/model@sha256:" + "a" * 64, "docker"),
    ],
)
def test_the_reference_chooses_when_nothing_is_asked(ref: str, runtime: str) -> None:
    assert Runtimes(Settings()).choose(ref) == runtime


def test_the_tag_wins_over_the_reference() -> None:
    runtimes = Runtimes(Settings())
    assert runtimes.choose("/work/examples/r-randomforest", "docker") == "docker"
    assert runtimes.choose(OWN_ECR, "process") == "process"


def test_the_server_default_takes_what_both_could_run() -> None:
    runtimes = Runtimes(Settings(runtime="docker"))
    assert runtimes.choose("/work/examples/r-randomforest") == "docker"
    assert runtimes.choose(OWN_ECR) == "docker"


def test_a_runtime_is_opened_once_and_only_when_asked_for(tmp_path: Path) -> None:
    runtimes = Runtimes(Settings(home=tmp_path))
    assert runtimes.opened() == []
    first = runtimes.named("process")
    assert isinstance(first, ProcessRuntime)
    assert runtimes.named("process") is first
    assert runtimes.opened() == [first]


def test_the_tag_names_a_known_runtime() -> None:
    assert requested_runtime([Tag(key="team", value="a")]) is None
    assert requested_runtime([Tag(key=RUNTIME_TAG, value="docker")]) == "docker"
    with pytest.raises(ValidationError, match="use one of process, docker"):
        requested_runtime([Tag(key=RUNTIME_TAG, value="podman")])


def test_a_relative_folder_is_the_process_runtimes_to_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`examples/r` is a valid image name too; naming a folder of the server's, it is refused
    as not absolute (see tests/security) rather than pulled."""
    (tmp_path / "examples" / "r").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    runtimes = Runtimes(Settings())
    assert runtimes.choose("examples/r") == "process"
    assert runtimes.choose("examples/other") == "docker"
