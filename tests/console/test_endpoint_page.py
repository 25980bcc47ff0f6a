"""An endpoint's page in a real Chromium: after 100 invocations through boto3 its counter and
chart of invocations say 100, its recent status codes say 100 answered 200, and its variant
shows its two instances, healthy, with what each served; scale, update and delete from the
page, each confirmed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.api.test_endpoints_api import deploy, make_echo_image
from tests.console.conftest import Console

INVOCATIONS = 100


@pytest.mark.slow
def test_an_endpoint_page_shows_its_invocations(console: Console, tmp_path: Path) -> None:
    server = console.server
    described = deploy(server, make_echo_image(tmp_path), "echo", count=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = server.client("sagemaker-runtime")
    answered: Counter[str] = Counter()  # by instance, as the echo model names its host
    for i in range(INVOCATIONS):
        answer = runtime.invoke_endpoint(
            EndpointName="echo", Body=f"1,2,{i}".encode(), ContentType="text/csv"
        )
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        answered[json.loads(answer["Body"].read())["host"]] += 1
    assert sorted(answered) == ["AllTraffic-1", "AllTraffic-2"]

    page = console.page
    page.goto(console.url("/console/endpoints/echo"))
    page.locator(".status-line [data-status='InService']").wait_for()
    # The counter sums the Invocations the page reads from GetMetricData (it refreshes every
    # few seconds, so it reaches 100 once the router's last second is recorded).
    page.wait_for_function(
        f"() => document.getElementById('invocations-total').textContent === '{INVOCATIONS}'",
        timeout=60_000,
    )
    # The chart draws invocations per second over 10-second buckets: its points add up to 100.
    drawn = page.evaluate(
        """() => {
            const plot = window.dockyardCharts.Invocations;
            return { labels: plot.series.slice(1).map((s) => s.label), data: plot.data };
        }"""
    )
    assert drawn["labels"] == ["invocations/s"]
    assert sum(v for v in drawn["data"][1] if v is not None) * 10 == pytest.approx(INVOCATIONS)
    # The recent invocations' status codes: all 100 answered 200.
    codes = page.get_by_role("list", name="Status codes")
    assert codes.locator("li").count() == 1
    assert codes.locator("li").get_attribute("data-code") == "200"
    assert codes.locator("li").inner_text().split()[-1] == str(INVOCATIONS)
    variants = page.get_by_role("table").first
    assert "AllTraffic" in variants.inner_text()
    assert "2 / 2" in variants.inner_text()
    # Under the variant, its instances as the page drew them: each healthy, serving, with
    # what it served (together the 100).
    instances = page.get_by_role("table", name="Instances of AllTraffic")
    headers = instances.locator("thead th").all_inner_texts()
    rows = [
        dict(zip(headers, row.locator("td").all_inner_texts(), strict=True))
        for row in instances.locator("tbody tr").all()
    ]
    assert sorted(r["Instance"] for r in rows) == ["AllTraffic-1", "AllTraffic-2"]
    for row in rows:
        assert (row["State"], row["Healthy"], row["In flight"]) == ("serving", "✓ healthy", "0")
        assert row["Node"] == "127.0.0.1"
        assert row["Started"][:4].isdigit()  # a formatted time, not "—"
    assert {r["Instance"]: int(r["Served"]) for r in rows} == dict(answered)
    assert instances.locator("[data-healthy='true']").count() == 2


@pytest.mark.slow
def test_an_endpoint_is_scaled_updated_and_deleted_from_its_page(
    console: Console, tmp_path: Path
) -> None:
    server = console.server
    sagemaker = server.client("sagemaker")
    deploy(server, make_echo_image(tmp_path), "managed")
    sagemaker.create_endpoint_config(
        EndpointConfigName="managed-bigger",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "managed-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
            }
        ],
    )
    page = console.page
    page.goto(console.url("/console/endpoints/managed"))
    page.locator(".status-line [data-status='InService']").wait_for()
    dialog = page.get_by_role("dialog")

    page.get_by_label("Instance count of AllTraffic").fill("2")
    page.get_by_role("button", name="Scale", exact=True).click()
    dialog.get_by_role("button", name="Scale").click()
    page.get_by_role("cell", name="2 / 2", exact=True).wait_for(timeout=60_000)
    variant = sagemaker.describe_endpoint(EndpointName="managed")["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)

    page.get_by_label("Endpoint configuration").select_option("managed-bigger")
    page.get_by_role("button", name="Update", exact=True).click()
    dialog.get_by_role("button", name="Update").click()
    page.get_by_role("link", name="managed-bigger").wait_for(timeout=60_000)
    page.locator(".status-line [data-status='InService']").wait_for(timeout=60_000)
    described = sagemaker.describe_endpoint(EndpointName="managed")
    assert described["EndpointConfigName"] == "managed-bigger"

    page.get_by_role("button", name="Delete endpoint").click()
    dialog.get_by_role("button", name="Delete").click()
    page.get_by_role("heading", level=1, name="Endpoints").wait_for()
    # Listed as Deleting while its instances go down (as SageMaker lists it), or gone already.
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="managed", exact=True))
    assert row.count() == 0 or "Deleting" in row.inner_text()
    names: list[str] = ["managed"]
    for _ in range(200):
        names = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
        if "managed" not in names:
            break
        page.wait_for_timeout(100)
    assert "managed" not in names
