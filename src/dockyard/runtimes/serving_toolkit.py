"""dockyard.serving for framework images: the toolkit (stdlib only) copied into a folder that
sandboxes see, with a `serve` command, so `serve` works as in SageMaker's framework images."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dockyard.serving

_SOURCE = Path(dockyard.serving.__file__).parent
_SERVE = (
    "#!/bin/sh\n"
    "# SageMaker runs `serve`; dockyard.serving is the server.\n"
    'exec python3 -m dockyard.serving "$@"\n'
)


@dataclass(frozen=True)
class ServingToolkit:
    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def python_dir(self) -> Path:
        """The folder to put on PYTHONPATH: it holds a `dockyard` package with only `serving`."""
        return self.root / "python"


def _sources() -> list[Path]:
    return sorted(path for path in _SOURCE.glob("*.py"))


def serving_toolkit(parent: Path) -> ServingToolkit:
    """The toolkit's folder under `parent`, made once per version of its source files."""
    digest = hashlib.sha256(_SERVE.encode())
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    toolkit = ServingToolkit(parent / f"serving-{digest.hexdigest()[:12]}")
    if toolkit.root.is_dir():
        return toolkit
    parent.mkdir(parents=True, exist_ok=True)
    # Built beside its final place and renamed in: a half-made copy is never used.
    work = Path(tempfile.mkdtemp(prefix=".serving-", dir=parent))
    try:
        package = work / "python" / "dockyard" / "serving"
        package.mkdir(parents=True)
        (package.parent / "__init__.py").write_text('"""dockyard.serving only."""\n')
        for path in _sources():
            shutil.copy2(path, package / path.name)
        (work / "bin").mkdir()
        serve = work / "bin" / "serve"
        serve.write_text(_SERVE)
        serve.chmod(0o755)
        os.chmod(work, 0o755)
        try:
            work.rename(toolkit.root)
        except OSError:
            if not toolkit.root.is_dir():  # not another process's copy won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return toolkit
