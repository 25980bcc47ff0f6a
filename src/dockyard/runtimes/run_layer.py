"""A writable Python environment on a host's volume, over the image's read-only one: what a program
pip-installs while it runs (SageMaker's file system is writable) lands there, counts against the
host's disk, and goes away with the volume; the cached environments never change.

It is a venv made by hand (no subprocess, a few milliseconds): `pyvenv.cfg`, the interpreter's
links, a `.pth` that adds the base environment's site-packages (whose own `.pth` adds its base),
and the base's scripts with their first line pointing at this environment's Python, so `pip`,
`python3`, `train` and what they start with sys.executable all see it first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dockyard.runtimes.venv_builds import PythonEnvironment, repoint_scripts

SANDBOX_PATH = "/opt/dockyard/python"  # where the sandbox sees it
FOLDER_NAME = "python"  # its folder in the host's volume
_VERSION = re.compile(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", re.MULTILINE)


def write_run_layer(base: PythonEnvironment, host_root: Path) -> Path:
    """Write the run layer over `base` into `host_root/python`; returns that folder."""
    folder = host_root / FOLDER_NAME
    if folder.exists():
        return folder  # the same volume started again: what the program installed stays
    config = (base.root / "pyvenv.cfg").read_text(encoding="utf-8")
    match = _VERSION.search(config)
    if match is None:
        raise ValueError(f"{base.root}/pyvenv.cfg names no Python version")
    short = f"{match.group(1)}.{match.group(2)}"
    interpreter = os.path.realpath(base.python)
    bin_dir = folder / "bin"
    site = folder / "lib" / f"python{short}" / "site-packages"
    site.mkdir(parents=True)
    bin_dir.mkdir()
    (folder / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(interpreter)}\n"
        "include-system-site-packages = false\n"
        f"version = {short}\n",
        encoding="utf-8",
    )
    os.symlink(interpreter, bin_dir / "python")
    for name in ("python3", f"python{short}"):
        os.symlink("python", bin_dir / name)
    base_sites = sorted(base.root.glob("lib/python*/site-packages"))
    (site / "_dockyard_base.pth").write_text(
        "".join(f"import site; site.addsitedir({str(s)!r})\n" for s in base_sites),
        encoding="utf-8",
    )
    repoint_scripts(base, f"{SANDBOX_PATH}/bin/python", bin_dir)
    return folder
