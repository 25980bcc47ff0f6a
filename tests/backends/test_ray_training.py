"""Training jobs on a real two-node Ray cluster (127.0.0.2 and 127.0.0.3 on this machine): each
host an actor placed by a placement group, running its sandbox on its node."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    RunningServer,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)
from tests.engine.test_script_mode import script_job
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

WHERE = """
import json, os, pathlib, socket
where = {
    "host": socket.gethostname(),
    "node_ip": os.environ["DOCKYARD_NODE_IP"],
    "node_id": os.environ["DOCKYARD_NODE_ID"],
}
print("running", json.dumps(where))
name = where["host"] + ".json"
pathlib.Path("/opt/ml/model", name).write_text(json.dumps(where))
"""


def log_text(server: RunningServer, job: str) -> str:
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job
    )["logStreams"]
    lines: list[str] = []
    for stream in streams:
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )["events"]
        lines += [e["message"] for e in events]
    return "\n".join(lines)


def wait_for_log(server: RunningServer, job: str, words: str, seconds: float = 120) -> str:
    """The job's log once it has `words`."""
    deadline = time.monotonic() + seconds
    while words not in (text := log_text(server, job)):
        assert time.monotonic() < deadline, text
        time.sleep(0.3)
    return text


def test_each_host_runs_on_its_own_node_and_knows_it(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", WHERE)
    request = training_request("where-2", image)
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "where-2", deadline_seconds=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = model_artifacts(ray_server, "where-2")
    seen = {name: json.loads(data) for name, data in model.items()}
    assert set(seen) == {"algo-1.json", "algo-2.json"}
    # One ml.m5.large fills a node: the two hosts are on the two nodes.
    assert sorted(s["node_ip"] for s in seen.values()) == ["127.0.0.2", "127.0.0.3"]
    text = log_text(ray_server, "where-2")
    for where in seen.values():
        assert f"{where['host']} runs on node {where['node_id'][:12]} ({where['node_ip']})" in text
        assert f'"host": "{where["host"]}"' in text


def test_a_host_no_node_can_hold_fails_saying_what_is_missing(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", "print('never runs')\n")
    request = training_request("too-big", image)
    request["ResourceConfig"]["InstanceType"] = "ml.m5.4xlarge"  # 16 vCPU, 64 GiB
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "too-big", deadline_seconds=60)
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("ResourceLimitExceeded: no node of the Ray cluster")
    assert "16 CPU, 64.0 GiB" in reason and "2 CPU, 9.0 GiB" in reason


def test_three_hosts_wait_for_a_third_node_then_start(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", WHERE)
    request = training_request("three", image)
    request["ResourceConfig"]["InstanceCount"] = 3
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    pending = _wait_for_secondary(sagemaker, "three", "Pending")
    assert "Waiting for capacity on the Ray cluster: 3 hosts of 2 CPU, 8.0 GiB" in pending
    time.sleep(2)
    assert sagemaker.describe_training_job(TrainingJobName="three")["SecondaryStatus"] == "Pending"
    node = ray_cluster.add_node("127.0.0.4")
    try:
        described = wait_for_job(sagemaker, "three", deadline_seconds=300)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        seen = [json.loads(d) for d in model_artifacts(ray_server, "three").values()]
        assert sorted(s["node_ip"] for s in seen) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    finally:
        ray_cluster.remove_node(node)


def _wait_for_secondary(sagemaker: Any, name: str, status: str, deadline: float = 60) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        for transition in described.get("SecondaryStatusTransitions", []):
            if transition["Status"] == status:
                return str(transition.get("StatusMessage", ""))
        time.sleep(0.2)
    raise AssertionError(f"{name} never went {status}")


ALL_REDUCE = """
import json, os, pathlib
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
print(f"rank {rank} of {world} on node {os.environ['DOCKYARD_NODE_IP']}: sum {value.item()}")
pathlib.Path(os.environ["SM_MODEL_DIR"], f"rank-{rank}.json").write_text(json.dumps({
    "rank": rank, "world": world, "sum": value.item(),
    "host": os.environ["SM_CURRENT_HOST"], "node_ip": os.environ["DOCKYARD_NODE_IP"],
}))
dist.barrier()
# Leave without gloo's teardown, which can abort when a peer closes first (see the example).
os._exit(0)
"""


def test_torch_distributed_all_reduce_across_two_nodes(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    """The real sagemaker-training toolkit and torch's gloo backend: rank 0's store on algo-1,
    each rank binding the address its own name resolves to and connecting to its peer's, across
    the two nodes' routed network."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(ALL_REDUCE)
    request = script_job(
        "gloo-2", source, image="dockyard/pytorch:2.13", sagemaker_torch_distributed_enabled="true"
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "gloo-2", deadline_seconds=1200)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    results = [json.loads(d) for f, d in model_artifacts(ray_server, "gloo-2").items()]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 and r["sum"] == 3.0 for r in results)
    assert sorted(r["node_ip"] for r in results) == ["127.0.0.2", "127.0.0.3"]
    text = log_text(ray_server, "gloo-2")
    assert "sum 3.0" in text


SLEEPER = """
import socket, time
print("training started on", socket.gethostname(), flush=True)
time.sleep(600)
"""


def test_a_node_lost_mid_job_fails_the_job_naming_the_node(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", SLEEPER)
    request = training_request("lost-node", image)
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    text = wait_for_log(ray_server, "lost-node", "training started on algo-2")
    lost = next(
        host
        for host in ("algo-1", "algo-2")
        if f"{host} runs on node" in text and "(127.0.0.3)" in text.split(f"{host} runs on")[1][:40]
    )
    ray_cluster.remove_node(ray_cluster.node_at("127.0.0.3"))
    try:
        described = wait_for_job(sagemaker, "lost-node", deadline_seconds=120)
        assert described["TrainingJobStatus"] == "Failed"
        reason = described["FailureReason"]
        assert reason.startswith(f"InternalServerError: {lost} on node "), reason
        assert "(127.0.0.3) was lost" in reason
    finally:
        ray_cluster.add_node("127.0.0.3")


REACH = """
import json, os, socket, sys, time
host = socket.gethostname()

def reach(address, port):
    try:
        socket.create_connection((address, port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__

if host == "algo-1":
    server = socket.create_server((socket.gethostbyname(host), 5555))
    server.settimeout(60)
    conn, _ = server.accept()
    print("algo-1 got", conn.recv(64).decode(), flush=True)
else:
    targets = json.loads(os.environ["TARGETS"])
    seen = {f"{a}:{p}": reach(a, p) for a, p in targets}
    for _ in range(100):
        try:
            with socket.create_connection(("algo-1", 5555), timeout=2) as peer:
                peer.sendall(b"hello from algo-2")
            break
        except OSError:
            time.sleep(0.1)
    print("reached " + json.dumps(seen), flush=True)
"""


def test_hosts_on_a_cluster_reach_their_peers_and_nothing_of_the_nodes(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    """The sandbox rules on every node: algo-2 reaches algo-1 on another node, but nothing
    listening on the machine the nodes run on: the dockyard API (127.0.0.1), Ray's GCS, nor a
    server on all addresses reached through either node's address or the machine's own."""
    gcs_host, gcs_port = ray_cluster.address.rsplit(":", 1)
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    machine = subprocess.run(
        ["hostname", "-I"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    targets = [
        ["127.0.0.1", ray_server.settings.port],
        [gcs_host, int(gcs_port)],
        ["127.0.0.2", port],
        ["127.0.0.3", port],
        [machine, port],
    ]
    for address, target_port in targets:  # all reachable from the machine itself
        socket.create_connection((address, target_port), timeout=2).close()
    image = make_image(tmp_path / "image", REACH)
    request = training_request("reach", image, Environment={"TARGETS": json.dumps(targets)})
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "reach", deadline_seconds=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    text = log_text(ray_server, "reach")
    assert "algo-1 got hello from algo-2" in text
    seen = json.loads(text.split("reached ", 1)[1].splitlines()[0])
    assert len(seen) == 5
    assert all(outcome != "connected" for outcome in seen.values()), seen
    listener.close()


FINISHING = """
import pathlib, socket, time
host = socket.gethostname()
print("training started on", host, flush=True)
time.sleep(6)
pathlib.Path("/opt/ml/model", host + ".txt").write_text("done")
"""


def test_a_node_lost_mid_job_restarts_it_when_retry_strategy_asks(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", FINISHING)
    request = training_request("retried", image, RetryStrategy={"MaximumRetryAttempts": 1})
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    text = wait_for_log(ray_server, "retried", "training started on algo-2")
    ray_cluster.remove_node(ray_cluster.node_at("127.0.0.3"))
    spare = ray_cluster.add_node("127.0.0.4")  # room for the second attempt
    try:
        described = wait_for_job(sagemaker, "retried", deadline_seconds=180)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        steps = [t["Status"] for t in described["SecondaryStatusTransitions"]]
        assert steps.count("Training") == 2 and "Restarting" in steps, steps
        restart = next(
            t for t in described["SecondaryStatusTransitions"] if t["Status"] == "Restarting"
        )
        assert "(127.0.0.3) was lost" in restart["StatusMessage"]
        assert "(retry 1 of 1)" in restart["StatusMessage"]
        assert set(model_artifacts(ray_server, "retried")) == {"algo-1.txt", "algo-2.txt"}
        text = log_text(ray_server, "retried")
        assert "runs on node" in text and "(127.0.0.4)" in text
    finally:
        ray_cluster.remove_node(spare)
        ray_cluster.add_node("127.0.0.3")
