"""The registry process dockyard runs: its files, its port kept or moved, a fixed port taken,
and a registry that died started again."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.contract.errors import RegistryUnavailable
from dockyard.engine.registry import Registry
from dockyard.settings import Settings
from tests.conftest import free_port


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else holds (and answers nothing on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_files_port_kept_and_a_dead_registry_restarted(clean_env: Path) -> None:
    registry = Registry(Settings(home=clean_env))
    try:
        access = registry.access()
        folder = clean_env / "registry"
        for name in ("password", "htpasswd", "config.yml"):
            assert (folder / name).stat().st_mode & 0o777 == 0o600, name
        assert folder.stat().st_mode & 0o777 == 0o700
        assert (
            httpx.get(f"{access.url}/v2/", auth=("AWS", access.password or "")).status_code == 200
        )
        pid = int((folder / "registry.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while registry.current() is not None:  # current() never starts one
            assert time.monotonic() < deadline
            time.sleep(0.02)
        again = registry.access()  # noticed, and started again on the same port
        assert again.url == access.url and again.password == access.password
        assert int((folder / "registry.pid").read_text()) != pid
    finally:
        registry.close()
    assert registry.current() is None
    # The next server of the home: same port, same password.
    reopened = Registry(Settings(home=clean_env))
    try:
        reopened.start_if_used()
        current = reopened.current()
        assert current is not None and current.url == access.url
        assert current.password == access.password
    finally:
        reopened.close()


def test_a_kept_port_taken_by_another_program_moves(clean_env: Path, listener: int) -> None:
    (clean_env / "registry").mkdir(parents=True)
    (clean_env / "registry" / "port").write_text(f"{listener}\n")
    registry = Registry(Settings(home=clean_env))
    try:
        access = registry.access()
        assert access.host != f"127.0.0.1:{listener}"
        assert (clean_env / "registry" / "port").read_text().strip() == access.host.split(":")[1]
    finally:
        registry.close()


def test_a_configured_port_taken_is_a_clear_error(clean_env: Path, listener: int) -> None:
    registry = Registry(Settings(home=clean_env, registry_port=listener))
    try:
        with pytest.raises(RegistryUnavailable, match="address already in use"):
            registry.access()
    finally:
        registry.close()


def test_a_free_configured_port_is_used(clean_env: Path) -> None:
    port = free_port()
    registry = Registry(Settings(home=clean_env, registry_port=port))
    try:
        assert registry.access().host == f"127.0.0.1:{port}"
    finally:
        registry.close()
