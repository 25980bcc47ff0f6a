"""The background server's Python and environment: found from an embedding host (R through
reticulate, where sys.executable may be R itself), and made for that Python, not for the host."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import dockyard
from dockyard.client.interpreter import (
    ServerPython,
    find_executable,
    package_root,
    server_environment,
    server_python,
)

MINOR = f"python{sys.version_info.major}.{sys.version_info.minor}"
# What R 4.2 on Debian puts in its environment (Sys.getenv() under Rscript), and what reticulate
# adds to the embedded Python's os.environ.
R_LIBRARY_PATH = "/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu:/usr/lib/jvm/default-java/lib/server"
RETICULATE_PYTHONPATH = "/usr/lib/R/site-library/reticulate/config:/somewhere/site-packages"
DEBIAN_LIBPYTHON = Path(f"/usr/lib/x86_64-linux-gnu/lib{MINOR}.so.1.0")


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


# -- the interpreter -----------------------------------------------------------------------------


def test_the_interpreter_of_a_plain_python_process_is_sys_executable_itself() -> None:
    python = server_python()
    assert python == ServerPython(sys.executable, embedded=False)


def test_a_host_binary_in_sys_executable_gives_the_environments_own_python(
    tmp_path: Path,
) -> None:
    venv_python = executable(tmp_path / "venv" / "bin" / MINOR)
    r_binary = executable(tmp_path / "R" / "bin" / "exec" / "R")
    found = find_executable(str(r_binary), str(tmp_path / "venv"), str(r_binary))
    assert found == str(venv_python)


def test_python3_then_python_then_the_base_interpreter_are_tried_in_that_order(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "venv"
    base = executable(tmp_path / "base" / "bin" / MINOR)
    assert find_executable("", str(prefix), str(base)) == str(base)
    python = executable(prefix / "bin" / "python")
    assert find_executable("", str(prefix), str(base)) == str(python)
    python3 = executable(prefix / "bin" / "python3")
    assert find_executable("", str(prefix), str(base)) == str(python3)


def test_a_python_of_another_minor_version_or_a_missing_file_is_not_taken(tmp_path: Path) -> None:
    other = executable(tmp_path / "bin" / "python3.9")
    not_executable = tmp_path / "bin" / "python3"
    not_executable.write_text("")
    kernel = executable(tmp_path / "bin" / "ipykernel_launcher")
    assert find_executable(str(other), str(tmp_path), str(kernel)) is None
    assert find_executable(str(tmp_path / "gone" / MINOR), str(tmp_path / "gone"), "") is None


# -- the environment -----------------------------------------------------------------------------

USER_ENVIRONMENT = {
    "PATH": "/work/.venv/bin:/usr/bin:/bin",
    "HOME": "/home/me",
    "HTTPS_PROXY": "http://proxy:3128",
    "NO_PROXY": "localhost",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "DOCKYARD_LOCAL_PATHS": "/data",
    "PIP_INDEX_URL": "https://mirror/simple",
    "SSL_CERT_FILE": "/etc/ssl/mine.pem",
    "PYTHONUSERBASE": "/home/me/.local",
    "R_HOME": "/usr/lib/R",
}


def test_from_an_embedding_host_the_loader_and_python_start_variables_are_dropped() -> None:
    host = {
        **USER_ENVIRONMENT,
        "LD_LIBRARY_PATH": R_LIBRARY_PATH,
        "LD_PRELOAD": "/usr/lib/R/lib/libR.so",
        "PYTHONHOME": "/usr",
        "PYTHONPATH": RETICULATE_PYTHONPATH,
    }
    env = server_environment(ServerPython("/venv/bin/python", embedded=True), host)
    assert env == {**USER_ENVIRONMENT, "PYTHONPATH": str(package_root())}


def test_from_python_itself_the_users_environment_is_kept_with_dockyards_folder_first() -> None:
    user = {**USER_ENVIRONMENT, "LD_LIBRARY_PATH": "/opt/cuda/lib64", "PYTHONPATH": "/mine:"}
    env = server_environment(ServerPython(sys.executable, embedded=False), user)
    assert env == {
        **USER_ENVIRONMENT,
        "LD_LIBRARY_PATH": "/opt/cuda/lib64",
        "PYTHONPATH": f"{package_root()}:/mine",
    }
    again = server_environment(ServerPython(sys.executable, embedded=False), env)
    assert again["PYTHONPATH"] == env["PYTHONPATH"]  # not repeated


def test_dockyards_folder_is_the_one_this_process_imported() -> None:
    assert package_root() / "dockyard" / "__init__.py" == Path(dockyard.__file__).resolve()


def _imports_in(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What the server's first imports (ssl through uvicorn, then dockyard) do in `env`."""
    return subprocess.run(
        [sys.executable, "-c", "import dockyard.api.server, dockyard; print(dockyard.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_rs_library_path_the_server_python_imports_ssl_and_this_dockyard() -> None:
    host = {**os.environ, "LD_LIBRARY_PATH": R_LIBRARY_PATH, "PYTHONPATH": RETICULATE_PYTHONPATH}
    env = server_environment(ServerPython(sys.executable, embedded=True), host)
    done = _imports_in(env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == dockyard.__file__


@pytest.mark.skipif(
    not sysconfig.get_config_var("Py_ENABLE_SHARED")
    or sysconfig.get_config_var("LIBDIR") == str(DEBIAN_LIBPYTHON.parent)
    or not DEBIAN_LIBPYTHON.exists(),
    reason=f"needs a shared-library Python whose libpython is not Debian's {DEBIAN_LIBPYTHON}",
)
def test_the_hosts_library_path_given_as_is_breaks_this_python() -> None:
    # The bug's condition, shown on this machine: what the environment above must avoid.
    done = _imports_in({**os.environ, "LD_LIBRARY_PATH": R_LIBRARY_PATH})
    assert done.returncode != 0
    assert "undefined symbol" in done.stderr
