"""The background server of this DOCKYARD_HOME: find it, start it, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from dockyard.api.keys import check_bind, ensure_home_key, home_id, keys_configured
from dockyard.client.interpreter import server_environment, server_python
from dockyard.contract.errors import DockyardError
from dockyard.settings import Settings

START_DEADLINE_SECONDS = 30.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 15


class ServerError(DockyardError):
    code = "ServerError"


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    url: str
    home: str

    @classmethod
    def read(cls, path: Path) -> ServerInfo | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), str(data["url"]), str(data["home"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "url": self.url, "home": self.home}))
        tmp.replace(path)


def healthy(url: str, home: Path | None = None) -> bool:
    """True when a dockyard server answers at `url` (and, if given, serves this home)."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=1.0)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    return home is None or response.json().get("home_id") == home_id(home)


def running_server(settings: Settings) -> ServerInfo | None:
    info = ServerInfo.read(settings.server_file)
    if info is not None and healthy(info.url, settings.home):
        return info
    return None


def start_background(settings: Settings) -> ServerInfo:
    """Start a server detached from this terminal (jobs keep running when the CLI exits)."""
    existing = running_server(settings)
    if existing is not None:
        return existing
    url = f"http://{settings.host}:{settings.port}"
    if healthy(url):
        raise ServerError(
            f"another dockyard server (with another DOCKYARD_HOME) answers at {url}: "
            "stop it, or set DOCKYARD_PORT to a free port"
        )
    check_bind(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    if not keys_configured(settings):
        ensure_home_key(settings)  # the server would make it too; the caller signs with it next
    python = server_python()
    if python is None:
        raise ServerError(
            f"cannot find the python executable of this Python environment to start the dockyard "
            f"server with (sys.executable is {sys.executable or 'empty'}, sys.prefix "
            f"{sys.prefix}): start `dockyard server` yourself and set DOCKYARD_ENDPOINT_URL to "
            "its address"
        )
    env = {
        **server_environment(python, os.environ),
        "DOCKYARD_HOME": str(settings.home),
        "DOCKYARD_PORT": str(settings.port),
        "DOCKYARD_HOST": settings.host,
    }
    argv = [python.executable, "-m", "dockyard.api.server"]
    with open(settings.server_log, "ab") as log_file:
        log_start = log_file.tell()  # the log is kept across starts: this start's lines follow
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerError(f"cannot start the dockyard server ({argv[0]}): {exc}") from exc
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"the dockyard server ({' '.join(argv)}) exited at start with code "
                f"{process.returncode}:\n{_log_tail(settings.server_log, log_start)}\n"
                f"(the whole log: {settings.server_log})"
            )
        info = running_server(settings)
        # The server file may still name a server that died (kill -9) on this same URL: only
        # the process just started counts.
        if info is not None and info.pid == process.pid:
            return info
        time.sleep(0.05)
    _stop(process)
    raise ServerError(
        f"the dockyard server ({' '.join(argv)}) did not answer within "
        f"{START_DEADLINE_SECONDS:g} s, and was stopped:\n"
        f"{_log_tail(settings.server_log, log_start)}\n(the whole log: {settings.server_log})"
    )


def _log_tail(path: Path, start: int) -> str:
    """The last lines the server wrote to its log since `start` (a traceback's end says why it
    died), indented, or a line saying it wrote nothing."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(start)
            text = log_file.read().decode(errors="replace")
    except OSError as exc:
        return f"  (cannot read its log: {exc})"
    lines = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
    if not lines:
        return "  (it wrote nothing)"
    return "\n".join(f"  {line}" for line in lines)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after a grace period; reaped either way."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_background(settings: Settings, timeout: float = 30.0) -> bool:
    info = ServerInfo.read(settings.server_file)
    if info is None:
        return False
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        settings.server_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A server this process started is its child: reap it, or it lingers as a zombie
        # that still answers kill(pid, 0).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.pid, os.WNOHANG)
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            settings.server_file.unlink(missing_ok=True)
            return True
        time.sleep(0.05)
    os.kill(info.pid, signal.SIGKILL)
    settings.server_file.unlink(missing_ok=True)
    return True
