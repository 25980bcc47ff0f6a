"""Issue 8, SigV4 keys: the local server makes its key pair and every face signs with it, with
no setup; a server others can reach does not start without keys its operator chose."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.api.keys import (
    KeyRing,
    KeysError,
    ensure_home_key,
    face_key,
    home_credentials_file,
    read_credentials_file,
    server_keys,
)
from dockyard.settings import Settings
from tests.conftest import free_port

DOCKYARD = [sys.executable, "-m", "dockyard.cli.main"]
AWS = Path(sys.executable).parent / "aws"
SERVER = [sys.executable, "-m", "dockyard.api.server"]


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_env(clean_env: Path) -> object:
    env = {**os.environ, "DOCKYARD_HOME": str(clean_env), "DOCKYARD_PORT": str(free_port())}
    yield env
    run([*DOCKYARD, "server", "stop"], env)


def exports(text: str) -> dict[str, str]:
    """The `export NAME=VALUE` lines `dockyard credentials` prints (values need no quoting)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value
    return found


def test_the_cli_and_the_aws_cli_work_with_no_setup(cli_env: dict[str, str]) -> None:
    home = Path(cli_env["DOCKYARD_HOME"])
    listed = run([*DOCKYARD, "jobs", "list", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"TrainingJobSummaries": []}
    credentials_file = home_credentials_file(Settings(home=home))
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600

    printed = run([*DOCKYARD, "credentials"], cli_env)
    assert printed.returncode == 0, printed.stderr
    values = exports(printed.stdout)
    assert set(values) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    }
    assert values["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{cli_env['DOCKYARD_PORT']}"
    assert read_credentials_file(credentials_file)[0].access_key_id == values["AWS_ACCESS_KEY_ID"]

    # The aws CLI, with only what `dockyard credentials` printed (and no dockyard variable).
    aws_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DOCKYARD_"))}
    aws_env["HOME"] = str(home.parent)  # no ~/.aws of this machine's user
    listed = run(
        [str(AWS), "--endpoint-url", values["AWS_ENDPOINT_URL"], "sagemaker",
         "list-training-jobs"],
        {**aws_env, **values},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"TrainingJobSummaries": []}
    logs = run(
        [
            str(AWS),
            "logs",
            "describe-log-streams",
            "--log-group-name",
            "/aws/sagemaker/TrainingJobs",
        ],
        {**aws_env, **values},
    )
    assert logs.returncode == 0, logs.stderr
    refused = run(
        [str(AWS), "sagemaker", "list-training-jobs"],
        {**aws_env, **values, "AWS_SECRET_ACCESS_KEY": "wrong"},
    )
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr

    # The profile form, in the files the aws CLI and boto3 read.
    profile = run([*DOCKYARD, "credentials", "--profile"], cli_env)
    assert profile.returncode == 0, profile.stderr
    config_part, _, credentials_part = profile.stdout.partition("# Add to ~/.aws/credentials:")
    aws_dir = home.parent / ".aws"
    aws_dir.mkdir()
    (aws_dir / "config").write_text(config_part)
    (aws_dir / "credentials").write_text(credentials_part)
    by_profile = run(
        [str(AWS), "--profile", "dockyard", "sagemaker", "list-training-jobs"], aws_env
    )
    assert by_profile.returncode == 0, by_profile.stderr
    assert json.loads(by_profile.stdout) == {"TrainingJobSummaries": []}


def test_the_sdk_works_with_no_setup(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`import dockyard.sdk as sagemaker` in a notebook: no keys anywhere, a background server."""
    import dockyard.sdk as sagemaker
    from dockyard.client.local_server import stop_background

    monkeypatch.setenv("DOCKYARD_PORT", str(free_port()))
    session = sagemaker.Session()
    try:
        listed = session.sagemaker_client.list_training_jobs()
        assert listed["TrainingJobSummaries"] == []
        streams = session.client.logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs"
        )
        assert streams["logStreams"] == []
        with pytest.raises(ClientError) as caught:
            session.sagemaker_runtime_client.invoke_endpoint(EndpointName="none", Body=b"1")
        assert caught.value.response["Error"]["Code"] == "ValidationError"  # signed, got through
    finally:
        stop_background(Settings())


def test_a_face_pointed_elsewhere_uses_the_configured_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_ACCESS_KEY_ID", "AKIDTEAM")
    monkeypatch.setenv("DOCKYARD_SECRET_ACCESS_KEY", "team-secret")
    ensure_home_key(Settings())  # present, but the settings come first
    assert face_key(Settings()).access_key_id == "AKIDTEAM"
    monkeypatch.delenv("DOCKYARD_SECRET_ACCESS_KEY")
    with pytest.raises(KeysError, match="DOCKYARD_SECRET_ACCESS_KEY"):
        face_key(Settings())


def test_no_keys_at_all_says_what_to_set(clean_env: Path) -> None:
    with pytest.raises(KeysError, match="DOCKYARD_ACCESS_KEY_ID"):
        face_key(Settings(endpoint_url="http://elsewhere:8411"))


def serve(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        SERVER, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_healthy(url: str, process: subprocess.Popen[str], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no server at {url} within {deadline} s")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    return process.communicate(timeout=30)[0]


def test_a_server_on_every_address_needs_configured_keys(clean_env: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DOCKYARD_HOST": "0.0.0.0", "DOCKYARD_PORT": str(port)}

    refused = run(SERVER, env)
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0" in refused.stderr
    assert "DOCKYARD_ACCESS_KEY_ID" in refused.stderr and "DOCKYARD_KEYS_FILE" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not home_credentials_file(Settings()).exists()  # no generated pair stands in
    cli = run([*DOCKYARD, "server", "--host", "0.0.0.0", "--port", str(port)], os.environ.copy())
    assert cli.returncode == 1 and cli.stderr.startswith("error: refusing to listen on 0.0.0.0")
    background = run([*DOCKYARD, "server", "start"], env)
    assert background.returncode == 1 and "DOCKYARD_ACCESS_KEY_ID" in background.stderr

    # Keys of two users in a keys file (the AWS credentials format), and one pair in settings.
    keys_file = tmp_path / "users"
    keys_file.write_text(
        "[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = alice-secret\n\n"
        "[bob]\naws_access_key_id = AKIDBOB\naws_secret_access_key = bob-secret\n"
    )
    configured = {
        **env,
        "DOCKYARD_KEYS_FILE": str(keys_file),
        "DOCKYARD_ACCESS_KEY_ID": "AKIDOPS",
        "DOCKYARD_SECRET_ACCESS_KEY": "ops-secret",
    }
    process = serve(configured)
    url = f"http://127.0.0.1:{port}"
    output = ""
    try:
        wait_healthy(url, process)
        for key_id, secret in (
            ("AKIDALICE", "alice-secret"),
            ("AKIDBOB", "bob-secret"),
            ("AKIDOPS", "ops-secret"),
        ):
            sagemaker = boto3.client(
                "sagemaker", endpoint_url=url, region_name="eu-west-1",
                aws_access_key_id=key_id, aws_secret_access_key=secret,
            )  # fmt: skip
            assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
        crossed = boto3.client(
            "sagemaker", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="AKIDALICE", aws_secret_access_key="bob-secret",
        )  # fmt: skip
        with pytest.raises(ClientError) as caught:
            crossed.list_training_jobs()
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        output = stop(process)
    assert "signed by the keys of: alice, bob, default" in output
    assert "alice-secret" not in output and "ops-secret" not in output
    assert not home_credentials_file(Settings()).exists()


def test_loopback_addresses_need_no_configured_keys(clean_env: Path) -> None:
    from dockyard.api.keys import check_bind, is_loopback

    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"):
        assert is_loopback(host), host
        check_bind(Settings(host=host))
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com", "localhost.evil.example"):
        assert not is_loopback(host), host
        with pytest.raises(KeysError, match="refusing to listen"):
            check_bind(Settings(host=host))


def test_the_credentials_file_is_0600_and_never_rewritten(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    path = home_credentials_file(settings)
    old_umask = os.umask(0)  # even with a umask that lets everyone read new files
    try:
        first = ensure_home_key(settings)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
    assert ensure_home_key(settings) == first
    assert server_keys(settings).get(first.access_key_id) == first
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert [p.name for p in path.parent.iterdir()] == ["credentials"]  # no temporary left


def test_makers_racing_for_the_credentials_file_agree(clean_env: Path) -> None:
    settings = Settings()
    got: list[str] = []
    barrier = threading.Barrier(8)

    def make() -> None:
        barrier.wait()
        got.append(ensure_home_key(settings).access_key_id)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and len(set(got)) == 1
    assert [p.name for p in settings.home.iterdir()] == ["credentials"]


def test_a_server_started_in_the_background_and_a_face_of_another_process_agree(
    cli_env: dict[str, str],
) -> None:
    """The CLI starts the server; the server does not remake the pair the CLI already made."""
    home = Path(cli_env["DOCKYARD_HOME"])
    assert run([*DOCKYARD, "server", "start"], cli_env).returncode == 0
    path = home_credentials_file(Settings(home=home))
    made = path.read_bytes()
    assert run([*DOCKYARD, "server", "stop"], cli_env).returncode == 0
    listed = run([*DOCKYARD, "jobs", "list", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    assert path.read_bytes() == made


def test_keys_files_are_read_strictly(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("[alice]\naws_access_key_id = AKIDALICE\n")
    with pytest.raises(KeysError, match=r"\[alice\].*aws_secret_access_key"):
        read_credentials_file(keys_file)
    keys_file.write_text("not an ini file\n")
    with pytest.raises(KeysError, match="AWS credentials format"):
        read_credentials_file(keys_file)
    with pytest.raises(KeysError, match="cannot read"):
        read_credentials_file(tmp_path / "missing")
    keys_file.write_text(
        "[a]\naws_access_key_id = SAME\naws_secret_access_key = one\n"
        "[b]\naws_access_key_id = SAME\naws_secret_access_key = two\n"
    )
    with pytest.raises(KeysError, match="twice"):
        KeyRing(read_credentials_file(keys_file))
