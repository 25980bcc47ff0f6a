"""An image folder made ready for its sandbox: each RUN line either built into the image's Python
layer, or a prerequisite of this machine that is checked (and named with the command that installs
it when missing), or listed as not run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import ImageError
from dockyard.runtimes.base import RunLineOutcome
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.images import DEFAULT_PATH, ImageSpec
from dockyard.runtimes.prerequisites import (
    Prerequisite,
    check_prerequisites,
    describe_missing,
    fix_command,
)
from dockyard.runtimes.venv_builds import Log, PythonEnvironment

BUILT = "built into the image's Python layer"
MET = "met"
MISSING = "missing"
NOT_RUN = "not run"


@dataclass(frozen=True)
class ReadyImage:
    image: ImageSpec  # with its Python layer, if any, first on PATH
    binds: list[tuple[Path, str]]  # host folders the sandbox must see at the same path
    python: PythonEnvironment | None  # the layer a writable run layer goes over


def run_line_outcomes(image: ImageSpec) -> list[RunLineOutcome]:
    """Each RUN line and what it becomes, the host checked (one dpkg-query, one Rscript)."""
    return _outcomes(image, check_prerequisites(image.run_lines))


def _outcomes(image: ImageSpec, prerequisites: list[Prerequisite]) -> list[RunLineOutcome]:
    numbers = {line: number for number, line in reversed(list(enumerate(image.run_lines, 1)))}
    return [_outcome(numbers[item.line], item) for item in prerequisites]


def _outcome(number: int, item: Prerequisite) -> RunLineOutcome:
    if item.kind == "pip":
        return RunLineOutcome(number, item.line, item.kind, BUILT)
    if not item.checked:
        return RunLineOutcome(number, item.line, item.kind, NOT_RUN)
    if item.missing:
        detail = f"{', '.join(item.missing)}: {fix_command(item)}"
        return RunLineOutcome(number, item.line, item.kind, MISSING, detail)
    return RunLineOutcome(number, item.line, item.kind, MET)


def ready_image(image: ImageSpec, environments: Environments, log: Log) -> ReadyImage:
    """Check the image's prerequisites (ImageError naming what is missing and how to install it)
    and build or reuse its Python layer; the FailureReason-worthy errors are DockyardErrors."""
    if not image.runs:
        return ReadyImage(image, [], None)
    prerequisites = check_prerequisites(image.run_lines)
    for outcome in _outcomes(image, prerequisites):
        state = outcome.outcome + (f" ({outcome.detail})" if outcome.detail else "")
        log(f"RUN line {outcome.number} ({state}): {outcome.line}")
    missing = describe_missing(prerequisites)
    if missing:
        raise ImageError(missing)
    layer = environments.image_layer(image, log)
    if layer is None:
        return ReadyImage(image, [], None)
    path = image.env.get("PATH", DEFAULT_PATH)
    # The image's `python3`, `pip3` and `#!/usr/bin/env python3` scripts are the layer's.
    # Unbuffered unless the image says otherwise, so the job's log follows the program.
    env = {"PYTHONUNBUFFERED": "TRUE", **image.env, "PATH": f"{layer.bin_dir}:{path}"}
    binds = [(folder, str(folder)) for folder in layer.visible_paths]
    return ReadyImage(dataclasses.replace(image, env=env), binds, layer)
