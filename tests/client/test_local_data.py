"""Local data and code named in a request: read in place by the local server, uploaded through
the S3 API (a real server's) for a server named by DOCKYARD_ENDPOINT_URL."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from dockyard.client import Client
from dockyard.client.local_data import server_code_uri, server_data_uri
from tests.conftest import RunningServer

DEFAULT_BUCKET = "sagemaker-us-east-1-000000000000"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("1\n")
    (folder / "nested" / "b.csv").write_text("2\n")
    return folder


def remote_client(server: RunningServer) -> Client:
    return Client(server.settings.model_copy(update={"endpoint_url": server.url}))


def test_the_local_server_reads_local_paths_in_place(
    server: RunningServer, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data.parent)
    client = Client(server.settings)  # no endpoint URL: the background server of this home
    assert client.server_reads_local_files
    assert server_data_uri(client, "data", "job/input/train", "--input") == f"file://{data}"
    assert server_code_uri(client, "data", "job/source") == f"file://{data}"
    assert server_data_uri(client, "s3://b/k", "unused", "--input") == "s3://b/k"
    assert list(server.settings.store_root.glob("*")) == []  # nothing was uploaded


def test_a_server_elsewhere_gets_local_data_through_its_s3_api(
    server: RunningServer, data: Path
) -> None:
    client = remote_client(server)
    assert not client.server_reads_local_files
    folder_uri = server_data_uri(client, str(data), "job/input/train", "--input")
    # A folder's prefix ends with `/`: `job/input/train` would also take in `job/input/train2/`.
    assert folder_uri == f"s3://{DEFAULT_BUCKET}/job/input/train/"
    store = server.settings.store_root / DEFAULT_BUCKET
    assert (store / "job/input/train/a.csv").read_text() == "1\n"
    assert (store / "job/input/train/nested/b.csv").read_text() == "2\n"
    file_uri = server_data_uri(client, f"file://{data}/a.csv", "job/model", "--model-data")
    assert file_uri == f"s3://{DEFAULT_BUCKET}/job/model/a.csv"
    assert (store / "job/model/a.csv").read_text() == "1\n"


def test_a_server_elsewhere_gets_a_source_folder_as_sourcedir_tar_gz(
    server: RunningServer, data: Path
) -> None:
    client = remote_client(server)
    uri = server_code_uri(client, str(data), "job/source")
    assert uri == f"s3://{DEFAULT_BUCKET}/job/source/sourcedir.tar.gz"
    with tarfile.open(
        server.settings.store_root / DEFAULT_BUCKET / "job/source/sourcedir.tar.gz"
    ) as tar:
        assert sorted(tar.getnames()) == ["a.csv", "nested", "nested/b.csv"]
    # An archive of the caller's goes up as it is.
    archive = data.parent / "code.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(data / "a.csv", arcname="a.csv")
    given = server_code_uri(client, str(archive), "job2/source")
    assert given == f"s3://{DEFAULT_BUCKET}/job2/source/code.tar.gz"
    stored = server.settings.store_root / DEFAULT_BUCKET / "job2/source/code.tar.gz"
    assert stored.read_bytes() == archive.read_bytes()


def test_a_missing_local_path_is_named(server: RunningServer, tmp_path: Path) -> None:
    client = remote_client(server)
    with pytest.raises(ValueError, match=r"--input train .*/nowhere does not exist"):
        server_data_uri(client, str(tmp_path / "nowhere"), "job/input/train", "--input train")
    with pytest.raises(ValueError, match=r"source dir .*/nowhere does not exist"):
        server_code_uri(client, str(tmp_path / "nowhere"), "job/source")
