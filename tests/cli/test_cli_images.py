"""`dockyard images check` and `build` as a user runs them: real CLI processes, a background
server, a real layer build (pip from a local wheel, so no index is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli_train import cli_env, dockyard  # noqa: F401  (fixture)
from tests.conftest import tiny_wheel

pytestmark = pytest.mark.slow

MISSING_PACKAGE = "definitely-not-a-package-xyz"


def image_folder(folder: Path, *, extra_run: str = "") -> Path:
    tiny_wheel(folder / "wheels")
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        "COPY wheels /opt/wheels\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends bash "
        "&& rm -rf /var/lib/apt/lists/*\n"
        "RUN pip install --no-index /opt/wheels/tinydep-1.0-py3-none-any.whl\n"
        "RUN echo done > /etc/done\n"
        f"{extra_run}"
        'ENTRYPOINT ["python3", "-c", "import tinydep; print(tinydep.VALUE)"]\n'
    )
    return folder


def test_check_then_build_then_check_again(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    image = image_folder(tmp_path / "image")
    checked = dockyard(cli_env, "images", "check", str(image), "--json")
    assert checked.returncode == 0, checked.stderr
    lines = json.loads(checked.stdout)["RunLines"]
    assert [(line["Number"], line["Kind"], line["Outcome"]) for line in lines] == [
        (1, "apt", "met"),
        (2, "pip", "built into the image's Python layer"),
        (3, "other", "not run"),
    ]
    assert json.loads(checked.stdout)["PythonLayer"]["Status"] == "NotBuilt"
    table = dockyard(cli_env, "images", "check", str(image))
    assert "built into the image's Python layer" in table.stdout
    assert "not built yet" in table.stdout

    built = dockyard(cli_env, "images", "build", str(image))
    assert built.returncode == 0, built.stderr
    assert "RUN line 2: pip install --no-index /opt/wheels/tinydep-1.0-py3-none-any.whl" in (
        built.stdout
    )
    assert "Successfully installed tinydep-1.0" in built.stdout
    assert "Python layer ready" in " ".join(built.stdout.split())  # rich wraps long paths
    after = json.loads(dockyard(cli_env, "images", "check", str(image), "--json").stdout)
    assert after["PythonLayer"]["Status"] == "Built"

    again = dockyard(cli_env, "images", "build", str(image))
    assert again.returncode == 0, again.stderr
    assert "reused, no pip run" in again.stdout
    assert "Successfully installed" not in again.stdout


def test_a_missing_prerequisite_is_named_with_its_fix(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    image = image_folder(
        tmp_path / "image", extra_run=f"RUN apt-get install -y {MISSING_PACKAGE}\n"
    )
    checked = dockyard(cli_env, "images", "check", str(image))
    assert checked.returncode == 1
    assert f"apt-get install {MISSING_PACKAGE}" in checked.stdout
    built = dockyard(cli_env, "images", "build", str(image))
    assert built.returncode == 1
    assert f"RUN line 4 needs {MISSING_PACKAGE}: apt-get install {MISSING_PACKAGE}" in (
        built.stderr
    )
    assert "Traceback" not in built.stderr
