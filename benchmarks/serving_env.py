"""What the serving benchmark needs on the machine: its own venv (.venv-bench), wrk and Java."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import HERE, REPO

BENCH_VENV = REPO / ".venv-bench"
REQUIREMENTS = HERE / "requirements-serving.txt"
_STAMP = BENCH_VENV / "requirements.sha256"
# Debian packages that provide what a fresh machine lacks (MMS needs a JRE, 8 or later).
APT_PACKAGES = {"wrk": "wrk", "java": "default-jre-headless"}
# The packages whose versions RESULTS.md records.
SERVER_PACKAGES = (
    "uvicorn", "uvloop", "httptools", "mlflow", "fastapi", "sagemaker-inference",
    "multi-model-server", "scikit-learn", "numpy",
)  # fmt: skip


class SetupError(RuntimeError):
    """Something the serving benchmark needs could not be installed."""


def _run(argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise SetupError(f"`{' '.join(argv)}` exited with {code}:\n" + "\n".join(tail))


def bench_venv(log: Path) -> Path:
    """The bin folder of .venv-bench, made first (or again, when the requirements changed)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    bin_dir = BENCH_VENV / "bin"
    if (bin_dir / "python").exists() and _STAMP.is_file() and _STAMP.read_text().strip() == digest:
        return bin_dir
    print(f"serving: installing {REQUIREMENTS.relative_to(REPO)} into .venv-bench …", flush=True)
    shutil.rmtree(BENCH_VENV, ignore_errors=True)
    # The base interpreter of the dev venv: `-m venv` run from a venv makes a venv of its base.
    _run([sys.executable, "-m", "venv", str(BENCH_VENV)], log)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, "-r", str(REQUIREMENTS)], log)
    _STAMP.write_text(digest + "\n")  # last: a half-made venv is made again next time
    return bin_dir


def ensure_program(program: str, log: Path) -> str | None:
    """None when `program` is on PATH (apt-get installing its package if needed), else why not."""
    if shutil.which(program):
        return None
    package = APT_PACKAGES[program]
    if os.geteuid() != 0:
        return f"{program} is not installed, and only root may run `apt-get install -y {package}`"
    print(f"serving: apt-get install -y {package} …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    try:
        _run(install, log, env)
    except SetupError:
        try:  # a fresh machine's package lists may be missing or stale
            _run(["apt-get", "update"], log, env)
            _run(install, log, env)
        except SetupError as exc:
            return str(exc)
    return None if shutil.which(program) else f"{package} installed, but no {program} on PATH"


def versions(bin_dir: Path) -> dict[str, str]:
    """Versions of the servers' packages in .venv-bench, of wrk and of Java."""
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", probe, *SERVER_PACKAGES],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, str] = json.loads(out.stdout)
    for program, argv in (("wrk", ["wrk", "-v"]), ("java", ["java", "-version"])):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            lines = (done.stdout + done.stderr).strip().splitlines()
            # "wrk debian/4.1.0-3+b2 [epoll] Copyright …" → "debian/4.1.0-3+b2"
            first = lines[0].split(" [")[0].removeprefix("wrk ") if lines else "?"
            found[program] = first
        except OSError:
            found[program] = "not installed"
    return found
