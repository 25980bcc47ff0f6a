"""What dockyard ships: every declared dependency is one the package imports, the package data
names files that exist (and every data file), and a built wheel holds the migrations."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "dockyard"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DATA: list[str] = PYPROJECT["tool"]["setuptools"]["package-data"]["dockyard"]
MIGRATIONS = ["env.py", "versions/0001_training_jobs.py", "versions/0007_postgresql.py"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules() -> set[str]:
    """The top-level modules that dockyard's own files import."""
    names: set[str] = set()
    for file in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


# Dependencies no dockyard module imports, because another dependency loads them by name.
LOADED_BY_NAME = {
    "psycopg": "SQLAlchemy's postgresql+psycopg dialect (storage/database.py names it)",
}


def test_every_declared_dependency_is_imported_by_the_package() -> None:
    providers = importlib.metadata.packages_distributions()
    imported = {normalized(d) for module in imported_modules() for d in providers.get(module, [])}
    declared = {
        normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group())  # type: ignore[union-attr]
        for requirement in PYPROJECT["project"]["dependencies"]
    }
    assert declared - imported == set(LOADED_BY_NAME)
    assert "postgresql+psycopg" in (PACKAGE / "storage" / "database.py").read_text()


def test_package_data_names_only_files_that_exist_and_every_data_file() -> None:
    listed: set[Path] = set()
    for pattern in PACKAGE_DATA:
        matches = set(PACKAGE.glob(pattern))
        assert matches, f"package data {pattern!r} matches no file under src/dockyard"
        listed |= matches
    data = {
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert data - listed == set()


@pytest.mark.slow
def test_a_built_wheel_holds_the_migrations_and_declares_no_unused_dependency(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"  # a copy: an in-tree build would leave build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        PACKAGE, source / "src" / "dockyard", ignore=shutil.ignore_patterns("__pycache__")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("dockyard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    for migration in MIGRATIONS:
        assert f"dockyard/storage/migrations/{migration}" in names
    assert "dockyard/py.typed" in names
    assert "dockyard/runtimes/shim/dockyard_shim.py" in names
    # The web console's files, which the server reads from the installed package.
    assert {"dockyard/console/index.html", "dockyard/console/static/console.css"} <= names
    # Its modules, pages and the vendored charting library, in folders below static/.
    assert {
        "dockyard/console/static/app.js",
        "dockyard/console/static/pages/training-job.js",
        "dockyard/console/static/vendor/uPlot.esm.js",
        "dockyard/console/static/vendor/uPlot.LICENSE",
    } <= names
    assert not [line for line in requires if "fastapi" in line]
