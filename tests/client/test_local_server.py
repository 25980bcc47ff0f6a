"""Starting the background server: from an embedding host's environment it starts; when it
cannot, the error says why (the server's last lines), at once when it dies, at the deadline when
it hangs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dockyard.client import interpreter, local_server
from dockyard.client.interpreter import ServerPython
from dockyard.client.local_server import ServerError, start_background, stop_background
from dockyard.settings import Settings
from tests.client.test_interpreter import R_LIBRARY_PATH, RETICULATE_PYTHONPATH
from tests.conftest import free_port


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    return Settings(home=clean_env, port=free_port())


def fake_python(folder: Path, script: str) -> ServerPython:
    python = folder / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)
    return ServerPython(str(python), embedded=False)


def test_a_server_that_dies_at_start_is_reported_with_its_last_lines(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.home.mkdir(parents=True)
    settings.server_log.write_text("an earlier start's line\n")
    dying = fake_python(
        tmp_path,
        "echo 'Traceback (most recent call last):' >&2\n"
        "echo 'ImportError: _ssl.so: undefined symbol: _PyModule_Add' >&2\nexit 3",
    )
    monkeypatch.setattr(local_server, "server_python", lambda: dying)
    with pytest.raises(ServerError) as raised:
        start_background(settings)
    message = str(raised.value)
    assert f"({dying.executable} -m dockyard.api.server) exited at start with code 3:" in message
    assert "\n  ImportError: _ssl.so: undefined symbol: _PyModule_Add\n" in message
    assert "an earlier start's line" not in message
    assert str(settings.server_log) in message


def test_a_server_that_never_answers_is_stopped_at_the_deadline_and_reported(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    hanging = fake_python(
        tmp_path, f"echo $$ > {pid_file}\necho 'waiting for a lock' >&2\nsleep 60"
    )
    monkeypatch.setattr(local_server, "server_python", lambda: hanging)
    monkeypatch.setattr(local_server, "START_DEADLINE_SECONDS", 1.0)
    with pytest.raises(ServerError, match="did not answer within 1 s, and was stopped") as raised:
        start_background(settings)
    assert "\n  waiting for a lock\n" in str(raised.value)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_no_python_to_start_the_server_with_is_an_error_saying_what_to_do(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_server, "server_python", lambda: None)
    with pytest.raises(
        ServerError, match=r"cannot find the python executable .* DOCKYARD_ENDPOINT_URL"
    ):
        start_background(settings)


@pytest.mark.slow
def test_started_from_an_embedding_hosts_environment_the_server_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As from R through reticulate: R's LD_LIBRARY_PATH, reticulate's PYTHONPATH, and a process
    that is not the Python it embeds."""
    monkeypatch.setenv("LD_LIBRARY_PATH", R_LIBRARY_PATH)
    monkeypatch.setenv("PYTHONPATH", RETICULATE_PYTHONPATH)
    monkeypatch.setattr(interpreter, "_is_this_process", lambda executable: False)
    info = start_background(settings)
    try:
        environ = Path(f"/proc/{info.pid}/environ").read_bytes().split(b"\0")
        assert not any(v.startswith((b"LD_LIBRARY_PATH=", b"PYTHONHOME=")) for v in environ)
        assert f"PYTHONPATH={interpreter.package_root()}".encode() in environ
    finally:
        # The server is this process's child: reap it (stop_background waits on other processes).
        os.kill(info.pid, signal.SIGTERM)
        os.waitpid(info.pid, 0)
        stop_background(settings)
