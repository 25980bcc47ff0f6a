"""Issue 8, part 3 and the artifact side of part 2: what a training job leaves in its /opt/ml
(links, FIFOs, files swapped in while it runs, setuid files, device nodes) never makes the
server read or write anything else on its behalf."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

from tests.conftest import (
    RunningServer,
    channel,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)

SECRET = "linksafe-host-secret-4711"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def _job_log(server: RunningServer, job: str, wanted: str, deadline: float = 30.0) -> str:
    """The job's log once it holds `wanted` (the log writer flushes in batches)."""
    logs = server.client("logs")
    end = time.monotonic() + deadline
    text = ""
    while time.monotonic() < end:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")
        text = ""
        for stream in streams["logStreams"]:
            events = logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
            )
            text += "\n".join(event["message"] for event in events["events"]) + "\n"
        if wanted in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{wanted!r} not in the log of {job} within {deadline} s:\n{text}")


def _archive(
    server: RunningServer, job: str, name: str
) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    data = server.engine.store.get_bytes("bucket", f"out/{job}/output/{name}")
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member) if member.isreg() else None
            found[member.name] = (member, extracted.read() if extracted else b"")
    return found


def _run(server: RunningServer, tmp_path: Path, name: str, program: str, **changes: Any) -> dict:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / f"image-{name}", program)
    sagemaker.create_training_job(**training_request(name, image, **changes))
    return wait_for_job(sagemaker, name)


def test_a_failure_file_linked_to_a_host_file_is_not_read(
    server: RunningServer, tmp_path: Path
) -> None:
    secret = tmp_path / "host" / ".hidden-host-file"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    program = (
        f"import os, sys\nos.symlink({str(secret)!r}, '/opt/ml/output/failure')\nsys.exit(3)\n"
    )
    described = _run(server, tmp_path, "failure-link", program)
    assert described["TrainingJobStatus"] == "Failed"
    assert SECRET not in described["FailureReason"]
    assert described["FailureReason"].startswith(
        "AlgorithmError: the training program on algo-1 exited with code 3."
    )


def test_checkpoint_links_are_not_uploaded(server: RunningServer, tmp_path: Path) -> None:
    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    program = (
        "import os, pathlib\n"
        "ck = pathlib.Path('/opt/ml/checkpoints')\n"
        "(ck / 'step-1.ckpt').write_text('weights at step 1')\n"
        f"os.symlink({str(secret)!r}, ck / 'leak.ckpt')\n"
        f"os.symlink({str(secret.parent)!r}, ck / 'host-folder')\n"
        "os.mkfifo(ck / 'pipe.ckpt')\n"
    )
    store = server.engine.store
    store.create_bucket("ckpt")
    described = _run(
        server, tmp_path, "ckpt-links", program, CheckpointConfig={"S3Uri": "s3://ckpt/run"}
    )
    assert described["TrainingJobStatus"] == "Completed"
    keys = sorted(info.key for info in store.list_objects("ckpt", "run/"))
    assert keys == ["run/step-1.ckpt"]
    assert store.get_bytes("ckpt", "run/step-1.ckpt") == b"weights at step 1"
    log = _job_log(server, "ckpt-links", "checkpoints: leak.ckpt is not uploaded: a link")
    assert "checkpoints: pipe.ckpt is not uploaded: a FIFO" in log


def test_a_checkpoint_folder_swapped_for_a_link_while_running_is_not_mirrored(
    server: RunningServer, tmp_path: Path
) -> None:
    host_folder = tmp_path / "host-folder"
    host_folder.mkdir()
    (host_folder / "id_rsa").write_text(SECRET)
    program = (
        "import os, shutil\n"
        "shutil.rmtree('/opt/ml/checkpoints')\n"
        f"os.symlink({str(host_folder)!r}, '/opt/ml/checkpoints')\n"
    )
    store = server.engine.store
    store.create_bucket("ckpt")
    described = _run(
        server, tmp_path, "ckpt-swap", program, CheckpointConfig={"S3Uri": "s3://ckpt/swap"}
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert list(store.list_objects("ckpt", "swap/")) == []


def test_model_and_output_folders_swapped_for_links_are_not_packed(
    server: RunningServer, tmp_path: Path
) -> None:
    host_folder = tmp_path / "host-folder"
    (host_folder / "data").mkdir(parents=True)
    (host_folder / "id_rsa").write_text(SECRET)
    (host_folder / "data" / "known_hosts").write_text(SECRET)
    program = (
        "import os, shutil\n"
        "shutil.rmtree('/opt/ml/model')\n"
        f"os.symlink({str(host_folder)!r}, '/opt/ml/model')\n"
        "shutil.rmtree('/opt/ml/output/data')\n"
        f"os.symlink({str(host_folder / 'data')!r}, '/opt/ml/output/data')\n"
    )
    described = _run(server, tmp_path, "swapped-folders", program)
    assert described["TrainingJobStatus"] == "Completed"
    assert _archive(server, "swapped-folders", "model.tar.gz") == {}
    assert _archive(server, "swapped-folders", "output.tar.gz") == {}
    log = _job_log(server, "swapped-folders", "hosts/algo-1/opt_ml/model")
    assert "is a link" in log


SPECIAL_FILES = """
import os, pathlib, socket, stat
model = pathlib.Path("/opt/ml/model")
(model / "rootsh").write_text("#!/bin/sh\\nid\\n")
os.chmod(model / "rootsh", 0o4755)
(model / "weights.bin").write_bytes(b"w" * 100)
os.link(model / "weights.bin", model / "weights-link.bin")
os.symlink("/etc/shadow", model / "shadow")
os.mkfifo(model / "fifo")
sock = socket.socket(socket.AF_UNIX)
sock.bind(str(model / "sock"))
try:  # a sandbox without CAP_MKNOD refuses; one with it must not get the node into the archive
    os.mknod(model / "disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0))
except OSError:
    pass
"""


def test_setuid_files_and_special_files_do_not_reach_the_artifacts(
    server: RunningServer, tmp_path: Path
) -> None:
    described = _run(server, tmp_path, "special-files", SPECIAL_FILES)
    assert described["TrainingJobStatus"] == "Completed"
    members = _archive(server, "special-files", "model.tar.gz")
    assert sorted(members) == ["rootsh", "shadow", "weights-link.bin", "weights.bin"]
    rootsh = members["rootsh"][0]
    assert rootsh.mode == 0o755
    assert (rootsh.uid, rootsh.gid, rootsh.uname, rootsh.gname) == (0, 0, "", "")
    shadow, content = members["shadow"]
    assert shadow.issym() and shadow.linkname == "/etc/shadow" and content == b""
    assert members["weights-link.bin"][0].islnk() or members["weights.bin"][0].islnk()
    log = _job_log(server, "special-files", "model.tar.gz:")
    assert "left out" in log and "fifo" in log and "sock" in log
    assert "rootsh" in log


PIPE_SWAPPER = """
import json, os, pathlib, time
data = pathlib.Path("/opt/ml/input/data")
got = {}
for channel in ("linked", "plain"):
    with open(data / f"{channel}_0", "rb") as pipe:
        got[channel] = pipe.read().decode()
# The feeder made each channel's next FIFO before this one's EOF; swap them.
(data / "linked_1").unlink()
os.symlink(os.environ["VICTIM"], data / "linked_1")
(data / "plain_1").unlink()
(data / "plain_1").write_text("the job's own file")
# Long enough for a feeder that polls every 10 ms to open what is there now.
time.sleep(1)
got["plain_1"] = (data / "plain_1").read_text()
pathlib.Path("/opt/ml/model/pipes.json").write_text(json.dumps(got))
"""


def test_pipe_fifos_swapped_for_a_link_or_a_file_are_not_written(
    server: RunningServer, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("VICTIM ORIGINAL CONTENT, LONGER THAN THE CHANNEL")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("channel data")
    described = _run(
        server,
        tmp_path,
        "pipe-swap",
        PIPE_SWAPPER,
        Environment={"VICTIM": str(victim)},
        InputDataConfig=[
            channel("linked", f"file://{data}", InputMode="Pipe"),
            channel("plain", f"file://{data}", InputMode="Pipe"),
        ],
    )
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert victim.read_text() == "VICTIM ORIGINAL CONTENT, LONGER THAN THE CHANNEL"
    seen = model_artifacts(server, "pipe-swap")["pipes.json"]
    assert json.loads(seen) == {
        "linked": "channel data",
        "plain": "channel data",
        "plain_1": "the job's own file",
    }
    log = _job_log(
        server, "pipe-swap", "Pipe channel linked: /opt/ml/input/data/linked_1 is a link"
    )
    assert "Pipe channel plain: /opt/ml/input/data/plain_1 is a regular file" in log
