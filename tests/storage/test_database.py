"""DOCKYARD_DATABASE_URL: the URLs taken and what they mean, and the messages for a database
that cannot be used (with the password never shown)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError as SettingsError

from dockyard.contract.errors import MetadataUnavailable
from dockyard.settings import Settings
from dockyard.storage.database import engine_url, shown_url
from dockyard.storage.metadata import MetadataStore
from tests.conftest import free_port
from tests.postgres import PostgresServer


def test_postgresql_urls_name_psycopg() -> None:
    assert (
        engine_url("postgresql://u:p@db:5432/dockyard")
        == "postgresql+psycopg://u:p@db:5432/dockyard"
    )
    assert engine_url("postgres://u@db/dockyard") == "postgresql+psycopg://u@db/dockyard"
    assert engine_url("postgresql+psycopg://u@db/d") == "postgresql+psycopg://u@db/d"
    assert engine_url("sqlite:////var/dockyard.db") == "sqlite:////var/dockyard.db"
    assert shown_url("postgresql://u:secret@db/d") == "postgresql://u:***@db/d"


def test_settings_take_sqlite_and_postgresql_urls_only(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/d.db", "postgresql://u@db/d", "postgres://u@db/d"):
        assert Settings(database_url=url).metadata_url == url
    assert Settings(home=tmp_path).metadata_url == f"sqlite:///{tmp_path}/dockyard.db"
    with pytest.raises(SettingsError, match="must name SQLite or PostgreSQL, not 'mysql'") as info:
        Settings(database_url="mysql://root:secret@db/dockyard")
    assert "secret" not in str(info.value.errors()[0]["msg"])


def test_an_unreachable_server_is_a_clear_error() -> None:
    url = f"postgresql://dockyard:secret@127.0.0.1:{free_port()}/dockyard"
    with pytest.raises(MetadataUnavailable) as info:
        MetadataStore(url)
    message = str(info.value)
    assert message.startswith(
        "cannot open the metadata database postgresql://dockyard:***@127.0.0.1:"
    )
    assert "Check DOCKYARD_DATABASE_URL" in message and "secret" not in message
    assert "\n" not in message


def test_a_missing_database_is_a_clear_error(postgres_server: PostgresServer) -> None:
    url = postgres_server.admin_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(MetadataUnavailable, match='database "no_such_database" does not exist'):
        MetadataStore(url)


def test_the_server_says_so_and_exits(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.admin_url.rsplit("/", 1)[0] + "/no_such_database"
    done = subprocess.run(
        [sys.executable, "-m", "dockyard.api.server"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
            "DOCKYARD_HOME": str(tmp_path / "home"),
            "DOCKYARD_PORT": str(free_port()),
            "DOCKYARD_DATABASE_URL": url,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "error: cannot open the metadata database" in done.stderr
    assert "Traceback" not in done.stderr


def test_one_server_per_postgresql_database(postgres_url: str) -> None:
    first = MetadataStore(postgres_url)
    first.claim()
    second = MetadataStore(postgres_url)
    with pytest.raises(MetadataUnavailable) as info:
        second.claim(wait_seconds=0.5)
    message = str(info.value)
    assert message.startswith("another dockyard server uses the metadata database postgresql://")
    assert "(session pid " in message and "from 127.0.0.1 since " in message
    assert "run one server per database" in message
    first.close()  # a stopped (or killed) server's lock goes with its connection
    third = MetadataStore(postgres_url)
    try:
        third.claim(wait_seconds=5)
    finally:
        third.close()


def test_sqlite_leaves_one_server_per_home_to_the_home(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dockyard.db'}"
    first, second = MetadataStore(url), MetadataStore(url)
    try:
        first.claim()
        second.claim(wait_seconds=0)
    finally:
        first.close()
        second.close()
