"""`kill -9` of a server whose registry runs: the next server on the same home stops the
registry the killed one left and starts its own on the same port, with the images still there;
stopping that server stops its registry, and no registry process of the home is left."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from dockyard.api.keys import face_key
from dockyard.client.local_server import start_background
from dockyard.settings import Settings
from tests.api.ecr_images import login, push
from tests.conftest import free_port


def _ecr(url: str, settings: Settings) -> Any:
    key = face_key(settings)
    return boto3.client(
        "ecr",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )


def _registries_of(home: Path) -> set[int]:
    """Live processes serving this home's registry config."""
    config = str(home / "registry" / "config.yml").encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if config in argv and stat[stat.rindex(")") + 2] != "Z":
            found.add(int(entry))
    return found


def _wait(condition: Callable[[], object], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_then_a_new_server_replaces_the_stale_registry(clean_env: Path) -> None:
    settings = Settings(home=clean_env, port=free_port())
    first = start_background(settings)
    try:
        ecr = _ecr(first.url, settings)
        uri = ecr.create_repository(repositoryName="kept")["repository"]["repositoryUri"]
        url, auth = login(ecr)
        pushed = push(url, auth, "kept", "latest", "survives")
        stale = _registries_of(clean_env)
        assert len(stale) == 1
    finally:
        os.kill(first.pid, signal.SIGKILL)
    # The registry is in a session of its own: it outlives the killed server...
    time.sleep(0.2)
    assert _registries_of(clean_env) == stale

    second = start_background(settings)
    try:
        assert second.pid != first.pid
        # ...until the next server of the home starts: it stops that one and runs its own,
        # at once (the home has a registry), on the same port: repository URIs stay good.
        _wait(lambda: _registries_of(clean_env) - stale, "the new server started no registry")
        assert not _registries_of(clean_env) & stale
        assert len(_registries_of(clean_env)) == 1
        ecr = _ecr(second.url, settings)
        repository = ecr.describe_repositories()["repositories"][0]
        assert repository["repositoryUri"] == uri
        (detail,) = ecr.describe_images(repositoryName="kept")["imageDetails"]
        assert detail["imageDigest"] == pushed.digest and detail["imageTags"] == ["latest"]
        # The password is the home's: a login made before the kill still works.
        assert login(ecr) == (url, auth)
    finally:
        os.kill(second.pid, signal.SIGTERM)
    _wait(lambda: not _registries_of(clean_env), "the stopped server left its registry running")
