"""The R notebook (examples/r-reticulate/notebook.R) run as an R user runs it: Rscript, reticulate,
this suite's Python (CI's is not Debian's, so its libpython differs from the one R's
LD_LIBRARY_PATH finds first) and the background server the SDK starts from inside R."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.client import Client
from dockyard.client.interpreter import package_root
from dockyard.client.local_server import ServerInfo, stop_background
from dockyard.settings import Settings
from tests.conftest import EXAMPLES, free_port

pytestmark = pytest.mark.slow

NOTEBOOK = EXAMPLES / "r-reticulate" / "notebook.R"
DEBIAN_LIBRARIES = "/usr/lib/x86_64-linux-gnu"


@pytest.fixture
def r_environment(clean_env: Path, tmp_path: Path) -> dict[str, str]:
    """The suite's environment (DOCKYARD_HOME, DOCKYARD_LOCAL_PATHS) for Rscript, with this
    Python for reticulate and this checkout's dockyard on its path."""
    python_path = [str(package_root()), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
    env = {
        **os.environ,
        "DOCKYARD_PORT": str(free_port()),
        "DOCKYARD_STOP_GRACE_SECONDS": "1",
        "RETICULATE_PYTHON": sys.executable,
        "PYTHONPATH": ":".join(python_path),
        "TMPDIR": str(tmp_path),  # R's tempdir(), where the notebook writes the training file
    }
    probe = subprocess.run(
        ["Rscript", "-e", "library(reticulate); cat(Sys.getenv('LD_LIBRARY_PATH'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(
            "the R notebook needs R with reticulate: apt-get install -y --no-install-recommends "
            f"r-base-core r-cran-reticulate\n{probe.stderr}"
        )
    # The bug's condition: R itself puts Debian's library folder on the loader's path of every
    # process it starts, the dockyard server included.
    assert DEBIAN_LIBRARIES in probe.stdout.split(":"), probe.stdout
    return env


def test_the_r_notebook_trains_deploys_predicts_and_deletes_its_endpoint(
    r_environment: dict[str, str], clean_env: Path
) -> None:
    settings = Settings(home=clean_env, port=int(r_environment["DOCKYARD_PORT"]))
    try:
        result = subprocess.run(
            ["Rscript", str(NOTEBOOK)],
            cwd=EXAMPLES.parent,
            env=r_environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "Completed - Training job completed" in output
        assert "accuracy on 10 held-out flowers: " in output
        assert "deleted endpoint " in output

        # The server the notebook started outlives R, as it would a notebook's kernel.
        server = ServerInfo.read(settings.server_file)
        assert server is not None
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"LD_LIBRARY_PATH=")]
        sagemaker = Client(settings).sagemaker
        # DeleteEndpoint returns at once, as SageMaker's does; the endpoint goes once its
        # instances have stopped.
        deadline = time.monotonic() + 30
        while sagemaker.list_endpoints()["Endpoints"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sagemaker.list_endpoints()["Endpoints"] == []
        jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
        assert [job["TrainingJobStatus"] for job in jobs] == ["Completed"]
    finally:
        stop_background(settings)
