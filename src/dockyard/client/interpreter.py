"""The Python that runs the background server, found from any host process (a shell's python,
Jupyter, R through reticulate), and the environment made for it rather than for the host."""

from __future__ import annotations

import os
import re
import site
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dockyard

# python, python3, python3.11, python3.13t, pypy3: not R, uwsgi or a kernel launcher.
_PYTHON_NAME = re.compile(r"^(?:python|pypy)(?P<version>\d+(?:\.\d+)?)?[a-z]?$")
# Variables an embedding host sets for its own process that would steer another program's start:
# the dynamic loader's search path and preloads (R puts /usr/lib/x86_64-linux-gnu first, and a
# pyenv-built Python then loads Debian's libpython), and Python's home and import path
# (reticulate sets PYTHONPATH to its own modules and a copy of the host's sys.path).
_LOADER_PREFIXES = ("LD_", "DYLD_")
_PYTHON_START_VARIABLES = frozenset({"PYTHONHOME", "PYTHONPATH", "PYTHONEXECUTABLE"})


@dataclass(frozen=True)
class ServerPython:
    """The interpreter to run `python -m dockyard.api.server` with."""

    executable: str
    # This process is not that interpreter itself but a program embedding it (R, uWSGI): its
    # environment was made for the host program.
    embedded: bool


def server_python() -> ServerPython | None:
    """The python executable of the environment this process runs (a virtual environment's own,
    so its site-packages are found), even when sys.executable names the embedding program; None
    when there is none."""
    executable = find_executable(sys.executable, sys.prefix, getattr(sys, "_base_executable", ""))
    if executable is None:
        return None
    return ServerPython(executable, embedded=not _is_this_process(executable))


def server_environment(python: ServerPython, environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the user's (proxies, AWS_*, DOCKYARD_*, PIP_*, PATH, HOME, a
    PYTHONPATH set in their shell), without what an embedding host set for itself, and with the
    folder this process imported dockyard from first on PYTHONPATH, so the server runs the same
    dockyard as the code that starts it."""
    if python.embedded:
        env = {
            name: value
            for name, value in environ.items()
            if name not in _PYTHON_START_VARIABLES and not name.startswith(_LOADER_PREFIXES)
        }
    else:
        # The interpreter started with this environment in this very process: it works for it.
        env = dict(environ)
    root = package_root()
    entries = [e for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
    if not _found_by_site(root):
        entries = [str(root), *(e for e in entries if e != str(root))]
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    else:
        env.pop("PYTHONPATH", None)
    return env


def package_root() -> Path:
    """The folder holding the `dockyard` package this process imported."""
    return Path(dockyard.__file__).resolve().parent.parent


def find_executable(executable: str, prefix: str, base_executable: str) -> str | None:
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    bin_dir = Path(prefix) / "bin"
    candidates = [
        executable,
        # A virtual environment's own interpreter, which finds the environment's packages.
        str(bin_dir / minor),
        str(bin_dir / "python3"),
        str(bin_dir / "python"),
        # The base interpreter of a virtual environment: its packages come through PYTHONPATH
        # only if dockyard's folder is not a site folder, so it is the last resort.
        base_executable,
    ]
    for candidate in candidates:
        if candidate and _is_python(candidate, minor):
            return candidate
    return None


def _is_python(path: str, minor: str) -> bool:
    match = _PYTHON_NAME.match(os.path.basename(path))
    if match is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False
    version = match.group("version")
    return version is None or "." not in version or f"python{version}" == minor


def _is_this_process(executable: str) -> bool:
    try:
        running = os.readlink("/proc/self/exe")
    except OSError:
        return True  # no /proc (not Linux): nothing says the environment is not the user's
    return os.path.realpath(running) == os.path.realpath(executable)


def _found_by_site(folder: Path) -> bool:
    """Whether the interpreter finds `folder` with no PYTHONPATH: one of its site folders (a
    folder that a .pth file adds, as an editable install's, is not counted: a PYTHONPATH entry
    for it is harmless)."""
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    return any(Path(f).resolve() == folder for f in folders if f)
