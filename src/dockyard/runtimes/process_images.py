"""Images of the process runtime: a reference names a framework (a host virtual environment) or a
local folder with a Dockerfile; made ready, it is an ImageSpec with the environments the sandbox
shows (framework, code requirements, the image's Python layer, the serving toolkit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.contract.errors import ImageError
from dockyard.runtimes.base import (
    FolderCheck,
    ImageCheck,
    Log,
    PreparedImage,
    Purpose,
    ResolvedImage,
)
from dockyard.runtimes.environments import Environments, PythonEnvironment, framework_image
from dockyard.runtimes.frameworks import Framework, resolve_framework
from dockyard.runtimes.image_layers import pip_steps
from dockyard.runtimes.image_setup import MISSING, ready_image, run_line_outcomes
from dockyard.runtimes.images import DEFAULT_PATH, ImageSpec, image_folder_path, read_image
from dockyard.runtimes.serving_toolkit import serving_toolkit


@dataclass(frozen=True)
class ProcessImageRef(ResolvedImage):
    """A reference resolved to a framework, or to an image folder's Dockerfile (read)."""

    ref: str
    framework: Framework | None = None
    folder: ImageSpec | None = None

    def check_command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> None:
        # A framework image's program is its toolkit's `train` / `serve`: always there.
        if self.folder is not None:
            self.folder.argv(entrypoint, arguments, default)


@dataclass(frozen=True)
class ProcessImage(PreparedImage):
    """An image ready for a sandbox: what it holds, the host folders it must show at their own
    paths, and the Python environment a writable run layer goes over."""

    spec: ImageSpec
    binds: list[tuple[Path, str]] = field(default_factory=list)
    python: PythonEnvironment | None = None

    def command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> list[str]:
        return self.spec.argv(entrypoint, arguments, default)


class ProcessImages:
    """Resolves references and makes images ready, building environments under `environments`;
    `toolkit_dir` holds the serving toolkit framework images serve with."""

    def __init__(
        self,
        environments: Environments,
        frameworks: Mapping[str, Framework] | None = None,
        *,
        toolkit_dir: Path,
    ) -> None:
        self.environments = environments
        self.frameworks = dict(frameworks or {})
        self.toolkit_dir = toolkit_dir

    def resolve(self, ref: str, readable: FolderCheck) -> ProcessImageRef:
        framework = resolve_framework(ref, self.frameworks)
        if framework is not None:
            return ProcessImageRef(ref, framework=framework)
        # An image's Dockerfile and COPY sources are the caller's: a caller (on another machine,
        # perhaps) must not name the server's other folders, hidden ones or dockyard's own.
        folder = readable(f"image {ref}", Path(image_folder_path(ref)))
        return ProcessImageRef(ref, folder=read_image(str(folder)))

    def prepare(
        self, image: ProcessImageRef, *, code: Path | None, purpose: Purpose, log: Log
    ) -> ProcessImage:
        """A folder's prerequisites checked and its Python layer built (or reused); a
        framework's environment with the code's requirements in a layer over it (and, to serve,
        the serving toolkit), all made before the sandbox starts."""
        if image.folder is not None:
            ready = ready_image(image.folder, self.environments, log)
            return ProcessImage(ready.image, ready.binds, ready.python)
        framework = image.framework
        assert framework is not None
        if framework.note:
            log(framework.note)
        environment = self.environments.framework(framework, log)
        if code is not None and code.is_dir():
            environment = self.environments.with_requirements(environment, code, log=log)
        spec = framework_image(framework, environment)
        binds = [(path, str(path)) for path in environment.visible_paths]
        if purpose == "train":
            # Tells the toolkit (through dockyard's shim) not to run pip in the read-only sandbox.
            env = {**spec.env, "DOCKYARD_CODE_INSTALLED": environment.key}
        else:
            toolkit = serving_toolkit(self.toolkit_dir)
            path = ":".join([str(toolkit.bin_dir), spec.env.get("PATH", DEFAULT_PATH)])
            env = {**spec.env, "PATH": path, "PYTHONPATH": str(toolkit.python_dir)}
            binds.append((toolkit.root, str(toolkit.root)))
        return ProcessImage(dataclasses.replace(spec, env=env), binds, environment)

    def check(self, image: ProcessImageRef) -> ImageCheck:
        folder = _folder(image)
        outcomes = run_line_outcomes(folder)
        return ImageCheck(
            run_lines=outcomes,
            python_layer=self.environments.image_layer_state(folder),
            build_steps=len(pip_steps(folder)),
            missing=[o for o in outcomes if o.outcome == MISSING],
        )

    def build(self, image: ProcessImageRef, log: Log) -> None:
        ready_image(_folder(image), self.environments, log)


def _folder(image: ProcessImageRef) -> ImageSpec:
    if image.folder is None:
        raise ImageError(
            f"{image.ref} is a framework image: its environment is built by its first job, "
            "there is no image folder to check or build"
        )
    return image.folder
