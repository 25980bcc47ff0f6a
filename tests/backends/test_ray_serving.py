"""Endpoints and batch transform on a real Ray cluster: each instance an actor on a node,
reached by the router at its routed address; a node lost under an endpoint gets its instance
replaced on a surviving node while the router serves from the others."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from dockyard.settings import Settings
from tests.api.test_endpoints_api import deploy, wait_for_endpoint
from tests.api.test_transform_jobs_api import (
    make_line_model,
    transform_request,
    wait_for_transform,
)
from tests.conftest import RunningServer, free_port
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

RUNS_ON = re.compile(r"(AllTraffic-\d+|algo-\d+) runs on node \w+ \((127\.0\.0\.\d+)\)")


def placements(server: RunningServer, group: str) -> dict[str, str]:
    """Instance name -> the node address its log says it runs on (the latest line wins)."""
    logs = server.client("logs")
    where: dict[str, str] = {}
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        for event in events:
            found = RUNS_ON.search(event["message"])
            if found:
                where[found.group(1)] = found.group(2)
    return where


def test_batch_transform_on_two_nodes_equals_the_local_backends_line_for_line(
    ray_server: RunningServer, clean_env: Path, tmp_path: Path
) -> None:
    source = tmp_path / "input"
    source.mkdir()
    for part in range(4):
        rows = [f"{part * 1000 + i},row {i} " + "y" * (i % 40) for i in range(1000)]
        (source / f"part-{part}.csv").write_text("\n".join(rows) + "\n")
    image = make_line_model(tmp_path)
    local = RunningServer(Settings(home=clean_env.with_name("local-home"), port=free_port()))
    try:
        outputs = {}
        for label, server in (("local", local), ("ray", ray_server)):
            sagemaker = server.client("sagemaker")
            sagemaker.create_model(ModelName="lines", PrimaryContainer={"Image": str(image)})
            output = tmp_path / f"output-{label}"
            sagemaker.create_transform_job(
                **transform_request("lines-2", source, output, BatchStrategy="MultiRecord")
            )
            described = wait_for_transform(sagemaker, "lines-2", deadline=300)
            assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
            outputs[label] = {p.name: p.read_bytes() for p in sorted(output.iterdir())}
        assert sorted(outputs["ray"]) == [f"part-{i}.csv.out" for i in range(4)]
        assert outputs["ray"] == outputs["local"]
        first = outputs["ray"]["part-0.csv.out"].decode().splitlines()
        assert len(first) == 1000 and first[1] == "1,ROW 1 Y,7"
        where = placements(ray_server, "/aws/sagemaker/TransformJobs")
        assert where == {"algo-1": where["algo-1"], "algo-2": where["algo-2"]}
        assert sorted(where.values()) == ["127.0.0.2", "127.0.0.3"]
    finally:
        local.close()


def test_an_endpoint_on_two_nodes_loses_one_and_serves_throughout(
    ray_server: RunningServer, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    spare = ray_cluster.add_node("127.0.0.4")  # room for the replacement
    removed_ip: str | None = None
    try:
        described = deploy(ray_server, make_line_model(tmp_path), "lines-ep", count=2)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        group = "/aws/sagemaker/Endpoints/lines-ep"
        where = placements(ray_server, group)
        assert len(where) == 2 and len(set(where.values())) == 2  # spread: one per node
        # Lose a node holding an instance (not the head: that would end the cluster).
        victim, removed_ip = next((n, ip) for n, ip in sorted(where.items()) if ip != "127.0.0.2")

        runtime = ray_server.client("sagemaker-runtime")
        results: Counter[str] = Counter()
        errors: list[str] = []
        stop = threading.Event()

        def load() -> None:
            number = 0
            while not stop.is_set():
                number += 1
                try:
                    answer = runtime.invoke_endpoint(
                        EndpointName="lines-ep",
                        Body=f"{number},abc".encode(),
                        ContentType="text/csv",
                    )
                    body = answer["Body"].read().decode().strip()
                    assert body == f"{number},ABC,3", body
                    results["ok"] += 1
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(2)
        before = results["ok"]
        ray_cluster.remove_node(ray_cluster.node_at(removed_ip))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = placements(ray_server, group)
            replaced = [n for n in now if n not in where]
            if replaced:
                break
            time.sleep(0.5)
        time.sleep(2)  # and keep serving on the replacement
        stop.set()
        for worker in workers:
            worker.join()
        now = placements(ray_server, group)
        replaced = [n for n in now if n not in where]
        assert replaced, f"{victim} was not replaced: {now}"
        assert now[replaced[0]] != removed_ip
        assert errors == [], errors[:5]
        assert results["ok"] > before > 0
        sagemaker = ray_server.client("sagemaker")
        described = wait_for_endpoint(sagemaker, "lines-ep")
        assert described["EndpointStatus"] == "InService"
        print(
            f"\n{results['ok']} invocations, none failed; {victim} on {removed_ip} replaced by "
            f"{replaced[0]} on {now[replaced[0]]}"
        )
        sagemaker.delete_endpoint(EndpointName="lines-ep")
    finally:
        if removed_ip == "127.0.0.3":
            ray_cluster.add_node("127.0.0.3")  # the session's cluster has it back
        if spare in ray_cluster.extra:
            ray_cluster.remove_node(spare)
