"""Issue 8, part 6: file:// URIs and local paths are read and written only under the folders
DOCKYARD_LOCAL_PATHS names, never in hidden, system or dockyard folders; refused at the API
with a ValidationException that names the setting, and outputs written without following
links planted in the output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.contract.errors import ValidationError
from dockyard.engine.local_paths import LocalPaths
from dockyard.engine.model_data import stage_model_data
from dockyard.settings import Settings
from dockyard.storage.stores import open_object_store
from tests.api.test_transform_jobs_api import make_line_model, transform_request, wait_for_transform
from tests.conftest import (
    RunningServer,
    channel,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)

SETTING = "DOCKYARD_LOCAL_PATHS"


def _refused(call: Any, **request: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**request)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Message"])


# -- the setting ------------------------------------------------------------------------------


def test_the_setting_is_colon_separated_like_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "/data/a:~/b::/srv/c")
    assert Settings().local_paths == [Path("/data/a"), Path.home() / "b", Path("/srv/c")]
    monkeypatch.setenv(SETTING, "")
    assert Settings().local_paths == []
    monkeypatch.delenv(SETTING)
    assert Settings().local_paths == [Path.home()]
    monkeypatch.setenv(SETTING, "relative/folder")
    with pytest.raises(ValueError, match="not an absolute path"):
        Settings()


def test_system_hidden_and_dockyard_folders_are_refused_under_any_root(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "data" / ".cache").mkdir(parents=True)
    (home / "data" / "x.csv").write_text("x")
    (home / ".dockyard").mkdir()
    everything = LocalPaths.of([Path("/")], [home / ".dockyard"])
    for system in ("/etc", "/etc/cron.d", "/usr/lib", "/bin", "/var/spool", "/proc/self", "/"):
        assert everything.problem(Path(system).resolve()) is not None, system
    mine = LocalPaths.of([home], [home / ".dockyard"])
    assert mine.readable("input", home / "data" / "x.csv") == (home / "data" / "x.csv").resolve()
    with pytest.raises(ValidationError, match=r"hidden folder or file \(\.ssh\)"):
        mine.readable("input", home / ".ssh")
    with pytest.raises(ValidationError, match=r"hidden folder or file \(\.cache\)"):
        mine.writable("S3OutputPath", home / "data" / ".cache" / "out")
    with pytest.raises(ValidationError, match="dockyard folder"):
        mine.readable("input", home / ".dockyard")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValidationError, match=f"outside the folders {SETTING} allows"):
        mine.readable("input", tmp_path / "elsewhere")
    # Refused before it is looked for: the error does not tell whether it exists.
    with pytest.raises(ValidationError, match=f"outside the folders {SETTING} allows"):
        mine.readable("input", tmp_path / "no-such-thing")
    # A hidden folder named as a root itself is the operator's choice.
    assert LocalPaths.of([home / "data" / ".cache"], []).problem(home / "data" / ".cache") is None
    # A link that leads out of the roots is judged by where it leads.
    (home / "data" / "etc").symlink_to("/etc")
    with pytest.raises(ValidationError, match="system folder"):
        mine.readable("input", home / "data" / "etc")


def test_model_data_is_checked_again_where_it_is_used(tmp_path: Path) -> None:
    archive = tmp_path / "outside" / "model.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"")
    store = open_object_store("local", root=tmp_path / "s3")
    only = LocalPaths.of([tmp_path / "allowed"], [])
    with pytest.raises(ValidationError, match=SETTING):
        stage_model_data(f"file://{archive}", store, tmp_path / "m", tmp_path / "s", only)


# -- at the API -------------------------------------------------------------------------------


def test_transform_outputs_into_system_or_hidden_folders_are_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    # A model that never starts: even where the refusal is missing, nothing gets written.
    image = make_image(tmp_path / "broken", "import sys\nsys.exit(1)\n")
    sagemaker.create_model(ModelName="broken", PrimaryContainer={"Image": str(image)})
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,a\n")
    for output in ("file:///etc/cron.d", "file:///root/.ssh", f"file://{tmp_path}/.hidden"):
        request = transform_request(f"t{abs(hash(output))}", source, tmp_path / "unused")
        request["ModelName"] = "broken"
        request["TransformOutput"]["S3OutputPath"] = output
        message = _refused(sagemaker.create_transform_job, **request)
        assert f"S3OutputPath {output}" in message and SETTING in message
    assert not Path("/etc/cron.d/a.csv.out").exists()


def test_channels_and_code_outside_the_roots_are_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", "print('never runs')\n")
    for uri in ("file:///etc", "file:///root", "/root/.ssh", f"file://{tmp_path}/.secret"):
        Path(tmp_path / ".secret").mkdir(exist_ok=True)
        (tmp_path / ".secret" / "key").write_text("k")
        request = training_request("chan", image, InputDataConfig=[channel("train", uri)])
        message = _refused(sagemaker.create_training_job, **request)
        assert f"input {uri}" in message and SETTING in message, message
        hps = {"sagemaker_submit_directory": json.dumps(uri)}
        request = training_request("code", image, HyperParameters=hps)
        message = _refused(sagemaker.create_training_job, **request)
        assert SETTING in message, message
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_models_naming_local_files_outside_the_roots_are_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", "print('never runs')\n")
    message = _refused(
        sagemaker.create_model,
        ModelName="passwd",
        PrimaryContainer={"Image": str(image), "ModelDataUrl": "file:///etc/passwd"},
    )
    assert "ModelDataUrl file:///etc/passwd" in message and SETTING in message
    message = _refused(
        sagemaker.create_model,
        ModelName="root-code",
        PrimaryContainer={
            "Image": str(image),
            "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "file:///root"},
        },
    )
    assert "SAGEMAKER_SUBMIT_DIRECTORY file:///root" in message and SETTING in message


def test_a_link_in_a_channel_folder_is_judged_by_its_target(
    server: RunningServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("1,2\n")
    (data / "passwd").symlink_to("/etc/passwd")
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", "print('never runs')\n")
    request = training_request(
        "linked", image, InputDataConfig=[channel("train", f"file://{data}")]
    )
    message = _refused(sagemaker.create_training_job, **request)
    assert "the link" in message and "passwd" in message and "system folder" in message


LIST_CHANNEL = """
import json, pathlib
root = pathlib.Path("/opt/ml/input/data/train")
seen = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
pathlib.Path("/opt/ml/model/seen.json").write_text(json.dumps(seen))
"""


def test_hidden_files_in_a_channel_folder_are_not_given_to_the_job(
    server: RunningServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / ".git").mkdir(parents=True)
    (data / ".git" / "config").write_text("[remote] token=abc")
    (data / ".env").write_text("SECRET=1")
    (data / "part").mkdir()
    (data / "part" / "rows.csv").write_text("1,2\n")
    (data / "shared.csv").write_text("3,4\n")
    (data / "more.csv").symlink_to(data / "shared.csv")  # a link to an allowed file: its data
    sagemaker = server.client("sagemaker")
    request = training_request(
        "hidden-files",
        make_image(tmp_path / "img", LIST_CHANNEL),
        InputDataConfig=[channel("train", f"file://{data}")],
    )
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "hidden-files")["TrainingJobStatus"] == "Completed"
    seen = json.loads(model_artifacts(server, "hidden-files")["seen.json"])
    assert seen == ["more.csv", "part", "part/rows.csv", "shared.csv"]


# -- writing local outputs --------------------------------------------------------------------


@pytest.fixture
def lines(server: RunningServer, tmp_path: Path) -> Any:
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="lines", PrimaryContainer={"Image": str(make_line_model(tmp_path))}
    )
    return sagemaker


def test_transform_outputs_replace_planted_links_instead_of_writing_through(
    lines: Any, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("victim")
    victim_folder = tmp_path / "victim-folder"
    victim_folder.mkdir()
    source = tmp_path / "input"
    (source / "sub").mkdir(parents=True)
    (source / "a.csv").write_text("1,a\n")
    (source / "sub" / "b.csv").write_text("2,b\n")
    output = tmp_path / "output"
    output.mkdir()
    (output / "a.csv.out").symlink_to(victim)
    (output / "sub").symlink_to(victim_folder)
    request = transform_request("planted", source, output)
    request["TransformResources"]["InstanceCount"] = 1
    lines.create_transform_job(**request)
    described = wait_for_transform(lines, "planted")
    assert victim.read_text() == "victim"
    assert list(victim_folder.iterdir()) == []
    assert not (output / "a.csv.out").is_symlink()
    assert (output / "a.csv.out").read_text() == "1,A,1\n"
    # sub/ is a link: b.csv's output is not written through it, and the job says so.
    assert described["TransformJobStatus"] == "Failed"
    assert "sub/b.csv" in described["FailureReason"] and "link" in described["FailureReason"]


def test_transform_outputs_make_their_folder_tree(lines: Any, tmp_path: Path) -> None:
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,a\n")
    output = tmp_path / "new" / "deeper" / "output"
    lines.create_transform_job(**transform_request("tree", source, output))
    described = wait_for_transform(lines, "tree")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert (output / "a.csv.out").read_text() == "1,A,1\n"


def test_image_folders_follow_the_same_rule(
    server: RunningServer, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An image folder's Dockerfile and COPY sources are read for the caller (who may be on
    another machine): only folders DOCKYARD_LOCAL_PATHS allows can be named as an image."""
    sagemaker = server.client("sagemaker")
    outside = make_image(tmp_path_factory.mktemp("outside") / "img", "print('never runs')\n")
    hidden = make_image(tmp_path / ".images" / "img", "print('never runs')\n")
    own = make_image(server.settings.home / "img", "print('never runs')\n")
    (tmp_path / "link").symlink_to(outside)
    cases = {
        str(outside): "outside the folders",
        f"file://{outside}": "outside the folders",
        str(tmp_path / "link"): "outside the folders",  # judged by its target
        str(hidden): "hidden folder",
        str(own): "dockyard folder",
        "examples/r-randomforest": "must be absolute",
    }
    for ref, rule in cases.items():
        request = training_request("img", outside)
        request["AlgorithmSpecification"]["TrainingImage"] = ref
        message = _refused(sagemaker.create_training_job, **request)
        assert message.startswith(f"image {ref}:") and rule in message, message
        message = _refused(sagemaker.create_model, ModelName="img", PrimaryContainer={"Image": ref})
        assert message.startswith(f"image {ref}:") and rule in message, message
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    assert sagemaker.list_models()["Models"] == []
    # Inside a root, the same folder's copy trains.
    allowed = make_image(tmp_path / "img", "print('ran')\n")
    sagemaker.create_training_job(**training_request("allowed", allowed))
    assert wait_for_job(sagemaker, "allowed")["TrainingJobStatus"] == "Completed"
