"""An image's Python layer: the pip commands of its RUN lines, run in Dockerfile order into an
environment of the image's own (never dockyard's), outside the job's sandbox.

A Docker build runs `RUN pip3 install -r /opt/init/requirements.txt` in the image's file system,
with its WORKDIR and ENV. Here each pip command runs in the build view (see build_view: read-only,
no dockyard home, a build user) with copies of the image folder's COPYs at their image paths: what
pip reads by an image path, it finds there. The view shows only the COPYs under the folders the
command names (its `-r` files, `.`, `-e` paths...), so the cache key, which covers exactly those
files, covers everything the build could read of the image.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.runtimes.build_view import BuildView
from dockyard.runtimes.images import DEFAULT_PATH, CopyInstruction, ImageSpec, RunInstruction
from dockyard.runtimes.prerequisites import pip_commands, pip_package_names, short_line
from dockyard.runtimes.venv_builds import (
    BOOTSTRAP,
    SHIM_MODULE,
    Interpreter,
    Log,
    PythonEnvironment,
    build_environment,
    pip_logged,
    run_logged,
    shim_source,
    site_dirs,
    write_image_file,
)
from dockyard.runtimes.volumes import chown_tree

# pip options whose value is a path in the image: a file, or a folder (-e, -f).
_FILE_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint"})
_FOLDER_OPTIONS = frozenset({"-e", "--editable", "-f", "--find-links"})
_ARCHIVE = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# Old toolkits whose unpinned dependencies have since moved on past what they import: a pip
# command that installs one runs with these constraints (logged), so the image works as it did
# when its Dockerfile was written. sagemaker-containers 2.8's `train` imports Flask 1.1, which
# needs Jinja2 < 3.1, itsdangerous < 2.1 and Werkzeug < 2.1; its record_pb2 needs protobuf < 3.21.
LEGACY_CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "sagemaker-containers": ("Jinja2<3.1", "itsdangerous<2.1", "Werkzeug<2.1", "protobuf<3.21"),
}
_CONSTRAINTS_FILE = "dockyard-legacy-constraints.txt"  # in the build's /tmp


@dataclass(frozen=True)
class PipStep:
    """One pip command of a RUN line, with what of the image folder it may read."""

    number: int  # the RUN line's number among the image's RUN lines, from 1
    run: RunInstruction
    arguments: tuple[str, ...]  # pip's arguments, variables expanded
    copies: tuple[CopyInstruction, ...]

    @property
    def command(self) -> str:
        return "pip " + shlex.join(self.arguments)

    @property
    def constraints(self) -> tuple[str, ...]:
        """LEGACY_CONSTRAINTS of the old toolkits this command installs."""
        names = {name.lower().replace("_", "-") for name in pip_package_names(list(self.arguments))}
        return tuple(line for name in sorted(names) for line in LEGACY_CONSTRAINTS.get(name, ()))


def pip_steps(image: ImageSpec) -> list[PipStep]:
    """The pip commands of the image's RUN lines, in Dockerfile order."""
    steps = []
    for number, run in enumerate(image.runs, start=1):
        before = image.copies[: run.copies_before]
        for arguments in pip_commands(run.line):
            expanded = [_expand(word, run.env) for word in arguments]
            folders = _named_folders(expanded, run.workdir)
            copies = tuple(
                item
                for item in before
                if any(_overlaps(item.destination, folder) for folder in folders)
            )
            steps.append(PipStep(number, run, tuple(expanded), copies))
    return steps


def _expand(word: str, env: Mapping[str, str]) -> str:
    # The shell of a Docker build would expand $NAME from the image's ENV (and ARGs).
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word)


def _named_folders(arguments: Sequence[str], workdir: str) -> set[str]:
    """The image folders a pip command reads from: where its files and local paths lie."""
    folders: set[str] = set()

    def add(value: str, is_folder: bool) -> None:
        if value.startswith("file:"):
            value = re.sub(r"^file:(//)?", "", value)
        elif "://" in value or value.startswith(("git+", "hg+", "svn+", "bzr+")):
            return
        path = posixpath.normpath(posixpath.join(workdir, value))
        folders.add(path if is_folder else posixpath.dirname(path))

    words = iter(arguments)
    for word in words:
        name, equals, value = word.partition("=")
        if name in _FILE_OPTIONS or name in _FOLDER_OPTIONS:
            add(value if equals else next(words, ""), name in _FOLDER_OPTIONS)
        elif not word.startswith("-") and _is_local(word):
            add(word, not word.endswith(_ARCHIVE))
    return folders


def _is_local(word: str) -> bool:
    return word.startswith((".", "/", "file:")) or word.endswith(_ARCHIVE)


def _overlaps(destination: str, folder: str) -> bool:
    return (
        destination == folder
        or destination.startswith(folder.rstrip("/") + "/")
        or folder.startswith(destination.rstrip("/") + "/")
    )


class ImageLayerBuild:
    """venv of the interpreter, pip's pinned bootstrap, dockyard's shim, then each pip step in the
    build view (see build_view), its COPYs copied to their image paths."""

    def __init__(
        self,
        env: PythonEnvironment,
        image: ImageSpec,
        steps: Sequence[PipStep],
        interpreter: Interpreter,
        view: BuildView,
    ) -> None:
        self.env, self.image, self.steps, self.interpreter = env, image, steps, interpreter
        self.view = view

    def run(self, log: Log) -> None:
        env, interpreter = self.env, self.interpreter
        lines = len({step.number for step in self.steps})
        log(
            f"building environment {env.name} ({env.key[:12]}): {len(self.steps)} pip "
            f"command(s) of {lines} RUN line(s), on Python {interpreter.version} "
            f"({interpreter.executable}); the Dockerfile's FROM is not pulled"
        )
        env.root.parent.mkdir(parents=True, exist_ok=True)
        run_logged(
            [interpreter.executable, "-m", "venv", str(env.root)], log, env, "python -m venv failed"
        )
        pip_logged(env, ["install", *BOOTSTRAP], log, "pip could not install pip itself")
        site = site_dirs(env)[0]
        # The shim gives old toolkits (sagemaker-containers) what Python 3.10 took away.
        (site / f"{SHIM_MODULE}.py").write_bytes(shim_source())
        (site / f"{SHIM_MODULE}.pth").write_text(f"import {SHIM_MODULE}\n", encoding="utf-8")
        scratch = env.root.parent / ".build" / env.root.name
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            self.view.begin(env.root, scratch / "tmp")
            for index, step in enumerate(self.steps):
                log(f"RUN line {step.number}: {step.command}")
                if step.constraints:
                    log(
                        "dockyard constrains what this line installs to versions its old toolkit "
                        f"works with: {', '.join(step.constraints)}"
                    )
                    (scratch / "tmp" / _CONSTRAINTS_FILE).write_text(
                        "".join(f"{line}\n" for line in step.constraints), encoding="utf-8"
                    )
                arguments = [a for a in step.arguments if a != "--user"]  # a venv has no user site
                if "install" in arguments:
                    arguments += ["--progress-bar", "off"]
                contained = self.view.contained(
                    env.root,
                    [str(env.python), "-m", "pip", *arguments],
                    cwd=step.run.workdir,
                    scratch=scratch / "tmp",
                    read_only=interpreter.exposed,
                    copies=self._copy_files(step, scratch / f"files-{index}"),
                )
                run_logged(
                    contained,
                    log,
                    env,
                    f"the image's RUN line {step.number} failed ({short_line(step.run.line, 120)})",
                    extra={**self._variables(step), **self.view.variables()},
                )
            # Imported once as the build user: what pip installed runs here, never as root.
            contained = self.view.contained(
                env.root,
                [str(env.python), "-c", f"import {SHIM_MODULE}"],
                cwd="/",
                scratch=scratch / "tmp",
                read_only=interpreter.exposed,
            )
            run_logged(contained, log, env, "the layer cannot run", extra=self.view.variables())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self.view.end(env.root)
        write_image_file(
            env,
            [
                f"image layer {env.name}",
                f"key {env.key}",
                f"python {interpreter.version} ({interpreter.executable})",
                f"image {self.image.dockerfile}",
                "pip commands, in order:",
                *(f"  RUN line {step.number}: {step.command}" for step in self.steps),
            ],
        )

    def _variables(self, step: PipStep) -> dict[str, str]:
        """The RUN line's ENV over pip's own configuration, the layer's bin first on PATH."""
        variables = {**build_environment(self.env), **step.run.env}
        path = step.run.env.get("PATH", DEFAULT_PATH)
        variables["PATH"] = f"{self.env.bin_dir}:{path}"
        if step.constraints:
            variables["PIP_CONSTRAINT"] = f"/tmp/{_CONSTRAINTS_FILE}"
        return variables

    def _copy_files(self, step: PipStep, files: Path) -> list[tuple[str, Path]]:
        """The step's COPYs, copied: a build writes next to its sources (build/, *.egg-info),
        as it may in an image, and the image folder itself must not change."""
        placed = []
        for number, item in enumerate(step.copies):
            target = files / str(number)
            if item.source.is_dir() and not item.source.is_symlink():
                shutil.copytree(item.source, target, symlinks=True)
            else:
                files.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item.source, target, follow_symlinks=False)
            placed.append((item.destination, target))
        if files.exists():
            chown_tree(files, self.view.build_uid)
        return placed
