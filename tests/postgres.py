"""A real PostgreSQL server for tests, and a fresh database on it for each test that asks.

Fixtures (tests/conftest.py loads this module as a plugin, so any test may use them):
- `postgres_url`: a new, empty database for this test, as a `postgresql://` URL that
  `DOCKYARD_DATABASE_URL` takes (dropped after the test). The usual way in.
- `postgres_server`: the session's server (a `PostgresServer`); `.create_database()` gives
  another fresh database's URL, for a test that needs several.

The server is this session's own cluster: Debian's `postgresql` package (scripts/setup.sh
installs it), `initdb` into a temporary folder, run as the `postgres` system user when the
tests run as root (PostgreSQL refuses to run as root), listening on 127.0.0.1 at a free port
with trust authentication, stopped when the session ends. Its databases sort text as en-US
does (ICU), as a team's database usually does, so that a query relying on SQLite's byte order
shows up here. With `DOCKYARD_TEST_DATABASE_URL` set (a URL of any database on a server whose
user may CREATE DATABASE), that server is used instead. Without PostgreSQL installed these
fixtures fail: run scripts/setup.sh."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import free_port

TEST_SERVER_VARIABLE = "DOCKYARD_TEST_DATABASE_URL"
START_DEADLINE_SECONDS = 60.0
SERVER_USER = "postgres"  # the system user Debian's package creates
ROLE = "dockyard"  # the cluster's superuser, whom the URLs name


def postgres_bin() -> Path:
    """The folder with initdb and postgres: the newest under /usr/lib/postgresql (Debian keeps
    them off PATH), else PATH's."""
    found = sorted(
        (Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    found = [folder for folder in found if (folder / "postgres").exists()]
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb is not None and Path(initdb).with_name("postgres").exists():
        return Path(initdb).parent
    pytest.fail(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH): "
        "run scripts/setup.sh, which installs Debian's postgresql package, or set "
        f"{TEST_SERVER_VARIABLE} to a PostgreSQL server's URL",
        pytrace=False,
    )


class PostgresServer:
    """A PostgreSQL server reached as a user who may create databases."""

    def __init__(self, admin_url: str) -> None:
        # A database to connect to for CREATE DATABASE, in the form psycopg takes.
        self.admin_url = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._created: list[str] = []

    def create_database(self) -> str:
        """A new empty database; its URL in the form DOCKYARD_DATABASE_URL takes."""
        name = f"dockyard_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return _with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        """Drop a database this server made, whoever is still connected to it."""
        name = url.rsplit("/", 1)[1].partition("?")[0]
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(self._created):
            self.drop_database(_with_database(self.admin_url, name))


def _with_database(url: str, name: str) -> str:
    base, _, rest = url.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def _server_user() -> list[str]:
    """The argv prefix that runs a PostgreSQL program: as the `postgres` user when we are
    root (setpriv is util-linux's), as ourselves otherwise; it dies with this process."""
    prefix = ["setpriv", "--pdeathsig=SIGINT"]
    if os.geteuid() != 0:
        return prefix
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(
            f"PostgreSQL refuses to run as root and there is no {SERVER_USER!r} user: run "
            "scripts/setup.sh (Debian's postgresql package creates the user)",
            pytrace=False,
        )
    return [*prefix, f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups"]


class _Cluster:
    """This session's own PostgreSQL: initdb into a temporary folder, then the server process."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.version = int(self.bin.parent.name) if self.bin.parent.name.isdigit() else 0
        self.as_server = _server_user()
        # Under /tmp, not pytest's temporary folders: those are root's alone, and the server
        # runs as another user.
        self.folder = Path(tempfile.mkdtemp(prefix="dockyard-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVER_USER, SERVER_USER)
        self.port = free_port()
        self.log = self.folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        locale = (
            # A team's database sorts by a locale, not by bytes (PostgreSQL 15 and newer).
            ["--locale-provider=icu", "--icu-locale=en-US"] if self.version >= 15 else []
        )
        subprocess.run(
            [*self.as_server, str(self.bin / "initdb"), "--pgdata", str(self.folder / "data"),
             "--username", ROLE, "--auth=trust", "--encoding=UTF8", "--no-sync", *locale],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*self.as_server, str(self.bin / "postgres"), "-D", str(self.folder / "data"),
                 "-p", str(self.port), "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1",
                 # A test cluster: nothing to keep across a crash of the machine.
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=300"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        url = f"postgresql://{ROLE}@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"PostgreSQL exited at start:\n{self.log.read_text()}", pytrace=False)
            try:
                psycopg.connect(url, connect_timeout=2).close()
                return url
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"PostgreSQL did not accept connections within "
                        f"{START_DEADLINE_SECONDS:g} s:\n{self.log.read_text()}",
                        pytrace=False,
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients disconnected
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL: DOCKYARD_TEST_DATABASE_URL's server, else our own cluster.
    (Session fixtures are set up before the autouse fixture that clears DOCKYARD_*.)"""
    external = os.environ.get(TEST_SERVER_VARIABLE)
    if external:
        server = PostgresServer(external)
        try:
            yield server
        finally:
            server.drop_all()
        return
    cluster = _Cluster()
    try:
        server = PostgresServer(cluster.start())
        yield server
        server.drop_all()
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (postgresql://... URL)."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)
