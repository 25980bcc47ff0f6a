"""The console's shell in a real Chromium: no page without a session, sign-in through the form,
the nav's client-side routing, and a layout usable on a narrow (phone-sized) window."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import RunningServer, make_image, training_request, wait_for_job
from tests.console.conftest import Console, new_console

# Three points, more than a second apart (the chart reads them at a period of 1 s).
LOSS_THREE_TIMES = """
import time
for loss in (1.0, 0.5, 0.25):
    print(f"loss={loss}", flush=True)
    time.sleep(1.1)
"""
NAV = [
    "Training jobs",
    "Endpoints",
    "Transform jobs",
    "Models",
    "Endpoint configurations",
    "Images",
]


@pytest.mark.slow
def test_a_page_without_a_session_redirects_to_sign_in(
    browser: Any, server: RunningServer, request: pytest.FixtureRequest
) -> None:
    with new_console(browser, server, request) as console:
        page = console.page
        page.goto(console.url("/console/endpoints/some-endpoint"))
        page.wait_for_url(re.compile(r"/console/sign-in"))
        query = parse_qs(urlsplit(page.url).query)
        assert query["next"] == ["/console/endpoints/some-endpoint"]
        assert page.get_by_label("Access key id").is_visible()
        # No data either: the JSON gateway answers 401 to a browser with no session.
        answer = page.request.post(
            console.url("/console/api/SageMaker.ListTrainingJobs"),
            data="{}",
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 401

        # Signing in lands on the page first asked for, drawn by the console's modules.
        console.sign_in("/console/endpoints/some-endpoint")
        assert urlsplit(page.url).path == "/console/endpoints/some-endpoint"
        page.get_by_role("alert").filter(has_text="Could not find endpoint").wait_for()
        console.errors.clear()  # the 400 of DescribeEndpoint for the missing endpoint, logged
        # ... and leads back to the list of its kind, drawn without a reload.
        page.get_by_role("link", name="Back to Endpoints").click()
        page.wait_for_url(re.compile(r"/console/endpoints$"))
        page.get_by_role("heading", name="Endpoints").wait_for()


@pytest.mark.slow
def test_nav_routes_on_the_client_and_signs_out(console: Console) -> None:
    page = console.page
    nav = page.get_by_role("navigation", name="Resources")
    assert [link.inner_text() for link in nav.get_by_role("link").all()] == NAV
    page.evaluate("window.stillThisPage = true")  # gone if the browser loaded a page anew
    for name, path, heading in [
        ("Endpoints", "/console/endpoints", "Endpoints"),
        ("Models", "/console/models", "Models"),
        ("Endpoint configurations", "/console/endpoint-configs", "Endpoint configurations"),
        ("Transform jobs", "/console/transform-jobs", "Transform jobs"),
        ("Training jobs", "/console/training-jobs", "Training jobs"),
    ]:
        nav.get_by_role("link", name=name, exact=True).click()
        page.get_by_role("heading", level=1, name=heading, exact=True).wait_for()
        assert urlsplit(page.url).path == path
        assert (
            nav.get_by_role("link", name=name, exact=True).get_attribute("aria-current") == "page"
        )
    assert page.evaluate("window.stillThisPage") is True
    page.go_back()
    page.get_by_role("heading", level=1, name="Transform jobs").wait_for()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/sign-in"))
    page.goto(console.url("/console/models"))
    page.wait_for_url(re.compile(r"/console/sign-in"))


@pytest.mark.slow
def test_a_narrow_window_shows_every_part_without_sideways_scrolling(
    browser: Any, server: RunningServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    job = training_request("narrow", make_image(tmp_path / "img", LOSS_THREE_TIMES))
    job["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=(\S+)"}]
    sagemaker.create_training_job(**job)
    assert wait_for_job(sagemaker, "narrow")["TrainingJobStatus"] == "Completed"
    with new_console(browser, server, request, viewport={"width": 390, "height": 844}) as console:
        console.sign_in("/console/training-jobs")
        page = console.page
        page.get_by_role("heading", level=1, name="Training jobs").wait_for()
        for name in NAV:
            assert page.get_by_role("link", name=name, exact=True).is_visible()
        assert page.get_by_role("button", name="Sign out").is_visible()
        assert_fits(page)
        # The job's page too: its chart, log and tables fit the window.
        page.get_by_role("link", name="narrow").click()
        page.locator("#log").get_by_text("loss=0.25").wait_for()
        page.wait_for_function("() => window.dockyardCharts?.loss?.data[0].length === 3")
        assert page.evaluate("window.dockyardCharts.loss.width") <= 390
        assert_fits(page)


def assert_fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide in a 390 px window"
