"""`dockyard images build -t / list / tag / push / pull / rm` as a user runs them: real CLI
processes against podman's Docker-compatible service and a real registry (docker-registry) on
loopback, which podman is told to reach over plain HTTP by a registries.conf of the test's own."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.containers import Engine, busybox_image, running_registry, start_service

DOCKYARD = [sys.executable, "-m", "dockyard.cli.main"]
USERS = {"pusher": "a-password-for-the-test"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry with no auth."""
    with running_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry that takes one user, `pusher`, with the password in USERS."""
    with running_registry(tmp_path_factory.mktemp("auth-registry"), USERS) as address:
        yield address


@pytest.fixture(scope="module")
def engine(
    registry: str, auth_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """podman's service of this module's own, started with a registries.conf that marks the test
    registry insecure (plain HTTP): podman reads CONTAINERS_REGISTRIES_CONF when it starts, and
    the Docker API's push and pull have no per-request TLS switch."""
    folder = tmp_path_factory.mktemp("podman-registry")
    conf = folder / "registries.conf"
    conf.write_text(
        "".join(
            f'[[registry]]\nlocation = "{address}"\ninsecure = true\n'
            for address in (registry, auth_registry)
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
        service = start_service(folder)
        started = next(service)
    yield started
    service.close()


@pytest.fixture
def run(engine: Engine) -> Any:
    """`dockyard ...` in a child process with DOCKER_HOST naming the module's engine."""

    def dockyard(*args: str, stdin: str | None = None, docker_host: str | None = None) -> Any:
        env = {**os.environ, "DOCKER_HOST": docker_host or engine.docker_host}
        return subprocess.run(
            [*DOCKYARD, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
        )

    return dockyard


@pytest.fixture
def image_folder(engine: Engine, tmp_path: Path) -> Path:
    base = busybox_image(engine.client, tmp_path / "busybox")
    folder = tmp_path / "image"
    folder.mkdir()
    # Content of the test's own, so no other build shares its layers through the build cache.
    (folder / "message").write_text(f"built by dockyard images build {uuid.uuid4()}\n")
    (folder / "Dockerfile").write_text(
        f'FROM {base}\nCOPY message /message\nRUN echo ran > /ran\nCMD ["cat", "/message"]\n'
    )
    return folder


def assert_one_error_line(result: Any, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_build_list_tag_push_rm_pull(
    run: Any, engine: Engine, registry: str, image_folder: Path
) -> None:
    repository = f"localhost/dockyard-test/cli-{uuid.uuid4().hex[:10]}"
    local, remote = f"{repository}:v1", f"{registry}/{repository.rsplit('/', 1)[1]}:v1"
    try:
        built = run("images", "build", str(image_folder), "-t", local)
        assert built.returncode == 0, built.stderr
        assert "RUN echo ran > /ran" in built.stdout
        assert f"Built {local}" in built.stdout

        listed = run("images", "list", repository)
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.strip().splitlines()
        assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "SIZE", "CREATED"]
        assert row.split()[:3] == [repository, "v1", engine.client.images.get(local).short_id[7:]]
        assert row.endswith("just now") or "minute" in row

        assert run("images", "tag", local, remote).returncode == 0
        pushed = run("images", "push", remote)
        assert pushed.returncode == 0, pushed.stderr
        assert f"Pushed {remote}" in pushed.stdout
        # The registry itself now holds the tag (its own HTTP API, not the engine's word).
        name = remote.split("/", 1)[1].split(":")[0]
        with urllib.request.urlopen(f"http://{registry}/v2/{name}/tags/list") as response:
            assert json.loads(response.read())["tags"] == ["v1"]

        removed = run("images", "rm", remote, local)
        assert removed.returncode == 0, removed.stderr
        assert "Untagged" in removed.stdout
        assert repository not in run("images", "list").stdout
        assert not engine.client.images.list(name=remote)

        pulled = run("images", "pull", remote)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Pulled {remote}" in pulled.stdout
        output = engine.client.containers.run(remote, remove=True)
        assert output == (image_folder / "message").read_bytes()
        assert run("images", "rm", remote).returncode == 0
        assert not engine.client.images.list(name=remote)
    finally:
        for leftover in (local, remote):
            if engine.client.images.list(name=leftover):
                engine.client.images.remove(leftover, force=True)


def test_errors_are_one_line_that_says_what_to_do(
    run: Any, engine: Engine, registry: str, image_folder: Path, tmp_path: Path
) -> None:
    no_engine = run("images", "list", docker_host=f"unix://{tmp_path}/no-engine.sock")
    assert_one_error_line(no_engine, "no Docker engine answers at", "DOCKER_HOST")

    unknown = f"localhost/dockyard-test/unknown-{uuid.uuid4().hex[:10]}:v1"
    for command in (("rm", unknown), ("tag", unknown, "localhost/x:y"), ("push", unknown)):
        assert_one_error_line(run("images", *command), f"no image {unknown}", "images list")

    assert_one_error_line(
        run("images", "pull", f"{registry}/unknown-{uuid.uuid4().hex[:10]}:v1"), "pull of"
    )
    (tmp_path / "empty").mkdir()
    assert_one_error_line(
        run("images", "build", str(tmp_path / "empty"), "-t", "localhost/x:y"), "no Dockerfile"
    )

    (image_folder / "Dockerfile").write_text(
        (image_folder / "Dockerfile").read_text() + "RUN exit 3\n"
    )
    failed = run("images", "build", str(image_folder), "-t", unknown)
    assert_one_error_line(failed, "build of")
    assert "RUN exit 3" in failed.stdout

    # A registry that is not there: nothing listens on the port.
    closed_repository = f"127.0.0.1:{free_port()}/dockyard-test/refused"
    closed = f"{closed_repository}:v1"
    base = busybox_image(engine.client, tmp_path / "busybox")
    engine.client.images.get(base).tag(closed_repository, "v1")
    try:
        refused = run("images", "push", closed)
        assert_one_error_line(refused, "push of", "is the registry")
    finally:
        engine.client.images.remove(closed)

    lonely = run("images", "push", "--username", "u", closed)
    assert_one_error_line(lonely, "--username and --password-stdin go together")


def test_push_and_pull_with_credentials(
    run: Any, engine: Engine, auth_registry: str, tmp_path: Path
) -> None:
    base = busybox_image(engine.client, tmp_path / "busybox")
    repository = f"{auth_registry}/dockyard-test/auth-{uuid.uuid4().hex[:10]}"
    engine.client.images.get(base).tag(repository, "v1")
    name = f"{repository}:v1"
    ((user, password),) = USERS.items()
    try:
        anonymous = run("images", "push", name)
        assert_one_error_line(anonymous, "push of", f"log in to {auth_registry}")
        wrong = run("images", "push", "--username", user, "--password-stdin", name, stdin="no\n")
        assert_one_error_line(wrong, "push of", f"log in to {auth_registry}")

        pushed = run("images", "push", "--username", user, "--password-stdin", name, stdin=password)
        assert pushed.returncode == 0, pushed.stderr
        request = urllib.request.Request(
            f"http://{auth_registry}/v2/{repository.split('/', 1)[1]}/tags/list",
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            },
        )
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read())["tags"] == ["v1"]

        engine.client.images.remove(name)
        assert_one_error_line(run("images", "pull", name), "pull of", "log in to")
        pulled = run("images", "pull", "--username", user, "--password-stdin", name, stdin=password)
        assert pulled.returncode == 0, pulled.stderr
        assert engine.client.images.list(name=name)
    finally:
        if engine.client.images.list(name=name):
            engine.client.images.remove(name)
