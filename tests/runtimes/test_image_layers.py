"""Image layers: which COPYs each pip command of a Dockerfile may read (and so what its cache key
covers), and real builds: pip run in order, as a build user, in a read-only view of the machine
that hides dockyard's home, from a local wheel (no index needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import EnvironmentBuildError
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.image_layers import pip_steps
from dockyard.runtimes.images import read_image
from dockyard.runtimes.run_layer import SANDBOX_PATH, write_run_layer
from tests.conftest import tiny_wheel

BUILD_UID = 1_999_999_990

# A package that needs the line before while it is built (as pycocotools needed Cython), and
# records who built it and what it could see.
NEEDS_TINYDEP = """
import os
import tinydep
from setuptools import setup

with open("needs_built.py", "w") as out:
    out.write("FACTS = " + repr({
        "tinydep": tinydep.VALUE,
        "uid": os.getuid(),
        "home_visible": os.path.exists(os.environ["HIDDEN_PROBE"]),
        "cwd": os.getcwd(),
    }))
setup(name="needs", version="1.0", py_modules=["needs_built"])
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_each_pip_command_reads_only_the_copies_under_the_folders_it_names(
    tmp_path: Path,
) -> None:
    write(tmp_path / "init" / "requirements.txt", "numpy\n")
    write(tmp_path / "program" / "train.py", "print(1)\n")
    write(tmp_path / "program" / "requirements.txt", "six\n")
    write(tmp_path / "data" / "big.csv", "1,2\n")
    write(
        tmp_path / "Dockerfile",
        "FROM ubuntu:18.04\n"
        "ENV REQS=/opt/init/requirements.txt\n"
        "COPY program /opt/ml/code\n"
        "COPY init /opt/init\n"
        "COPY data /data\n"
        "WORKDIR /opt/ml/code\n"
        "RUN pip3 install --upgrade pip && python3 -m pip install -r $REQS\n"
        "RUN pip install -r requirements.txt\n"
        "COPY late.txt /opt/init/late.txt\n"
        "RUN pip install -e /opt/init\n",
    )
    write(tmp_path / "late.txt", "x\n")
    steps = pip_steps(read_image(str(tmp_path)))
    assert [(s.number, s.arguments) for s in steps] == [
        (1, ("install", "--upgrade", "pip")),
        (1, ("install", "-r", "/opt/init/requirements.txt")),  # $REQS from the ENV
        (2, ("install", "-r", "requirements.txt")),
        (3, ("install", "-e", "/opt/init")),
    ]
    copied = [[c.destination for c in s.copies] for s in steps]
    assert copied == [
        [],  # names no file: reads nothing of the image
        ["/opt/init"],
        ["/opt/ml/code"],  # requirements.txt relative to WORKDIR
        ["/opt/init", "/opt/init/late.txt"],  # a COPY after the line before counts here
    ]
    assert all(s.run.workdir == "/opt/ml/code" for s in steps)


def test_the_key_follows_what_a_step_reads_and_nothing_else(tmp_path: Path) -> None:
    write(tmp_path / "init" / "requirements.txt", "numpy\n")
    write(tmp_path / "program" / "train.py", "print(1)\n")
    write(
        tmp_path / "Dockerfile",
        "FROM x\nCOPY program /opt/program\nCOPY init /opt/init\n"
        "RUN pip install -r /opt/init/requirements.txt\n",
    )
    envs = Environments(tmp_path / "envs")
    key = envs.image_layer_state(read_image(str(tmp_path)))["Key"]
    write(tmp_path / "program" / "train.py", "print(2)\n")  # code changes: the layer stays
    assert envs.image_layer_state(read_image(str(tmp_path)))["Key"] == key
    write(tmp_path / "init" / "requirements.txt", "numpy==2.*\n")
    assert envs.image_layer_state(read_image(str(tmp_path)))["Key"] != key


@pytest.fixture
def home_outside_tmp() -> Iterator[Path]:
    """dockyard's home where the build's view would otherwise show it (not below /tmp, which
    the build replaces with its own)."""
    folder = Path(tempfile.mkdtemp(prefix="dockyard-test-home-", dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_build_runs_in_order_as_its_own_user_and_never_sees_dockyards_home(
    tmp_path: Path, home_outside_tmp: Path
) -> None:
    home = home_outside_tmp
    tiny_wheel(tmp_path / "image" / "init" / "wheels")
    write(tmp_path / "image" / "init" / "needs" / "setup.py", NEEDS_TINYDEP)
    write(tmp_path / "image" / "init" / "requirements2.txt", "/opt/init/needs\n")
    write(
        tmp_path / "image" / "Dockerfile",
        "FROM ubuntu:18.04\n"
        "COPY init /opt/init\n"
        "WORKDIR /opt/init\n"
        "RUN pip3 install --no-index /opt/init/wheels/tinydep-1.0-py3-none-any.whl\n"
        f"ENV HIDDEN_PROBE={home}/secret\n"
        "RUN pip3 install --no-index --no-build-isolation -r requirements2.txt\n",
    )
    write(home / "secret", "dockyard's own\n")
    assert os.path.exists(home / "secret")
    before = sorted(p.name for p in (tmp_path / "image" / "init" / "needs").iterdir())
    lines: list[str] = []
    envs = Environments(home / "envs", build_uid=BUILD_UID, hidden=(home,))
    image = read_image(str(tmp_path / "image"))
    layer = envs.image_layer(image, lines.append)
    assert layer is not None
    built = subprocess.run(
        [str(layer.python), "-c", "import needs_built; print(repr(needs_built.FACTS))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'tinydep': 42" in built.stdout  # the first line's package, there at build time
    assert f"'uid': {BUILD_UID}" in built.stdout
    assert "'home_visible': False" in built.stdout
    assert "'cwd': '/opt/init/needs'" in built.stdout  # built in its image path
    # The image folder is untouched by the in-tree build; the layer belongs to root again.
    assert sorted(p.name for p in (tmp_path / "image" / "init" / "needs").iterdir()) == before
    assert {os.lstat(p).st_uid for p in layer.root.rglob("*")} == {0}
    assert [line for line in lines if line.startswith("RUN line")] == [
        "RUN line 1: pip install --no-index /opt/init/wheels/tinydep-1.0-py3-none-any.whl",
        "RUN line 2: pip install --no-index --no-build-isolation -r requirements2.txt",
    ]
    again: list[str] = []
    assert envs.image_layer(read_image(str(tmp_path / "image")), again.append) == layer
    assert any("reused, no pip run" in line for line in again)


@pytest.mark.slow
def test_a_failing_line_names_itself_and_leaves_no_layer(tmp_path: Path) -> None:
    write(
        tmp_path / "image" / "Dockerfile",
        "FROM x\nRUN pip install --no-index definitely-not-a-distribution-xyz\n",
    )
    envs = Environments(tmp_path / "envs", build_uid=BUILD_UID)
    with pytest.raises(EnvironmentBuildError) as raised:
        envs.image_layer(read_image(str(tmp_path / "image")), lambda line: None)
    message = str(raised.value)
    assert message.startswith("the image's RUN line 1 failed (pip install --no-index definitely")
    assert "No matching distribution found for definitely-not-a-distribution-xyz" in message
    assert not list((tmp_path / "envs").glob("image-*"))


def test_the_run_layer_is_a_venv_over_its_base(tmp_path: Path) -> None:
    """Made by hand: pyvenv.cfg, the interpreter's links, a .pth to the base, the base's scripts
    pointing at the run layer's Python."""
    base = tmp_path / "base"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(base)], check=True)
    write(base / "bin" / "tool", f"#!{base}/bin/python\nprint('tool')\n").chmod(0o755)
    write(base / "bin" / "other", "#!/bin/sh\necho other\n").chmod(0o755)
    # What pip writes when the Python's path is too long for a #! line.
    long_form = f"#!/bin/sh\n'''exec' \"{base}/bin/python\" \"$0\" \"$@\"\n' '''\nprint(1)\n"
    write(base / "bin" / "long", long_form).chmod(0o755)
    (base / "bin" / "linked").symlink_to("/etc/passwd")
    from dockyard.runtimes.venv_builds import PythonEnvironment

    env = PythonEnvironment(root=base, key="k", visible_paths=(base,))
    folder = write_run_layer(env, tmp_path / "host")
    config = (folder / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    assert os.readlink(folder / "bin" / "python") == os.path.realpath(base / "bin" / "python")
    assert (folder / "bin" / "tool").read_text().startswith(f"#!{SANDBOX_PATH}/bin/python\n")
    assert not (folder / "bin" / "other").exists()  # not the base's Python: not copied
    long_script = (folder / "bin" / "long").read_text()
    assert f'exec\' "{SANDBOX_PATH}/bin/python"' in long_script
    assert not (folder / "bin" / "linked").exists()  # links are never followed
    [pth] = folder.glob("lib/python3.*/site-packages/_dockyard_base.pth")
    [base_site] = base.glob("lib/python3.*/site-packages")
    assert json.dumps(str(base_site))[1:-1] in pth.read_text()
