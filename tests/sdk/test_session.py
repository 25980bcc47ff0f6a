"""dockyard.sdk.Session: the default bucket, uploads to the object store, the server's clients."""

from __future__ import annotations

from pathlib import Path

import pytest

import dockyard.sdk as sagemaker
from dockyard.settings import Settings
from dockyard.storage.stores import store_from_settings
from tests.conftest import RunningServer, make_image
from tests.sdk.conftest import stop_background_server
from tests.sdk.helpers import DEFAULT_BUCKET


def keys(bucket: str, prefix: str = "") -> list[str]:
    return [info.key for info in store_from_settings(Settings()).list_objects(bucket, prefix)]


def make_folder(root: Path) -> Path:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "train.csv").write_text("1,2\n")
    (root / "nested" / "part.csv").write_text("3,4\n")
    (root / "nested" / "deeper" / "more.csv").write_text("5,6\n")
    return root


def test_default_bucket_is_named_after_region_and_account_and_created() -> None:
    session = sagemaker.Session()
    assert session.default_bucket() == DEFAULT_BUCKET
    assert store_from_settings(Settings()).bucket_exists(DEFAULT_BUCKET)
    assert session.default_output_path() == f"s3://{DEFAULT_BUCKET}/"
    assert session.boto_region_name == "us-east-1"


def test_default_bucket_and_prefix_given_to_the_constructor() -> None:
    session = sagemaker.Session(default_bucket="my-bucket", default_bucket_prefix="/team/")
    assert session.default_bucket() == "my-bucket"
    assert session.default_output_path() == "s3://my-bucket/team/"


def test_upload_data_of_a_folder_keeps_relative_paths_and_returns_the_prefix(
    tmp_path: Path,
) -> None:
    folder = make_folder(tmp_path / "data")
    uri = sagemaker.Session().upload_data(str(folder), key_prefix="iris/train")
    assert uri == f"s3://{DEFAULT_BUCKET}/iris/train"
    assert keys(DEFAULT_BUCKET) == [
        "iris/train/nested/deeper/more.csv",
        "iris/train/nested/part.csv",
        "iris/train/train.csv",
    ]


def test_upload_data_of_a_file_returns_the_object_itself(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data")
    uri = sagemaker.Session().upload_data(folder / "train.csv", bucket="demo", key_prefix="/x/y/")
    assert uri == "s3://demo/x/y/train.csv"
    assert keys("demo") == ["x/y/train.csv"]


def test_upload_data_defaults_to_the_data_prefix_under_the_bucket_prefix(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data")
    session = sagemaker.Session(default_bucket_prefix="team")
    assert session.upload_data(str(folder / "train.csv")) == (
        f"s3://{DEFAULT_BUCKET}/team/data/train.csv"
    )


def test_upload_data_of_a_missing_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        sagemaker.Session().upload_data(str(tmp_path / "nope"))


def test_download_data_brings_a_prefix_back(tmp_path: Path) -> None:
    session = sagemaker.Session()
    session.upload_data(str(make_folder(tmp_path / "data")), bucket="demo", key_prefix="d")
    files = session.download_data(str(tmp_path / "back"), "demo", "d")
    assert sorted(Path(f).relative_to(tmp_path / "back").as_posix() for f in files) == [
        "nested/deeper/more.csv",
        "nested/part.csv",
        "train.csv",
    ]
    assert (tmp_path / "back" / "nested" / "part.csv").read_text() == "3,4\n"


def test_get_execution_role_is_a_fixed_dummy_role() -> None:
    assert sagemaker.get_execution_role() == "arn:aws:iam::000000000000:role/dockyard"
    assert sagemaker.session.get_execution_role(sagemaker.Session()) == (
        sagemaker.get_execution_role()
    )


def test_local_data_is_read_in_place_unless_the_server_is_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sagemaker.Session().server_reads_local_files
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", "http://127.0.0.1:1")
    assert not sagemaker.Session().server_reads_local_files


def test_explicit_dockyard_settings_win_over_the_environment(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "elsewhere", region="eu-west-1", account_id="123456789012")
    session = sagemaker.Session(dockyard_settings=settings)
    try:
        # The bucket is made through the S3 API of that home's own background server.
        assert session.default_bucket() == "sagemaker-eu-west-1-123456789012"
    finally:
        stop_background_server(settings)
    assert (tmp_path / "elsewhere" / "s3" / "sagemaker-eu-west-1-123456789012").is_dir()


@pytest.mark.slow
def test_the_sagemaker_client_talks_to_the_configured_server(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    session = sagemaker.Session()
    assert session.sagemaker_client.list_training_jobs()["TrainingJobSummaries"] == []
    assert session.sagemaker_client.meta.endpoint_url == server.url


@pytest.mark.slow
def test_a_given_sagemaker_client_names_the_server_for_logs_too(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = sagemaker.Session(sagemaker_client=server.client("sagemaker"))
    assert session.client.endpoint_url == server.url
    assert not session.server_reads_local_files
    image = make_image(tmp_path / "hello", "print('hello from the job')")
    estimator = sagemaker.estimator.Estimator(str(image), sagemaker_session=session)
    estimator.fit(job_name="given-1", logs=False)
    assert "hello from the job" not in capsys.readouterr().out
    described = session.logs_for_job("given-1")
    out = capsys.readouterr().out
    assert "hello from the job" in out and "Completed - Training job completed" in out
    assert described["TrainingJobStatus"] == "Completed"
    assert "Training seconds" not in out  # only when waiting, as in the SDK
