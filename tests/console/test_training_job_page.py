"""A training job's page in a real Chromium: the log pane follows a running job without a
reload, Stop (confirmed) stops it, and FailureReason stands out when it failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_image, training_request, wait_for_job
from tests.console.conftest import Console

LOG_GROUP = "/aws/sagemaker/TrainingJobs"

# Prints, sleeps long enough for the page to show the first lines, prints more.
TALKS_TWICE = """
import time
print("first words", flush=True)
time.sleep(12)
print("later words", flush=True)
"""

RUNS_UNTIL_STOPPED = """
import time
for i in range(600):
    print(f"still running {i}", flush=True)
    time.sleep(0.5)
"""


def wait_for_log_line(server: Any, job: str, words: str, deadline: float = 60.0) -> None:
    """Until `words` is in the job's log as the Logs API serves it."""
    logs = server.client("logs")
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")
        for stream in streams["logStreams"]:
            events = logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            if any(words in e["message"] for e in events):
                return
        time.sleep(0.2)
    raise TimeoutError(f"{words!r} not in {job}'s log within {deadline} s")


@pytest.mark.slow
def test_the_log_pane_shows_lines_as_the_job_writes_them(console: Console, tmp_path: Path) -> None:
    sagemaker = console.server.client("sagemaker")
    image = make_image(tmp_path / "img", TALKS_TWICE)
    sagemaker.create_training_job(**training_request("talks-twice", image))
    wait_for_log_line(console.server, "talks-twice", "first words")

    page = console.page
    page.goto(console.url("/console/training-jobs/talks-twice"))
    pane = page.locator("#log")
    pane.get_by_text("first words").wait_for()
    page.evaluate("window.stillThisPage = true")  # gone if the page were loaded anew
    # The job is still sleeping: what the pane shows so far cannot have its later line.
    assert sagemaker.describe_training_job(TrainingJobName="talks-twice")["TrainingJobStatus"] == (
        "InProgress"
    )
    assert "later words" not in pane.inner_text()

    pane.get_by_text("later words").wait_for(timeout=60_000)
    assert page.evaluate("window.stillThisPage") is True
    line = pane.locator(".log-line", has_text="later words")
    assert line.get_attribute("data-host") == "algo-1"
    assert line.locator(".log-host").inner_text() == "[algo-1]"
    # The lines are in the order written, each once.
    text = pane.inner_text()
    assert text.index("first words") < text.index("later words")
    assert text.count("later words") == 1
    described = wait_for_job(sagemaker, "talks-twice")
    assert described["TrainingJobStatus"] == "Completed"
    page.locator(".status-line [data-status='Completed']").wait_for()

    # The model's link downloads the very archive the job uploaded.
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    with page.expect_download() as download:
        page.get_by_role("link", name=uri).click()
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    saved = Path(download.value.path())
    assert saved.read_bytes() == console.server.engine.store.get_bytes(bucket, key)


@pytest.mark.slow
def test_a_running_job_stopped_from_its_page_shows_stopped(
    console: Console, tmp_path: Path
) -> None:
    sagemaker = console.server.client("sagemaker")
    image = make_image(tmp_path / "img", RUNS_UNTIL_STOPPED)
    sagemaker.create_training_job(**training_request("to-stop", image))
    wait_for_log_line(console.server, "to-stop", "still running 0")

    page = console.page
    page.goto(console.url("/console/training-jobs/to-stop"))
    page.locator("#log").get_by_text("still running 0").wait_for()
    stop = page.get_by_role("button", name="Stop", exact=True)
    # Cancelling the confirmation leaves the job running.
    stop.click()
    dialog = page.get_by_role("dialog", name="Stop training job?")
    dialog.wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    assert dialog.is_hidden()
    assert sagemaker.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] == (
        "InProgress"
    )

    stop.click()
    dialog.get_by_role("button", name="Stop job").click()
    page.locator(".status-line [data-status='Stopped']").wait_for(timeout=60_000)
    assert sagemaker.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] == (
        "Stopped"
    )
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    assert page.locator("#timeline [data-status='Stopped']").count() == 1


@pytest.mark.slow
def test_a_failed_job_shows_its_failure_reason(console: Console, tmp_path: Path) -> None:
    sagemaker = console.server.client("sagemaker")
    image = make_image(tmp_path / "img", "raise SystemExit('the data has no label column')")
    sagemaker.create_training_job(**training_request("fails", image))
    described = wait_for_job(sagemaker, "fails")
    assert described["TrainingJobStatus"] == "Failed"

    page = console.page
    page.goto(console.url("/console/training-jobs/fails"))
    reason = page.locator("#failure-reason")
    reason.wait_for()
    assert described["FailureReason"] in reason.inner_text()
    page.locator("#log").get_by_text("the data has no label column").wait_for()
    # Its model was never uploaded: the place is named, not offered as a download.
    artifacts = page.locator("section", has=page.get_by_role("heading", name="Artifacts"))
    assert "No model: the job failed" in artifacts.inner_text()
    assert artifacts.locator("a").count() == 0
