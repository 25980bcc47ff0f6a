"""The OCI registry behind the ECR API: the distribution registry the server runs itself (on
127.0.0.1, with its storage, password and port kept under <home>/registry), or one it is pointed
at with DOCKYARD_REGISTRY_URL."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import bcrypt
import httpx

from dockyard.contract.errors import RegistryUnavailable
from dockyard.settings import Settings

log = logging.getLogger(__name__)

READY_SECONDS = 15.0
STOP_SECONDS = 5.0
MISSING = (
    "the ECR API needs an image registry and this server has none: install the distribution "
    "registry (Debian and Ubuntu: apt-get install docker-registry; elsewhere the `registry` "
    "binary of distribution 2.8+, named by DOCKYARD_REGISTRY_COMMAND), or set "
    "DOCKYARD_REGISTRY_URL to a registry of yours"
)


@dataclass(frozen=True)
class RegistryAccess:
    """Where a registry answers and how to sign in to it."""

    url: str  # http://127.0.0.1:5000: the proxyEndpoint of GetAuthorizationToken
    username: str
    password: str | None
    # The registry's own storage, when dockyard runs it: what its HTTP API does not tell
    # (when a manifest was pushed, which manifests no tag names) is read from there.
    storage: Path | None = None

    @property
    def host(self) -> str:
        """`host:port`, as image references name the registry."""
        return urlsplit(self.url).netloc


def external_access(settings: Settings) -> RegistryAccess | None:
    if settings.registry_url is None:
        return None
    password = settings.registry_password
    return RegistryAccess(
        settings.registry_url.rstrip("/"),
        settings.registry_username,
        password.get_secret_value() if password is not None else None,
    )


class Registry:
    """The registry of this server: DOCKYARD_REGISTRY_URL's, or one dockyard runs, started on
    first use (and at server start once the home has one), restarted if it died, stopped by
    close()."""

    def __init__(self, settings: Settings) -> None:
        self._external = external_access(settings)
        self._managed = ManagedRegistry(settings)
        self._lock = threading.Lock()

    def access(self) -> RegistryAccess:
        """The registry, running; RegistryUnavailable when there is none to run."""
        if self._external is not None:
            return self._external
        with self._lock:
            return self._managed.running()

    def current(self) -> RegistryAccess | None:
        """The registry if it is running (or external); never starts one."""
        if self._external is not None:
            return self._external
        with self._lock:
            return self._managed.current()

    def start_if_used(self) -> None:
        """At server start: bring back the registry a previous server of this home ran, so
        images pushed to it can be pulled before any ECR request. A registry that cannot start
        does not stop the server: the ECR requests say why."""
        if self._external is not None or not self._managed.folder.exists():
            return
        try:
            self.access()
        except RegistryUnavailable as exc:
            log.warning("the image registry did not start: %s", exc)

    def close(self) -> None:
        with self._lock:
            self._managed.stop()


class ManagedRegistry:
    """One `docker-registry serve` process on 127.0.0.1, its files under <home>/registry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.home / "registry"
        self.config = self.folder / "config.yml"
        self.storage = self.folder / "storage"
        self._process: subprocess.Popen[bytes] | None = None
        self._access: RegistryAccess | None = None

    def current(self) -> RegistryAccess | None:
        alive = self._process is not None and self._process.poll() is None
        return self._access if alive else None

    def running(self) -> RegistryAccess:
        if self._process is not None and self._process.poll() is None:
            assert self._access is not None
            return self._access
        if self._process is not None:
            log.warning("the image registry exited (%s); starting it again", self._process.poll())
        command = shutil.which(self.settings.registry_command)
        if command is None:
            raise RegistryUnavailable(MISSING)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._reclaim()
        password = self._password()
        self._write_htpasswd(password)
        fixed = self.settings.registry_port
        port = fixed or self._kept_port() or _free_port()
        for _ in range(3):
            self._write_config(port)
            self._process = self._spawn(command)
            url = f"http://127.0.0.1:{port}"
            if self._ready(url):
                (self.folder / "port").write_text(f"{port}\n")
                self._access = RegistryAccess(url, "AWS", password, self.storage)
                log.info("image registry at %s (storage %s)", url, self.storage)
                return self._access
            taken = "address already in use" in self._log_tail()
            self.stop()
            if fixed or not taken:
                break
            # The port kept from an earlier start is someone else's now: repository URIs
            # given out before name the old one.
            log.warning("port %s of the image registry is taken; choosing another", port)
            port = _free_port()
        raise RegistryUnavailable(
            f"the image registry (`{command} serve {self.config}`) did not start: "
            f"{self._log_tail() or 'no output'} (its log: {self.folder / 'registry.log'})"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        _end(process.pid, lambda: process.poll() is not None)
        process.wait()
        (self.folder / "registry.pid").unlink(missing_ok=True)

    # -- its files -------------------------------------------------------------------------

    def _password(self) -> str:
        """Made once per home and kept (0600): tokens given out stay valid across restarts."""
        path = self.folder / "password"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(32)
        _write_private(path, password + "\n")
        return password

    def _write_htpasswd(self, password: str) -> None:
        # The distribution registry takes bcrypt entries only, and checks one on every request
        # (a push makes dozens): at bcrypt's default cost that is 250 ms each. The lowest cost
        # loses nothing here: the password is 32 random bytes, beyond guessing at any cost.
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        _write_private(self.folder / "htpasswd", f"AWS:{hashed}\n")

    def _write_config(self, port: int) -> None:
        # The http secret signs upload state between requests; one per start is enough for a
        # single registry process.
        _write_private(
            self.config,
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
            f"auth:\n  htpasswd:\n    realm: dockyard\n    path: {self.folder / 'htpasswd'}\n",
        )

    def _kept_port(self) -> int | None:
        try:
            return int((self.folder / "port").read_text())
        except (OSError, ValueError):
            return None

    def _log_tail(self) -> str:
        try:
            lines = (self.folder / "registry.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " / ".join(lines[-3:])

    # -- its process -----------------------------------------------------------------------

    def _spawn(self, command: str) -> subprocess.Popen[bytes]:
        with (self.folder / "registry.log").open("wb") as output:
            process = subprocess.Popen(
                [command, "serve", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # REGISTRY_* variables would override the config: none of the server's reach it.
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                # Its own session: a Ctrl-C meant for the server reaches the server, which stops
                # the registry in order.
                start_new_session=True,
            )
        (self.folder / "registry.pid").write_text(f"{process.pid}\n")
        return process

    def _ready(self, url: str) -> bool:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                answer = httpx.get(f"{url}/v2/", timeout=1.0)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            # 401 is an answer; the header says it is a registry's, not whatever else may
            # hold the port while the new registry fails to bind it.
            if "docker-distribution-api-version" in answer.headers:
                return True
            time.sleep(0.02)
        return False

    def _reclaim(self) -> None:
        """A registry left by a server of this home that was killed (kill -9) still holds the
        port: it is stopped, and a new one started, so its password and config are this
        server's. Only a process whose command line names this home's config is touched."""
        try:
            pid = int((self.folder / "registry.pid").read_text())
        except (OSError, ValueError):
            return
        if _serves(pid, self.config):
            log.info("stopping the image registry (pid %s) a previous server left", pid)
            _end(pid, lambda: not _serves(pid, self.config))
        (self.folder / "registry.pid").unlink(missing_ok=True)


def _serves(pid: int, config: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and str(config).encode() in argv


def _end(pid: int, ended: Callable[[], bool]) -> None:
    """SIGTERM, then SIGKILL after STOP_SECONDS; `ended()` tells when it is gone."""
    for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, STOP_SECONDS)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if ended():
                return
            time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    """Written whole at mode 0600 (never readable by others, not even for a moment)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
