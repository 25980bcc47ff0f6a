"""`dockyard console` as a user runs it: it starts the local server, prints the console's address
and which key to sign in with (the secret only when asked), and opens the browser BROWSER
names; the printed address and key really sign in."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.api.keys import read_credentials_file
from tests.api.console_client import csrf_of, sign_in
from tests.cli.test_cli_train import DOCKYARD, dockyard
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def env(clean_env: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "DOCKYARD_HOME": str(clean_env), "DOCKYARD_PORT": str(free_port())}
    yield env
    subprocess.run(
        [*DOCKYARD, "server", "stop"], env=env, check=False, capture_output=True, timeout=60
    )


def test_console_prints_where_and_how_to_sign_in(env: dict[str, str], clean_env: Path) -> None:
    done = dockyard(env, "console", "--no-browser")
    assert done.returncode == 0, done.stderr
    (key,) = read_credentials_file(clean_env / "credentials")  # made by the server it started
    url = f"http://127.0.0.1:{env['DOCKYARD_PORT']}/console/"
    assert done.stdout.splitlines() == [
        f"dockyard console: {url}",
        f"Sign in with access key id {key.access_key_id}",
        f"and its secret access key, in {clean_env / 'credentials'} (dockyard credentials "
        "prints it) (or: dockyard console --show-secret)",
    ]
    assert key.secret_access_key not in done.stdout + done.stderr

    # The address is the console, and the key printed signs in there.
    http = httpx.Client(base_url=url.removesuffix("/console/"))
    assert http.get("/console/", follow_redirects=False).status_code == 303
    assert sign_in(http, key.access_key_id, key.secret_access_key).status_code == 303
    assert csrf_of(http.get("/console/").text)

    shown = dockyard(env, "console", "--no-browser", "--show-secret")
    assert shown.returncode == 0, shown.stderr
    assert f"and secret access key {key.secret_access_key}" in shown.stdout


def test_console_opens_the_browser(env: dict[str, str], tmp_path: Path) -> None:
    """BROWSER is how Python's webbrowser is told which browser to run; here a script that
    records the address it was given."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    browser.chmod(0o755)
    done = dockyard({**env, "BROWSER": f"{browser} %s"}, "console")
    assert done.returncode == 0, done.stderr
    url = re.search(r"dockyard console: (\S+)", done.stdout)
    assert url is not None
    assert opened.read_text() == url.group(1)
    assert "No browser" not in done.stdout


def test_console_with_a_key_in_the_settings(env: dict[str, str]) -> None:
    """A server with an operator's key: the hint names the variable, not a file."""
    keyed = {
        **env,
        "DOCKYARD_ACCESS_KEY_ID": "AKIDOPERATOR",
        "DOCKYARD_SECRET_ACCESS_KEY": "operator-secret-0123456789",
    }
    done = dockyard(keyed, "console", "--no-browser")
    assert done.returncode == 0, done.stderr
    assert "Sign in with access key id AKIDOPERATOR" in done.stdout
    assert "in DOCKYARD_SECRET_ACCESS_KEY" in done.stdout
    assert "operator-secret" not in done.stdout
    base = done.stdout.split("dockyard console: ", 1)[1].split("/console/", 1)[0]
    http = httpx.Client(base_url=base)
    assert sign_in(http, "AKIDOPERATOR", "operator-secret-0123456789").status_code == 303
