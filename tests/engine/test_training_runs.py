"""Training jobs end to end through the engine: failures, stops, hosts, channels, isolation."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

from dockyard.contract.training_jobs import CreateTrainingJobRequest
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.conftest import (
    RunningServer,
    channel,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)

FAILING = """
import sys
open("/opt/ml/output/failure", "w").write("ValueError: target column 'nope' not in the data")
print("about to fail", file=sys.stderr)
sys.exit(1)
"""

CRASHING = """
import sys
print("loading data", file=sys.stderr)
raise RuntimeError("boom at step 3")
"""

STUBBORN = """
import signal, time, pathlib
def on_term(*_):
    pathlib.Path("/opt/ml/model/saved-in-grace.txt").write_text("late")
signal.signal(signal.SIGTERM, on_term)
print("ignoring SIGTERM from now on", flush=True)
while True:
    time.sleep(0.05)
"""


def test_failure_file_becomes_the_failure_reason(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**training_request("fails", make_image(tmp_path / "i", FAILING)))
    described = wait_for_job(sagemaker, "fails")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == "ValueError: target column 'nope' not in the data"
    assert described["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_without_failure_file_the_reason_names_exit_code_and_stderr(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**training_request("crash", make_image(tmp_path / "i", CRASHING)))
    reason = wait_for_job(sagemaker, "crash")["FailureReason"]
    assert reason.startswith("AlgorithmError: the training program on algo-1 exited with code 1.")
    assert "RuntimeError: boom at step 3" in reason
    assert len(reason) <= 1024


def test_max_runtime_stops_a_program_that_ignores_sigterm(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    request = training_request(
        "stubborn",
        make_image(tmp_path / "i", STUBBORN),
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    started = time.monotonic()
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "stubborn")
    # 1 s of runtime + the 2 s grace the fixture configures, then SIGKILL.
    assert time.monotonic() - started < 30
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses[-3:] == ["Stopping", "Uploading", "MaxRuntimeExceeded"]
    # What the program wrote in its grace period is kept in model.tar.gz.
    model = server.engine.store.get_bytes("bucket", "out/stubborn/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(model)) as archive:
        assert "saved-in-grace.txt" in archive.getnames()


def test_stop_training_job(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    program = "import time\nprint('waiting', flush=True)\ntime.sleep(600)\n"
    sagemaker.create_training_job(
        **training_request("to-stop", make_image(tmp_path / "i", program))
    )
    deadline = time.monotonic() + 30
    while (
        sagemaker.describe_training_job(TrainingJobName="to-stop")["SecondaryStatus"] != "Training"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sagemaker.stop_training_job(TrainingJobName="to-stop")
    after = sagemaker.describe_training_job(TrainingJobName="to-stop")
    # The hosts may have ended already (SIGTERM on a busy machine) and the job be uploading
    # what they wrote: it is Stopping still (seen once in CI as InProgress, see test_lifecycle).
    assert after["TrainingJobStatus"] in ("Stopping", "Stopped"), (
        after["SecondaryStatus"],
        after.get("FailureReason"),
        [(t["Status"], t.get("StatusMessage")) for t in after["SecondaryStatusTransitions"]],
    )
    described = wait_for_job(sagemaker, "to-stop")
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "Stopped"


TWO_HOSTS = """
import json, socket, sys, time, pathlib
rc = json.load(open("/opt/ml/input/config/resourceconfig.json"))
me = rc["current_host"]
files = sorted(p.name for p in pathlib.Path("/opt/ml/input/data/train").rglob("*") if p.is_file())
pathlib.Path("/opt/ml/model", me + ".json").write_text(json.dumps({"rc": rc, "files": files,
    "hostname": socket.gethostname()}))
if me == "algo-2":
    server = socket.create_server((socket.gethostbyname("algo-2"), 7777))
    conn, _ = server.accept()
    conn.sendall(b"hello from algo-2")
    conn.close()
else:
    deadline = time.time() + 20
    while True:
        try:
            with socket.create_connection(("algo-2", 7777), timeout=1) as conn:
                greeting = conn.recv(100).decode()
                break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    pathlib.Path("/opt/ml/model/greeting.txt").write_text(greeting)
    print("algo-1 got:", greeting)
"""


def test_two_hosts_differ_only_in_current_host_and_reach_each_other(
    server: RunningServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        (data / f"part-{i}.csv").write_text(f"{i}\n")
    sagemaker = server.client("sagemaker")
    request = training_request(
        "two-hosts",
        make_image(tmp_path / "i", TWO_HOSTS),
        InputDataConfig=[channel("train", f"file://{data}", "ShardedByS3Key")],
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "two-hosts")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = model_artifacts(server, "two-hosts")
    hosts = {name: json.loads(model[f"{name}.json"]) for name in ("algo-1", "algo-2")}
    rc1, rc2 = hosts["algo-1"]["rc"], hosts["algo-2"]["rc"]
    assert rc1["current_host"] == "algo-1" and rc2["current_host"] == "algo-2"
    assert {k: v for k, v in rc1.items() if k != "current_host"} == {
        k: v for k, v in rc2.items() if k != "current_host"
    }
    assert rc1["hosts"] == ["algo-1", "algo-2"]
    assert hosts["algo-2"]["hostname"] == "algo-2"
    # ShardedByS3Key: disjoint halves that together are the whole channel.
    files1, files2 = set(hosts["algo-1"]["files"]), set(hosts["algo-2"]["files"])
    assert files1.isdisjoint(files2)
    assert files1 | files2 == {f"part-{i}.csv" for i in range(6)}
    assert len(files1) == len(files2) == 3
    assert model["greeting.txt"] == b"hello from algo-2"


SNOOP = """
import json, os, pathlib, sys
home, other = sys.argv[2], sys.argv[3]
result = {}
targets = [("home_db", home + "/dockyard.db"), ("home_listing", home), ("other_job", other)]
for label, path in targets:
    try:
        if os.path.isdir(path):
            result[label] = os.listdir(path)
        else:
            result[label] = open(path, "rb").read(16).hex()
    except OSError as exc:
        result[label] = "denied: " + type(exc).__name__
pathlib.Path("/opt/ml/model/snoop.json").write_text(json.dumps(result))
"""


def test_a_job_cannot_see_dockyard_home_or_other_jobs(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    secret_job = make_image(
        tmp_path / "secret", "open('/opt/ml/model/secret.txt', 'w').write('s3cr3t')"
    )
    sagemaker.create_training_job(**training_request("secret-job", secret_job))
    assert wait_for_job(sagemaker, "secret-job")["TrainingJobStatus"] == "Completed"
    home = server.settings.home
    # It is there on the host: in the model artifacts and in the host's (unmounted) volume.
    assert model_artifacts(server, "secret-job")["secret.txt"] == b"s3cr3t"
    other = home / "jobs" / "secret-job" / "hosts"
    assert (other / "algo-1.volume").is_file()
    request = training_request("snoop", make_image(tmp_path / "snoop", SNOOP))
    request["AlgorithmSpecification"]["ContainerArguments"] = ["train", str(home), str(other)]
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "snoop")["TrainingJobStatus"] == "Completed"
    seen = json.loads(model_artifacts(server, "snoop")["snoop.json"])
    assert seen["home_db"].startswith("denied")
    assert seen["home_listing"] in ([], "denied: FileNotFoundError", "denied: PermissionError")
    assert seen["other_job"] in ("denied: FileNotFoundError", "denied: PermissionError")


PIPE_READER = """
import json, pathlib
got = []
for epoch in range(2):
    with open(f"/opt/ml/input/data/train_{epoch}", "rb") as pipe:
        got.append(pipe.read().decode())
config = json.load(open("/opt/ml/input/config/inputdataconfig.json"))
pathlib.Path("/opt/ml/model/pipe.json").write_text(json.dumps({"epochs": got, "config": config}))
"""


def test_pipe_mode_feeds_a_fifo_per_epoch(server: RunningServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("first,")
    (data / "b.txt").write_text("second")
    sagemaker = server.client("sagemaker")
    request = training_request(
        "piped",
        make_image(tmp_path / "i", PIPE_READER),
        InputDataConfig=[channel("train", f"file://{data}", InputMode="Pipe")],
    )
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "piped")["TrainingJobStatus"] == "Completed"
    seen = json.loads(model_artifacts(server, "piped")["pipe.json"])
    assert seen["epochs"] == ["first,second", "first,second"]
    assert seen["config"]["train"]["TrainingInputMode"] == "Pipe"


CHECKPOINTER = """
import os, pathlib
ck = pathlib.Path("/opt/ml/checkpoints")
before = sorted(p.name for p in ck.iterdir())
(ck / "step-2.ckpt").write_text("2")
if (ck / "step-0.ckpt").exists():
    (ck / "step-0.ckpt").unlink()
pathlib.Path("/opt/ml/model/restored.txt").write_text(",".join(before))
"""


def test_checkpoints_restore_and_mirror(server: RunningServer, tmp_path: Path) -> None:
    store = server.engine.store
    store.create_bucket("ckpt")
    store.put_bytes("ckpt", "run/step-0.ckpt", b"0")
    store.put_bytes("ckpt", "run/step-1.ckpt", b"1")
    sagemaker = server.client("sagemaker")
    request = training_request(
        "ckpt-job",
        make_image(tmp_path / "i", CHECKPOINTER),
        CheckpointConfig={"S3Uri": "s3://ckpt/run"},
    )
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "ckpt-job")["TrainingJobStatus"] == "Completed"
    restored = model_artifacts(server, "ckpt-job")["restored.txt"]
    assert restored == b"step-0.ckpt,step-1.ckpt"
    keys = sorted(info.key for info in store.list_objects("ckpt", "run/"))
    assert keys == ["run/step-1.ckpt", "run/step-2.ckpt"]


def test_channels_are_read_only_inside_the_sandbox(server: RunningServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("original")
    program = (
        "import pathlib\n"
        "p = pathlib.Path('/opt/ml/input/data/train/x.csv')\n"
        "try:\n    p.write_text('changed'); outcome = 'written'\n"
        "except OSError as e:\n    outcome = type(e).__name__\n"
        "pathlib.Path('/opt/ml/model/outcome.txt').write_text(outcome)\n"
    )
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(
        **training_request(
            "read-only",
            make_image(tmp_path / "i", program),
            InputDataConfig=[channel("train", f"file://{data}")],
        )
    )
    assert wait_for_job(sagemaker, "read-only")["TrainingJobStatus"] == "Completed"
    assert model_artifacts(server, "read-only")["outcome.txt"] == b"OSError"
    assert (data / "x.csv").read_text() == "original"


def test_a_program_missing_from_the_image_fails_with_a_client_error(
    server: RunningServer, tmp_path: Path
) -> None:
    image = tmp_path / "no-program"
    image.mkdir()
    (image / "Dockerfile").write_text('FROM scratch\nENTRYPOINT ["/opt/program/missing-train"]\n')
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**training_request("no-program", image))
    described = wait_for_job(sagemaker, "no-program")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError:")
    assert "missing-train" in described["FailureReason"]


def test_a_long_stderr_keeps_the_head_and_the_exception_line(
    server: RunningServer, tmp_path: Path
) -> None:
    program = (
        "import sys\n"
        "for i in range(200):\n"
        "    print('noise line', i, 'x' * 80, file=sys.stderr)\n"
        "raise KeyError('the-real-cause')\n"
    )
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(
        **training_request("long-err", make_image(tmp_path / "i", program))
    )
    reason = wait_for_job(sagemaker, "long-err")["FailureReason"]
    assert len(reason) <= 1024
    assert reason.startswith("AlgorithmError: the training program on algo-1 exited with code 1.")
    assert reason.rstrip().endswith("KeyError: 'the-real-cause'")


GATED = """
import pathlib, time
gate = pathlib.Path("/opt/ml/input/data/control/go")
deadline = time.time() + 60
while not gate.exists():
    if time.time() > deadline:
        raise SystemExit("the test never opened the gate")
    time.sleep(0.02)
print("through the gate")
"""


def test_jobs_queue_while_the_machine_is_taken(server: RunningServer, tmp_path: Path) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "placeholder").write_text("")
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "gated", GATED)
    gated = [channel("control", f"file://{control}")]
    # The fixture's machine is the real one; `local` asks for all of it, so the second job
    # must wait for the first.
    for name in ("first", "second"):
        request = training_request(name, image, InputDataConfig=gated)
        request["ResourceConfig"]["InstanceType"] = "local"
        sagemaker.create_training_job(**request)
        if name == "first":
            deadline = time.monotonic() + 30
            while (
                sagemaker.describe_training_job(TrainingJobName="first")["SecondaryStatus"]
                != "Training"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
    deadline = time.monotonic() + 30
    while (second := sagemaker.describe_training_job(TrainingJobName="second"))[
        "SecondaryStatus"
    ] != "Pending":
        assert time.monotonic() < deadline, second["SecondaryStatus"]
        time.sleep(0.02)
    assert second["SecondaryStatusTransitions"][-1]["StatusMessage"].startswith(
        "Waiting for capacity"
    )
    assert sagemaker.describe_training_job(TrainingJobName="first")["SecondaryStatus"] == "Training"
    (control / "go").write_text("")
    for name in ("first", "second"):
        assert wait_for_job(sagemaker, name)["TrainingJobStatus"] == "Completed"
    statuses = [
        t["Status"]
        for t in sagemaker.describe_training_job(TrainingJobName="second")[
            "SecondaryStatusTransitions"
        ]
    ]
    assert statuses[:3] == ["Starting", "Pending", "Downloading"]


def test_a_server_restart_fails_running_jobs_and_keeps_the_record(
    dockyard_settings: Settings, tmp_path: Path
) -> None:
    engine = Engine.open(dockyard_settings)
    request = CreateTrainingJobRequest.from_wire(
        training_request("orphan", make_image(tmp_path / "i", "import time\ntime.sleep(600)\n"))
    )
    engine.training_jobs.create(request)
    deadline = time.monotonic() + 30
    while engine.training_jobs.describe("orphan").record.state.secondary_status != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    engine.close()
    reopened = Engine.open(dockyard_settings)
    try:
        record = reopened.training_jobs.describe("orphan").record
        assert record.status == "Failed"
        assert "server stopped while this job was running" in str(record.state.failure_reason)
    finally:
        reopened.close()
