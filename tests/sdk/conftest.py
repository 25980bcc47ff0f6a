"""Fixtures of the SDK tests: the server notebook code talks to — one named by
DOCKYARD_ENDPOINT_URL, or the background server the SDK starts itself."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.client.local_server import ServerInfo
from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port


@pytest.fixture
def sdk_server(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    return server


@pytest.fixture(autouse=True)
def no_background_server_left(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test whose notebook code reaches the object store (upload_data, code with
    dependencies) starts the SDK's background server, as a notebook would: on a port of its own,
    stopped when the test ends."""
    monkeypatch.setenv("DOCKYARD_PORT", str(free_port()))
    yield
    if "DOCKYARD_ENDPOINT_URL" not in os.environ:
        stop_background_server(Settings())


@pytest.fixture
def background_server(monkeypatch: pytest.MonkeyPatch, shared_envs_dir: Path) -> Iterator[Settings]:
    """No DOCKYARD_ENDPOINT_URL: the SDK starts its own background server, as in a notebook;
    framework environments come from the shared folder."""
    monkeypatch.setenv("DOCKYARD_PORT", str(free_port()))
    monkeypatch.setenv("DOCKYARD_STOP_GRACE_SECONDS", "1")
    monkeypatch.setenv("DOCKYARD_ENVS_DIR", str(shared_envs_dir))
    settings = Settings()
    yield settings
    stop_background_server(settings)


def stop_background_server(settings: Settings) -> None:
    # The server is this process's child, so this process must reap it (stop_background, meant
    # for another process, would wait on the zombie until its deadline).
    info = ServerInfo.read(settings.server_file)
    if info is None:
        return
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while os.waitpid(info.pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(info.pid, signal.SIGKILL)
        time.sleep(0.05)
    settings.server_file.unlink(missing_ok=True)
