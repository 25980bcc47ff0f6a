"""Framework environments and requirements layers: real venvs, real pip, the real toolkit, and the
real sandbox running `train` from them.

Environments are built in the session's `shared_envs_dir` (once per machine); layers in a folder of
the test's own, so each run builds them afresh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtimes import environments
from dockyard.runtimes.code_requirements import CodeRequirements
from dockyard.runtimes.environments import (
    EnvironmentBuildError,
    Environments,
    PythonEnvironment,
    framework_image,
)
from dockyard.runtimes.frameworks import Framework, resolve_framework
from dockyard.runtimes.images import DEFAULT_PATH
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.sandbox_spec import SandboxSpec
from dockyard.runtimes.shim import dockyard_shim
from dockyard.runtimes.volumes import GIB, HostFolder
from dockyard.settings import Settings


class Log:
    """Collects the lines an environment build logs."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def framework(image: str) -> Framework:
    resolved = resolve_framework(image)
    assert resolved is not None
    return resolved


def python_run(
    env: PythonEnvironment, code: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env.python), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": DEFAULT_PATH, **variables},
    )


@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any process started from here on fails the test: a reused environment runs no pip."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a process was started: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def package(folder: Path, name: str, setup_imports: str = "") -> None:
    (folder / name / name).mkdir(parents=True)
    (folder / name / name / "__init__.py").write_text(f"NAME = {name!r}\n")
    (folder / name / "setup.py").write_text(
        f"{setup_imports}\nfrom setuptools import setup\n"
        f"setup(name={name!r}, version='1.0', packages=[{name!r}])\n"
    )


def code_with_packages(folder: Path, requirements: str) -> Path:
    """A code folder with two local packages; pkg_b's setup.py imports pkg_a (as an old
    pycocotools sdist imports Cython)."""
    folder.mkdir(parents=True)
    package(folder, "pkg_a")
    package(folder, "pkg_b", setup_imports="import pkg_a")
    (folder / "requirements.txt").write_text(requirements)
    return folder


# -- without building anything --------------------------------------------------------------------


def test_framework_image_puts_train_on_path_and_names_the_toolkit_module() -> None:
    base = PythonEnvironment(Path("/envs/pytorch-2.13-abc"), "abc" * 20, (Path("/envs/p"),))
    layer = PythonEnvironment(Path("/envs/layer-def"), "def" * 20, (), base=base)
    pytorch = framework("dockyard/pytorch:2.13")

    image = framework_image(pytorch, base)
    assert image.env == {
        "PATH": f"/envs/pytorch-2.13-abc/bin:{DEFAULT_PATH}",
        "SAGEMAKER_TRAINING_MODULE": "dockyard_shim:pytorch_main",
        "PYTHONUNBUFFERED": "TRUE",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert (image.entrypoint, image.cmd, image.workdir) == (None, None, "/")
    assert image.argv(default_argument="train") == ["train"]
    assert (image.context, image.dockerfile, image.digest) == (
        base.root,
        base.root / "IMAGE",
        base.key,
    )

    layered = framework_image(framework("dockyard/python:3.11"), layer)
    assert layered.env["PATH"] == f"/envs/layer-def/bin:/envs/pytorch-2.13-abc/bin:{DEFAULT_PATH}"
    assert "SAGEMAKER_TRAINING_MODULE" not in layered.env
    assert layered.digest == layer.key


def test_settings_name_the_environments_folder_and_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path)
    assert settings.envs_dir == tmp_path / "envs"
    assert (settings.frameworks_file, settings.framework_python) == (None, None)
    monkeypatch.setenv("DOCKYARD_ENVS_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DOCKYARD_FRAMEWORKS_FILE", str(tmp_path / "frameworks.json"))
    monkeypatch.setenv("DOCKYARD_FRAMEWORK_PYTHON", "/usr/bin/python3.11")
    settings = Settings()
    assert settings.envs_dir == tmp_path / "elsewhere"
    assert settings.frameworks_file == tmp_path / "frameworks.json"
    assert settings.framework_python == "/usr/bin/python3.11"


def test_a_code_folder_with_nothing_to_install_gets_the_base_itself(tmp_path: Path) -> None:
    base = PythonEnvironment(tmp_path / "base", "k" * 64, (tmp_path / "base",), name="python-3.11")
    envs = Environments(tmp_path / "envs")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('hi')\n")
    log = Log()
    assert envs.with_requirements(base, code, log=log) is base
    (code / "requirements.txt").write_text("# nothing needed\n\n   # dockyard: ordered\n")
    assert envs.with_requirements(base, code, log=log) is base
    assert log.lines == []
    assert not (tmp_path / "envs").exists()


def test_the_default_interpreter_is_one_the_sandbox_can_see(tmp_path: Path) -> None:
    interpreter = Environments(tmp_path).interpreter
    assert interpreter.version.startswith(f"3.{sys.version_info.minor}.")
    assert Path(interpreter.executable).is_absolute()
    hidden_in_sandbox = interpreter.executable.startswith(("/root/", "/tmp/"))
    assert bool(interpreter.exposed) == hidden_in_sandbox
    # dockyard's own interpreter may live under /root (pyenv): its prefix is then bound in.
    own = Environments(tmp_path, python=sys.executable).interpreter
    assert own.executable == os.path.realpath(sys.executable)
    if own.executable.startswith("/root/"):
        assert Path(sys.base_prefix).resolve() in own.exposed


def test_a_python_that_cannot_make_environments_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentBuildError, match="DOCKYARD_FRAMEWORK_PYTHON"):
        _ = Environments(tmp_path, python=str(tmp_path / "no-python")).interpreter


def test_the_shim_imports_only_the_standard_library_and_costs_nothing_at_start() -> None:
    folder = Path(dockyard_shim.__file__).parent
    source = Path(dockyard_shim.__file__).read_text()
    assert "import dockyard" not in source and "from dockyard" not in source
    probe = (
        f"import json, os, sys; sys.path.insert(0, {str(folder)!r}); before = set(sys.modules)\n"
        "import dockyard_shim; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    for variables in ({}, {"DOCKYARD_CODE_INSTALLED": "x"}):
        done = subprocess.run(
            [sys.executable, "-S", "-s", "-c", probe],
            capture_output=True,
            text=True,
            env=variables,
            check=True,
        )
        # Nothing but itself (and __future__, a few lines): the toolkit is patched when imported.
        assert json.loads(done.stdout) == ["__future__", "dockyard_shim"]


# -- the python framework environment (built once per machine) -----------------------------------


@pytest.fixture(scope="session")
def python_env(shared_envs_dir: Path) -> tuple[Environments, PythonEnvironment]:
    envs = Environments(shared_envs_dir)
    return envs, envs.framework(framework("dockyard/python:3.11"), Log())


@pytest.mark.slow
def test_the_python_environment_is_built_once_then_reused_with_no_pip_run(
    python_env: tuple[Environments, PythonEnvironment], shared_envs_dir: Path
) -> None:
    _, env = python_env
    assert env.root.parent == shared_envs_dir
    assert env.root.name == f"python-3.11-{env.key[:12]}"
    assert env.visible_paths[0] == env.root
    assert json.loads((env.root / ".complete").read_text())["key"] == env.key
    assert "sagemaker-training==5.1.4" in (env.root / "IMAGE").read_text()

    log = Log()
    started = time.monotonic()
    again = Environments(shared_envs_dir).framework(framework("dockyard/python:3.11"), log)
    assert time.monotonic() - started < 1.0
    assert again == env
    assert log.lines == [f"environment python-3.11 ({env.key[:12]}) ready: reused, no pip run"]


@pytest.mark.slow
def test_a_reused_environment_starts_no_process(
    python_env: tuple[Environments, PythonEnvironment], no_subprocess: None
) -> None:
    envs, env = python_env
    log = Log()
    started = time.monotonic()
    assert envs.framework(framework("dockyard/python:3.11"), log) == env
    assert time.monotonic() - started < 1.0
    assert log.lines == [f"environment python-3.11 ({env.key[:12]}) ready: reused, no pip run"]


@pytest.mark.slow
def test_the_environment_holds_the_real_toolkits_and_the_shim(
    python_env: tuple[Environments, PythonEnvironment], tmp_path: Path
) -> None:
    _, env = python_env
    done = python_run(
        env,
        "import importlib.metadata as m, sys, sagemaker_training, sagemaker_containers\n"
        "print(m.version('sagemaker-training'), m.version('sagemaker-containers'))\n"
        "print(callable(sagemaker_containers.training_env), 'dockyard_shim' in sys.modules)",
        SAGEMAKER_BASE_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["5.1.4 2.8.6.post2", "True True"]
    train = (env.bin_dir / "train").read_text()
    assert train.startswith(f"#!{env.python}\n")
    assert "from sagemaker_training.cli.train import main" in train


def opt_ml_folder(tmp_path: Path, script: str, **hyperparameters: Any) -> HostFolder:
    """A host folder whose /opt/ml is as SageMaker prepares it for a script-mode job, the code
    already in place."""
    folder = ProcessRuntime().prepare_host(tmp_path / "host", GIB)
    opt_ml = folder.opt_ml
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    for name in ("model", "output", "code", "input/data"):
        (opt_ml / name).mkdir(parents=True, exist_ok=True)
    hps = {"sagemaker_program": "train.py", "sagemaker_submit_directory": "/opt/ml/code"}
    hps.update(hyperparameters)
    (config / "hyperparameters.json").write_text(
        json.dumps({k: json.dumps(v) for k, v in hps.items()})
    )
    (config / "inputdataconfig.json").write_text("{}")
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"})
    )
    (opt_ml / "code" / "train.py").write_text(script)
    return folder


def train_in_sandbox(
    image_name: str,
    env: PythonEnvironment,
    folder: HostFolder,
    hidden: list[Path],
    **variables: str,
) -> tuple[int, list[str]]:
    """Run `train` from the environment in a real sandbox, as the engine does."""
    image = framework_image(framework(image_name), env)
    runtime = ProcessRuntime()
    network = runtime.create_network(outside=False)
    spec = SandboxSpec(
        image=image,
        argv=image.argv(default_argument="train"),
        hostname="algo-1",
        folder=folder,
        network=network,
        read_only_binds=[(path, str(path)) for path in env.visible_paths],
        env={"TRAINING_JOB_NAME": "environments-test", **variables},
        hosts={"algo-1": "127.0.10.1"},
        hidden_paths=hidden,
    )
    lines: list[str] = []
    try:
        host = runtime.start_sandbox(spec, lambda stream, line: lines.append(line))
        code = host.wait(300)
        if code is None:
            host.kill()
            raise TimeoutError("\n".join(lines))
    finally:
        network.close()
    return code, lines


TRAIN_SCRIPT = """
import json, os, sys
import sagemaker_containers
env = sagemaker_containers.training_env()
with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "hps": env.hyperparameters, "python": sys.executable}, f)
print("trained")
"""


@pytest.mark.slow
def test_train_runs_the_real_toolkit_in_a_sandbox_that_hides_the_environments_folder(
    python_env: tuple[Environments, PythonEnvironment], shared_envs_dir: Path, tmp_path: Path
) -> None:
    _, env = python_env
    folder = opt_ml_folder(tmp_path, TRAIN_SCRIPT, epochs=3, optimizer="adam")
    opt_ml = folder.opt_ml
    code, lines = train_in_sandbox("dockyard/python:3.11", env, folder, hidden=[shared_envs_dir])
    assert code == 0, "\n".join(lines)
    assert "trained" in lines
    seen = json.loads((opt_ml / "model" / "seen.json").read_text())
    assert seen == {
        "argv": ["--epochs", "3", "--optimizer", "adam"],
        "hps": {"epochs": 3, "optimizer": "adam"},
        "python": str(env.python),
    }
    assert (opt_ml / "output" / "success").exists()


# -- requirements layers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ordered_layer(
    python_env: tuple[Environments, PythonEnvironment], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Environments, PythonEnvironment, Path, Log]:
    """A layer over the python environment from a requirements.txt in ordered mode."""
    _, base = python_env
    root = tmp_path_factory.mktemp("layers")
    code = code_with_packages(root / "code", "# dockyard: ordered\n./pkg_a\n./pkg_b\n")
    envs = Environments(root / "home" / "envs")
    log = Log()
    return envs, envs.with_requirements(base, code, log=log), code, log


@pytest.mark.slow
def test_one_pip_run_cannot_build_a_setup_py_that_imports_an_earlier_line(
    python_env: tuple[Environments, PythonEnvironment], tmp_path: Path
) -> None:
    _, base = python_env
    code = code_with_packages(tmp_path / "code", "./pkg_a\n./pkg_b\n")
    envs = Environments(tmp_path / "envs")
    log = Log()
    with pytest.raises(EnvironmentBuildError) as raised:
        envs.with_requirements(base, code, log=log)
    message = str(raised.value)
    assert message.startswith("pip could not install requirements.txt: ")
    assert "No module named 'pkg_a'" in message
    assert len(message) < 1024  # pip's traceback frames are left out
    assert "$ pip install -r requirements.txt" in log.lines  # pip's own output was streamed
    assert "No module named 'pkg_a'" in log.text
    assert not list((tmp_path / "envs").glob("layer-*"))  # no half layer
    assert sorted(p.name for p in code.iterdir()) == ["pkg_a", "pkg_b", "requirements.txt"]


@pytest.mark.slow
def test_ordered_mode_installs_line_by_line_without_build_isolation(
    ordered_layer: tuple[Environments, PythonEnvironment, Path, Log],
    python_env: tuple[Environments, PythonEnvironment],
) -> None:
    envs, layer, code, log = ordered_layer
    _, base = python_env
    assert layer.base == base
    assert layer.root == envs.root / f"layer-{layer.key[:12]}"
    assert layer.visible_paths == (layer.root, *base.visible_paths)
    assert "ordered install 1/2: ./pkg_a" in log.lines
    assert "ordered install 2/2: ./pkg_b" in log.lines
    assert log.lines[-1].startswith(
        f"environment python-3.11 + code requirements ({layer.key[:12]})"
    )
    assert log.lines[-1].endswith(" s") and "ready: built in" in log.lines[-1]
    done = python_run(
        layer,
        "import pkg_a, pkg_b, sagemaker_training, dockyard_shim; print(pkg_a.NAME, pkg_b.NAME)",
    )
    assert (done.returncode, done.stdout) == (0, "pkg_a pkg_b\n"), done.stderr
    # The framework's packages come from the base: the layer holds only what was missing.
    layer_packages = {p.name for p in next(layer.root.glob("lib/python3*/site-packages")).iterdir()}
    assert {"pkg_a", "pkg_b"} <= layer_packages and "sagemaker_training" not in layer_packages
    assert (layer.bin_dir / "train").read_text().startswith(f"#!{layer.python}\n")
    assert not list(code.glob("*/*.egg-info"))  # the user's folder is left as it was


@pytest.mark.slow
def test_a_layer_is_reused_with_no_pip_run(
    ordered_layer: tuple[Environments, PythonEnvironment, Path, Log],
    python_env: tuple[Environments, PythonEnvironment],
    tmp_path: Path,
    no_subprocess: None,
) -> None:
    envs, layer, code, _ = ordered_layer
    _, base = python_env
    log = Log()
    started = time.monotonic()
    assert envs.with_requirements(base, code, log=log) == layer
    # The same code staged elsewhere (new mtimes) is the same layer: keyed by content.
    copy = shutil.copytree(code, tmp_path / "staged", copy_function=shutil.copy)
    assert envs.with_requirements(base, copy, log=log) == layer
    assert time.monotonic() - started < 1.0
    reused = (
        f"environment python-3.11 + code requirements ({layer.key[:12]}) ready: reused, no pip run"
    )
    assert log.lines == [reused, reused]


@pytest.mark.slow
def test_the_layer_key_follows_the_content_pip_reads(
    ordered_layer: tuple[Environments, PythonEnvironment, Path, Log],
    python_env: tuple[Environments, PythonEnvironment],
    tmp_path: Path,
) -> None:
    _, layer, code, _ = ordered_layer
    _, base = python_env

    def key(folder: Path, ordered: bool = True) -> str:
        return environments._layer_key(base, CodeRequirements.read(folder), ordered)

    assert key(code) == layer.key
    assert key(code, ordered=False) != layer.key
    changed = shutil.copytree(code, tmp_path / "changed")
    (changed / "pkg_a" / "pkg_a" / "__init__.py").write_text("NAME = 'changed'\n")
    assert key(changed) != layer.key
    unrelated = shutil.copytree(code, tmp_path / "unrelated")
    (unrelated / "train.py").write_text("print('a new script needs no new layer')\n")
    assert key(unrelated) == layer.key
    (unrelated / "setup.py").write_text("from setuptools import setup\nsetup(name='job')\n")
    assert key(unrelated) != layer.key  # now the folder is a package: all of it is installed


@pytest.mark.slow
def test_the_shim_stops_the_toolkits_pip_steps_when_dockyard_installed_the_code(
    ordered_layer: tuple[Environments, PythonEnvironment, Path, Log], tmp_path: Path
) -> None:
    _, layer, _, _ = ordered_layer
    code = tmp_path / "code"
    code.mkdir()
    # pip cannot install this (no index): were the toolkit to run pip, it would fail.
    (code / "requirements.txt").write_text("dockyard-test-no-such-package==1.0\n")
    (code / "train.py").write_text("print('hi')\n")
    (code / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (code / "run.sh").chmod(0o644)
    package_dir = tmp_path / "package"
    package_dir.mkdir()
    (package_dir / "setup.py").write_text("from setuptools import setup\nsetup(name='job')\n")
    script = (
        "import logging, os, sys\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
        "from sagemaker_training import entry_point, modules\n"
        "import sagemaker_containers.entry_point as legacy\n"
        f"entry_point.install('train.py', {str(code)!r})\n"
        f"entry_point.install('run.sh', {str(code)!r})\n"
        f"legacy.install('train', {str(package_dir)!r})\n"
        f"print(oct(os.stat({str(code / 'run.sh')!r}).st_mode & 0o777))\n"
        f"print({str(code)!r} in sys.path, {str(package_dir)!r} in sys.path)\n"
    )
    variables = {"SAGEMAKER_BASE_DIR": str(tmp_path / "opt_ml"), "PIP_NO_INDEX": "1"}

    done = python_run(layer, script, DOCKYARD_CODE_INSTALLED=layer.key, **variables)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0o777", "True", "True"]  # the .sh entry point still chmodded
    message = (
        f"dockyard installed the code's requirements before the sandbox started (layer {layer.key})"
    )
    assert f"sagemaker-training-toolkit: {message}" in done.stderr
    assert f"sagemaker-containers: {message}" in done.stderr
    assert "pip install" not in done.stderr

    # Without the variable the toolkit runs pip, which fails: the check above means something.
    done = python_run(layer, script, **variables)
    assert done.returncode != 0
    assert "InstallRequirementsError" in done.stderr
    assert "dockyard-test-no-such-package" in done.stderr


LAYER_SCRIPT = """
import pkg_a, pkg_b, sys
print("imported", pkg_a.NAME, pkg_b.NAME, "with", sys.executable)
"""


@pytest.mark.slow
def test_a_job_runs_on_its_layer_in_the_sandbox_without_pip(
    ordered_layer: tuple[Environments, PythonEnvironment, Path, Log],
    shared_envs_dir: Path,
    tmp_path: Path,
) -> None:
    envs, layer, code, _ = ordered_layer
    folder = opt_ml_folder(tmp_path, LAYER_SCRIPT)
    shutil.copy(code / "requirements.txt", folder.opt_ml / "code" / "requirements.txt")
    hidden = [envs.root.parent, shared_envs_dir]  # dockyard's state folder and the shared one
    exit_code, lines = train_in_sandbox(
        "dockyard/python:3.11", layer, folder, hidden, DOCKYARD_CODE_INSTALLED=layer.key
    )
    assert exit_code == 0, "\n".join(lines)
    assert f"imported pkg_a pkg_b with {layer.python}" in lines
    assert any(
        line.endswith(f"before the sandbox started (layer {layer.key})") for line in lines
    ), lines


@pytest.mark.slow
def test_a_folder_without_its_marker_is_rebuilt_and_two_builds_at_once_build_once(
    python_env: tuple[Environments, PythonEnvironment], tmp_path: Path
) -> None:
    _, base = python_env
    code = code_with_packages(tmp_path / "code", "# dockyard: ordered\n./pkg_a\n")
    envs = Environments(tmp_path / "envs")
    logs = [Log(), Log()]
    results: list[PythonEnvironment] = []
    threads = [
        threading.Thread(
            target=lambda log=log: results.append(envs.with_requirements(base, code, log=log))
        )
        for log in logs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2 and results[0] == results[1]
    layer = results[0]
    assert sum(log.text.count("Successfully installed pkg_a") for log in logs) == 1
    assert any(
        log.lines[-1].endswith(("built by another job", "reused, no pip run")) for log in logs
    )

    (layer.root / ".complete").unlink()  # as if the build had died before its end
    (layer.root / "left-over").write_text("from the dead build")
    log = Log()
    assert envs.with_requirements(base, code, log=log) == layer
    assert f"removing the unfinished build of environment {layer.name} in {layer.root}" in log.lines
    assert "Successfully installed pkg_a-1.0" in log.lines
    assert not (layer.root / "left-over").exists()
    assert (layer.root / ".complete").exists()


# -- the PyTorch environment (torch is big: built once per machine) ------------------------------


@pytest.fixture(scope="session")
def pytorch_env(shared_envs_dir: Path) -> Iterator[PythonEnvironment]:
    log = Log()
    started = time.monotonic()
    env = Environments(shared_envs_dir).framework(framework("dockyard/pytorch:2.13"), log)
    print(f"\n[pytorch environment] {log.lines[-1]} ({time.monotonic() - started:.1f} s)")
    yield env


DISTRIBUTED_SCRIPT = """
import json, os
keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SM_DLC_TORCH_VERSION")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
    json.dump({key: os.environ.get(key) for key in keys}, f)
"""


@pytest.mark.slow
def test_the_pytorch_environment_runs_ddp_jobs_with_torchrun(
    pytorch_env: PythonEnvironment, shared_envs_dir: Path, tmp_path: Path
) -> None:
    done = python_run(
        pytorch_env,
        "import torch, sagemaker_pytorch_container.training, dockyard_shim\n"
        "print(torch.__version__, callable(dockyard_shim.pytorch_main))",
        SAGEMAKER_BASE_DIR=str(tmp_path / "scratch"),
    )
    assert (done.returncode, done.stdout) == (0, "2.13.0+cpu True\n"), done.stderr

    seen = {}
    for flag in ("sagemaker_pytorch_ddp_enabled", None):
        folder = tmp_path / (flag or "plain")
        hps = {flag: True} if flag else {}
        host = opt_ml_folder(folder, DISTRIBUTED_SCRIPT, **hps)
        opt_ml = host.opt_ml
        code, lines = train_in_sandbox(
            "dockyard/pytorch:2.13", pytorch_env, host, hidden=[shared_envs_dir]
        )
        assert code == 0, "\n".join(lines)
        assert any(dockyard_shim.DDP_MESSAGE in line for line in lines) == bool(flag)
        seen[flag] = json.loads((opt_ml / "model" / "seen.json").read_text())
    # torchrun (TorchDistributed) sets the ranks; the Process runner does not. The toolkit sets
    # MASTER_ADDR and MASTER_PORT for the Process runner (torchrun picks its own port on one host).
    ranks = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
    assert [seen["sagemaker_pytorch_ddp_enabled"][key] for key in ranks] == ["0", "0", "1"]
    assert [seen[None][key] for key in ranks] == [None, None, None]
    assert (seen[None]["MASTER_ADDR"], seen[None]["MASTER_PORT"]) == ("algo-1", "7777")
    assert {s["SM_DLC_TORCH_VERSION"] for s in seen.values()} == {"2.13.0+cpu"}
