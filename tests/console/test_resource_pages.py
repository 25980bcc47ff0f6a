"""The list and detail pages of transform jobs, models and endpoint configurations, and the
images page's note on a server without an image registry, in a real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_transform_jobs_api import make_line_model, transform_request, wait_for_transform
from tests.conftest import RunningServer, free_port
from tests.console.conftest import Console, new_console


@pytest.mark.slow
def test_transform_jobs_models_and_endpoint_configs_are_listed_and_described(
    console: Console, tmp_path: Path
) -> None:
    sagemaker = console.server.client("sagemaker")
    image = make_line_model(tmp_path)
    sagemaker.create_model(ModelName="lines", PrimaryContainer={"Image": str(image)})
    sagemaker.create_endpoint_config(
        EndpointConfigName="lines-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "lines",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,a\n2,b\n")
    request = transform_request("lines-job", source, tmp_path / "output")
    request["TransformResources"]["InstanceCount"] = 1
    sagemaker.create_transform_job(**request)
    assert wait_for_transform(sagemaker, "lines-job")["TransformJobStatus"] == "Completed"

    page = console.page
    nav = page.get_by_role("navigation", name="Resources")
    nav.get_by_role("link", name="Transform jobs").click()
    page.get_by_text("1 of 1 transform jobs").wait_for()
    page.get_by_role("link", name="lines-job").click()
    page.get_by_role("heading", level=1, name="lines-job").wait_for()
    assert page.locator(".status-line [data-status='Completed']").count() == 1
    assert page.get_by_role("heading", name="TransformInput").is_visible()
    assert source.as_uri() in page.locator("main").inner_text()
    page.get_by_role("link", name="lines", exact=True).click()  # its model

    page.get_by_role("heading", level=1, name="lines").wait_for()
    assert str(image) in page.get_by_role("region").or_(page.locator("main")).first.inner_text()
    nav.get_by_role("link", name="Models").click()
    page.get_by_text("1 of 1 models").wait_for()

    nav.get_by_role("link", name="Endpoint configurations").click()
    page.get_by_text("1 of 1 endpoint configurations").wait_for()
    page.get_by_role("link", name="lines-config").click()
    page.get_by_role("heading", level=1, name="lines-config").wait_for()
    variants = page.locator("section", has=page.get_by_role("heading", name="ProductionVariants"))
    header = [c.strip() for c in variants.locator("thead th").all_inner_texts()]
    assert header == ["Variant", "Model", "Instance type", "Instances", "Weight"]
    cells = [c.strip() for c in variants.locator("tbody tr").first.locator("td").all_inner_texts()]
    described = sagemaker.describe_endpoint_config(EndpointConfigName="lines-config")
    (variant,) = described["ProductionVariants"]
    assert cells == [
        "AllTraffic",
        "lines",
        "ml.m5.large",
        "1",
        f"{variant['InitialVariantWeight']:g}",
    ]
    variants.get_by_role("link", name="lines").click()  # the variant's model
    page.get_by_role("heading", level=1, name="lines").wait_for()


@pytest.mark.slow
def test_the_images_page_lists_repositories_and_their_images(console: Console) -> None:
    ecr = console.server.client("ecr")
    ecr.create_repository(repositoryName="team/model")
    page = console.page
    page.get_by_role("navigation", name="Resources").get_by_role("link", name="Images").click()
    page.get_by_text("1 of 1 repositories").wait_for()
    page.get_by_role("link", name="team/model").click()
    page.get_by_role("heading", level=1, name="team/model").wait_for()
    page.get_by_text("No images in this repository yet.").wait_for()


@pytest.fixture
def server_without_registry(clean_env: Path) -> Iterator[RunningServer]:
    """A server whose image registry program is not there (as on a machine without the
    docker runtime's packages)."""
    from dockyard.settings import Settings

    missing = clean_env.parent / "no-such-registry"
    running = RunningServer(
        Settings(home=clean_env, port=free_port(), registry_command=str(missing))
    )
    try:
        yield running
    finally:
        running.close()


@pytest.mark.slow
def test_the_images_page_says_why_there_are_none_without_a_registry(
    browser: Any, server_without_registry: RunningServer, request: pytest.FixtureRequest
) -> None:
    with new_console(browser, server_without_registry, request) as console:
        console.sign_in("/console/images")
        page = console.page
        note = page.locator("#images-unavailable")
        note.wait_for()
        assert "Images are not available here." in note.inner_text()
        # The ECR API's own words say what is missing and how to get it.
        assert "needs an image registry" in note.inner_text()
        assert "docker-registry" in note.inner_text()
        console.errors.clear()  # the ECR API's 400, which the page turned into the note
