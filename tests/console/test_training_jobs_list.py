"""The training jobs list in a real Chromium: its rows, filtered by name and by status, sorted by
a column's header, each linking to the job's page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_image, training_request, wait_for_job
from tests.console.conftest import Console


def names_shown(console: Console) -> list[str]:
    return console.page.locator("tbody tr td:first-child").all_inner_texts()


@pytest.mark.slow
def test_the_list_filters_sorts_and_links(console: Console, tmp_path: Path) -> None:
    sagemaker = console.server.client("sagemaker")
    works = make_image(tmp_path / "works", "print('ok')")
    fails = make_image(tmp_path / "fails", "raise SystemExit(3)")
    for name, image in [("beta-ok", works), ("alpha-ok", works), ("gamma-fails", fails)]:
        sagemaker.create_training_job(**training_request(name, image))
        wait_for_job(sagemaker, name)

    page = console.page
    page.goto(console.url("/console/training-jobs"))
    page.get_by_text("3 of 3 training jobs").wait_for()
    # Newest first by default; the instance type comes from each job's description.
    assert names_shown(console) == ["gamma-fails", "alpha-ok", "beta-ok"]
    assert page.locator("tbody").inner_text().count("ml.m5.large") == 3

    page.get_by_role("button", name="Name").click()
    assert names_shown(console) == ["alpha-ok", "beta-ok", "gamma-fails"]
    page.get_by_role("button", name="Name").click()
    assert names_shown(console) == ["gamma-fails", "beta-ok", "alpha-ok"]

    page.get_by_label("Name", exact=True).fill("ok")
    assert sorted(names_shown(console)) == ["alpha-ok", "beta-ok"]
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Status").select_option("Failed")
    assert names_shown(console) == ["gamma-fails"]
    page.get_by_text("1 of 3 training jobs").wait_for()

    page.get_by_role("link", name="gamma-fails").click()
    page.get_by_role("heading", level=1, name="gamma-fails").wait_for()
    page.locator("#failure-reason").wait_for()
