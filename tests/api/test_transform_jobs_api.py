"""Batch transform through boto3 against a real server: records split, batched, sent
concurrently to several instances, and written back in order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import RunningServer

# Answers each CSV line "i,text" with "i,TEXT,<length>"; counts its requests per process.
LINE_MODEL = r"""
import http.server, json, os, signal, sys, threading, time
seen = {"requests": 0, "max_in_flight": 0}
in_flight = [0]
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body, ctype="text/csv"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/ping":
            self.reply(200, b"")
        elif self.path == "/execution-parameters":
            self.reply(404, b"")
        else:
            self.reply(404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            in_flight[0] += 1
            seen["max_in_flight"] = max(seen["max_in_flight"], in_flight[0])
            seen["requests"] += 1
        try:
            time.sleep(0.05)  # long enough for concurrent requests to overlap
            if self.headers.get("Content-Type") != "text/csv":
                self.reply(415, b"text/csv only", "text/plain")
                return
            out = []
            for line in body.decode().splitlines():
                index, text = line.split(",", 1)
                out.append(f"{index},{text.upper()},{len(text)}")
            self.reply(200, ("\n".join(out) + "\n").encode())
        finally:
            with lock:
                in_flight[0] -= 1
                print("stats", os.environ.get("HOSTNAME"), json.dumps(seen), flush=True)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def make_line_model(root: Path) -> Path:
    folder = root / "line-model"
    folder.mkdir()
    (folder / "server.py").write_text(LINE_MODEL)
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    return folder


def wait_for_transform(sagemaker: Any, name: str, deadline: float = 240.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        described = sagemaker.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        assert time.monotonic() < end, f"{name} still {described['TransformJobStatus']}"
        time.sleep(0.2)


def transform_request(name: str, source: Path, output: Path, **extra: Any) -> dict[str, Any]:
    request = {
        "TransformJobName": name,
        "ModelName": "lines",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source.as_uri()}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output.as_uri(), "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
    }
    request.update(extra)
    return request


@pytest.fixture
def lines_model(server: RunningServer, tmp_path: Path) -> Any:
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="lines", PrimaryContainer={"Image": str(make_line_model(tmp_path))}
    )
    return sagemaker


@pytest.mark.slow
def test_100k_lines_over_3_files_come_back_line_for_line(
    server: RunningServer, lines_model: Any, tmp_path: Path
) -> None:
    source = tmp_path / "input"
    source.mkdir()
    expected: dict[str, list[str]] = {}
    total = 0
    for part, count in (("a.csv", 33_334), ("b.csv", 33_333), ("c.csv", 33_333)):
        rows = [f"{total + i},record {total + i} " + "x" * (i % 90) for i in range(count)]
        total += count
        (source / part).write_text("\n".join(rows) + "\n")
        expected[part] = [
            f"{r.split(',', 1)[0]},{r.split(',', 1)[1].upper()},{len(r.split(',', 1)[1])}"
            for r in rows
        ]
    assert total == 100_000
    output = tmp_path / "output"
    started = time.monotonic()
    lines_model.create_transform_job(
        **transform_request(
            "hundred-k",
            source,
            output,
            BatchStrategy="MultiRecord",
            MaxConcurrentTransforms=2,
            MaxPayloadInMB=1,
        )
    )
    described = wait_for_transform(lines_model, "hundred-k")
    print(f"100,000 lines in {time.monotonic() - started:.2f} s")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert sorted(p.name for p in output.iterdir()) == ["a.csv.out", "b.csv.out", "c.csv.out"]
    for part, lines in expected.items():
        assert (output / f"{part}.out").read_text().splitlines() == lines
    # Each file was more than one request, and requests overlapped on an instance.
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="hundred-k/algo-"
    )["logStreams"]
    assert len(streams) == 2
    stats = []
    for stream in streams:
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TransformJobs", logStreamName=stream["logStreamName"]
        )["events"]
        stats.append(events[-1]["message"])
    print(stats)
    requests = sum(int(s.split('"requests": ')[1].split(",")[0]) for s in stats)
    assert requests >= 6  # about 2 MB per file in 1 MB batches
    # MaxConcurrentTransforms=2: two requests in flight at once on each instance, never more.
    assert all('"max_in_flight": 2' in s for s in stats)


@pytest.mark.slow
def test_a_record_bigger_than_the_payload_fails_clearly(
    server: RunningServer, lines_model: Any, tmp_path: Path
) -> None:
    source = tmp_path / "input"
    source.mkdir()
    (source / "big.csv").write_text("1,small\n2," + "y" * (1024 * 1024 + 10) + "\n")
    (source / "fine.csv").write_text("1,ok\n")
    output = tmp_path / "output"
    lines_model.create_transform_job(
        **transform_request(
            "too-big", source, output, BatchStrategy="SingleRecord", MaxPayloadInMB=1
        )
    )
    described = wait_for_transform(lines_model, "too-big")
    assert described["TransformJobStatus"] == "Failed"
    assert "big.csv" in described["FailureReason"]
    assert "MaxPayloadInMB" in described["FailureReason"]
    # The object that worked keeps its output; the one that failed has none.
    assert (output / "fine.csv.out").read_text() == "1,OK,2\n"
    assert not (output / "big.csv.out").exists()


def test_bad_transform_requests_are_refused(
    server: RunningServer, lines_model: Any, tmp_path: Path
) -> None:
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,a\n")
    with pytest.raises(ClientError) as raised:
        lines_model.create_transform_job(
            **transform_request("no-input", tmp_path / "missing", tmp_path / "out")
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "does not exist" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        lines_model.create_transform_job(
            **transform_request("bad", source, tmp_path / "out", MaxPayloadInMB=101)
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    request = transform_request("no-model", source, tmp_path / "out")
    request["ModelName"] = "nothing"
    with pytest.raises(ClientError) as raised:
        lines_model.create_transform_job(**request)
    assert "Could not find model" in raised.value.response["Error"]["Message"]
    assert lines_model.list_transform_jobs()["TransformJobSummaries"] == []


@pytest.mark.slow
def test_input_filter_join_and_output_filter_on_csv(
    server: RunningServer, lines_model: Any, tmp_path: Path
) -> None:
    source = tmp_path / "input"
    source.mkdir()
    (source / "rows.csv").write_text('id-1,a,bb\nid-2,c,"d,e"\n')
    output = tmp_path / "output"
    lines_model.create_transform_job(
        **transform_request(
            "joined",
            source,
            output,
            TransformOutput={
                "S3OutputPath": output.as_uri(),
                "AssembleWith": "Line",
                "Accept": "text/csv",
            },
            BatchStrategy="MultiRecord",
            DataProcessing={
                "InputFilter": "$[1:]",  # inclusive slice: columns 1 and 2
                "JoinSource": "Input",
                "OutputFilter": "$[0,-1]",  # the id, and the model's last column
            },
        )
    )
    described = wait_for_transform(lines_model, "joined")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    # The model saw "a,bb" and 'c,"d,e"' and answered "a,BB,2" and 'c,"D,E",5'.
    assert (output / "rows.csv.out").read_text().splitlines() == ["id-1,2", "id-2,5"]


@pytest.mark.slow
def test_stop_transform_job(server: RunningServer, tmp_path: Path) -> None:
    image = tmp_path / "slow-model"
    image.mkdir()
    (image / "server.py").write_text(LINE_MODEL.replace("time.sleep(0.05)", "time.sleep(0.5)"))
    (image / "Dockerfile").write_text(
        "FROM scratch\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(ModelName="lines", PrimaryContainer={"Image": str(image)})
    source = tmp_path / "input"
    source.mkdir()
    (source / "many.csv").write_text("".join(f"{i},row\n" for i in range(200)))
    output = tmp_path / "output"
    request = transform_request("halted", source, output, BatchStrategy="SingleRecord")
    request["TransformResources"]["InstanceCount"] = 1
    sagemaker.create_transform_job(**request)
    end = time.monotonic() + 60
    logs = server.client("logs")
    while True:  # stop once records are being sent
        streams = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="halted/algo-1"
        )["logStreams"]
        if streams:
            break
        assert time.monotonic() < end
        time.sleep(0.1)
    time.sleep(0.5)  # a 5 s request is in flight now
    stopped_at = time.monotonic()
    sagemaker.stop_transform_job(TransformJobName="halted")
    assert sagemaker.describe_transform_job(TransformJobName="halted")["TransformJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    described = wait_for_transform(sagemaker, "halted", deadline=30)
    assert described["TransformJobStatus"] == "Stopped"
    # The request in flight did not hold the stop back.
    assert time.monotonic() - stopped_at < 3
    assert not (output / "many.csv.out").exists()
    # Stopped while its instance is still starting: no grace period to wait out either.
    request["TransformJobName"] = "halted-early"
    sagemaker.create_transform_job(**request)
    stopped_at = time.monotonic()
    sagemaker.stop_transform_job(TransformJobName="halted-early")
    described = wait_for_transform(sagemaker, "halted-early", deadline=30)
    assert described["TransformJobStatus"] == "Stopped"
    assert time.monotonic() - stopped_at < 3
