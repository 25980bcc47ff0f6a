"""Building one virtual environment: a framework's (venv, pinned requirements, toolkits, shim,
bin/train) or a code layer over one (requirements.txt, ordered or not, and the code's package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from dockyard.contract.errors import EnvironmentBuildError
from dockyard.runtimes.build_view import BuildView
from dockyard.runtimes.code_requirements import NOT_COPIED, CodeRequirements
from dockyard.runtimes.frameworks import Framework
from dockyard.runtimes.images import DEFAULT_PATH

Log = Callable[[str], None]

# Installed first, so every environment builds with the same pip (and the same setuptools and
# wheel for `--no-build-isolation`), whatever the interpreter's bundled pip is.
BOOTSTRAP = ("pip==26.1.1", "setuptools==80.9.0", "wheel==0.45.1")
NO_DEPS = "--no-deps"
IMAGE_FILE = "IMAGE"
SHIM_MODULE = "dockyard_shim"
PIP_TAIL_LINES = 20
_SCRIPT_HEAD_BYTES = 512  # where a script names its Python
# Variables of dockyard's own process that must not steer the environment's interpreter or pip.
_DROPPED_VARIABLES = frozenset(
    {
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONSAFEPATH",
        "PYTHONDONTWRITEBYTECODE",  # the sandbox cannot write bytecode: it must be there
        "VIRTUAL_ENV",
        "PIP_USER",
        "PIP_TARGET",
        "PIP_PREFIX",
        "PIP_REQUIRE_VIRTUALENV",
        "DOCKYARD_CODE_INSTALLED",
    }
)
_SITE_DIRS = (
    "import json, sysconfig\n"
    "print(json.dumps(sorted({sysconfig.get_path('purelib'), sysconfig.get_path('platlib')})))"
)
_TRAIN_SCRIPT = """\
#!{python}
# SageMaker's `train` (the sagemaker-training toolkit's trainer), run by this environment's Python.
import sys

from sagemaker_training.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
"""


@dataclass(frozen=True)
class PythonEnvironment:
    """A built environment: a framework environment, or a code layer over one (`base`)."""

    root: Path
    key: str  # the content hash that names it
    # Host paths a sandbox must see, read-only at the same path, for this environment to run.
    visible_paths: tuple[Path, ...]
    name: str = ""  # for logs: "pytorch-2.13", "pytorch-2.13 + code requirements"
    base: PythonEnvironment | None = field(default=None, repr=False)

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin_dir / "python"

    @property
    def bin_dirs(self) -> tuple[Path, ...]:
        """This environment's bin folder, then its base's: the front of PATH in the sandbox."""
        return (self.bin_dir, *(self.base.bin_dirs if self.base else ()))


@dataclass(frozen=True)
class Interpreter:
    """The host Python environments are made from."""

    executable: str  # its real path
    version: str  # "3.11.2"
    base_prefix: Path
    # Folders the sandbox must be shown for it to run (none for /usr/bin/python3.11).
    exposed: tuple[Path, ...]


def shim_source() -> bytes:
    return (resources.files("dockyard.runtimes.shim") / f"{SHIM_MODULE}.py").read_bytes()


class FrameworkBuild:
    """venv, pip's bootstrap, the pinned requirements, the no-deps lines, the shim, bin/train."""

    def __init__(self, env: PythonEnvironment, framework: Framework, interpreter: Interpreter):
        self.env, self.framework, self.interpreter = env, framework, interpreter

    def run(self, log: Log) -> None:
        env, interpreter = self.env, self.interpreter
        log(
            f"building environment {env.name} ({env.key[:12]}) from Python {interpreter.version} "
            f"({interpreter.executable}) in {env.root}"
        )
        env.root.parent.mkdir(parents=True, exist_ok=True)
        run_logged(
            [interpreter.executable, "-m", "venv", str(env.root)], log, env, "python -m venv failed"
        )
        with_deps = [line for line in self.framework.requirements if not _is_no_deps(line)]
        no_deps = [
            _strip_no_deps(line) for line in self.framework.requirements if _is_no_deps(line)
        ]
        _write_lines(env.root / "requirements.txt", with_deps)
        pip_logged(env, ["install", *BOOTSTRAP], log, "pip could not install pip itself")
        pip_logged(
            env,
            ["install", "-r", "requirements.txt"],
            log,
            f"pip could not install the {env.name} requirements",
            cwd=env.root,
        )
        if no_deps:
            _write_lines(env.root / "requirements-no-deps.txt", no_deps)
            pip_logged(
                env,
                ["install", "--no-deps", "-r", "requirements-no-deps.txt"],
                log,
                f"pip could not install the {env.name} requirements",
                cwd=env.root,
            )
        site = site_dirs(env)[0]
        (site / f"{SHIM_MODULE}.py").write_bytes(shim_source())
        (site / f"{SHIM_MODULE}.pth").write_text(f"import {SHIM_MODULE}\n", encoding="utf-8")
        _write_train(env)
        write_image_file(
            env,
            [
                f"framework environment {env.name}",
                f"key {env.key}",
                f"python {interpreter.version} ({interpreter.executable})",
                f"training module {self.framework.training_module or '(the toolkit trainer)'}",
                "requirements:",
                *(f"  {line}" for line in self.framework.requirements),
            ],
        )
        # Imports the toolkit once: a broken environment fails here, not in a job's sandbox.
        # Without /opt/ml the toolkit makes a job folder on import: give it a throwaway one.
        with tempfile.TemporaryDirectory(prefix="dockyard-check-") as scratch:
            check = f"import {SHIM_MODULE}, sagemaker_training.cli.train"
            run_logged(
                [str(env.python), "-c", check],
                log,
                env,
                "the new environment cannot run",
                extra={"SAGEMAKER_BASE_DIR": scratch},
            )


class LayerBuild:
    """A venv over the base environment, then pip with the code folder as its working folder."""

    def __init__(
        self,
        env: PythonEnvironment,
        base: PythonEnvironment,
        code: CodeRequirements,
        ordered: bool,
        view: BuildView,
    ):
        self.env, self.base, self.code, self.ordered = env, base, code, ordered
        self.view = view
        self._scratch = env.root.parent / ".build" / env.root.name

    def run(self, log: Log) -> None:
        env, base, code = self.env, self.base, self.code
        what = "ordered, one line at a time" if self.ordered else "one pip run"
        log(
            f"building environment {env.name} ({env.key[:12]}) over {base.name} "
            f"({base.key[:12]}): {what}"
        )
        env.root.parent.mkdir(parents=True, exist_ok=True)
        interpreter = os.path.realpath(base.python)
        run_logged(
            [interpreter, "-m", "venv", "--without-pip", str(env.root)],
            log,
            env,
            "python -m venv failed",
        )
        base_sites = site_dirs(base)
        additions = "".join(f"import site; site.addsitedir({str(s)!r})\n" for s in base_sites)
        (site_dirs(env)[0] / "_dockyard_base.pth").write_text(additions, encoding="utf-8")
        _copy_scripts(base, env)
        _write_train(env)
        # pip runs in a copy: in-tree builds write build/ and *.egg-info next to the sources.
        work = env.root / "code"
        shutil.copytree(
            code.folder,
            work,
            symlinks=True,
            ignore=shutil.ignore_patterns(*NOT_COPIED),
            ignore_dangling_symlinks=True,
        )
        shutil.rmtree(self._scratch, ignore_errors=True)
        try:
            # The code's setup.py and its requirements' builds run as the build user, in the view.
            self.view.begin(env.root, self._scratch)
            if self.ordered:
                self._ordered(work, log)
            else:
                targets = (["."] if code.package else []) + (
                    ["-r", "requirements.txt"] if code.lines else []
                )
                what = " and ".join(
                    (["the code's package (setup.py)"] if code.package else [])
                    + (["requirements.txt"] if code.lines else [])
                )
                self._pip(["install", *targets], work, log, f"pip could not install {what}")
            self._in_view(
                [str(env.python), "-c", f"import {SHIM_MODULE}"],
                "/",
                log,
                "the new layer cannot run",
            )
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self.view.end(env.root)
        write_image_file(
            env,
            [
                f"requirements layer {env.name}",
                f"key {env.key}",
                f"base {base.name} ({base.key}) at {base.root}",
                f"code {code.folder}, installed {'in file order' if self.ordered else 'at once'}",
                "requirements.txt:",
                *(f"  {line}" for line in code.lines),
            ],
        )

    def _pip(self, arguments: list[str], work: Path, log: Log, failure: str) -> None:
        log("$ pip " + " ".join(arguments))
        argv = [str(self.env.python), "-m", "pip", *arguments, "--progress-bar", "off"]
        self._in_view(argv, str(work), log, failure)

    def _in_view(self, argv: list[str], cwd: str, log: Log, failure: str) -> None:
        contained = self.view.contained(
            self.env.root,
            argv,
            cwd=cwd,
            scratch=self._scratch,
            read_only=self.base.visible_paths,
        )
        run_logged(contained, log, self.env, failure, extra=self.view.variables())

    def _ordered(self, work: Path, log: Log) -> None:
        steps = self.code.steps
        for number, line in enumerate(steps, start=1):
            log(f"ordered install {number}/{len(steps)}: {line}")
            step_file = work / f".dockyard-step-{number}.txt"
            _write_lines(step_file, [*self.code.file_options, line])
            self._pip(
                ["install", "--no-build-isolation", "-r", step_file.name],
                work,
                log,
                f"pip could not install line {number} of requirements.txt ({line})",
            )
        if self.code.package:
            log("ordered install: the code's package (setup.py)")
            self._pip(
                ["install", "--no-build-isolation", "."],
                work,
                log,
                "pip could not install the code's package (setup.py)",
            )


def pip_logged(
    env: PythonEnvironment, arguments: list[str], log: Log, failure: str, *, cwd: Path | None = None
) -> None:
    argv = [str(env.python), "-m", "pip", *arguments, "--progress-bar", "off", "--no-input"]
    log("$ pip " + " ".join(arguments))
    run_logged(argv, log, env, failure, cwd=cwd)


def run_logged(
    argv: list[str],
    log: Log,
    env: PythonEnvironment,
    failure: str,
    *,
    cwd: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Run `argv`, streaming its output line by line to `log`; EnvironmentBuildError with the
    last lines of its output when it fails."""
    tail: deque[str] = deque(maxlen=10 * PIP_TAIL_LINES)
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**build_environment(env), **(extra or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise EnvironmentBuildError(f"{failure}: cannot run {argv[0]}: {exc}") from exc
    with process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            log(line)
            tail.append(line)
    if process.returncode != 0:
        detail = "\n".join(_error_lines(tail)) or f"exit code {process.returncode}"
        raise EnvironmentBuildError(f"{failure}: {detail}")


def _error_lines(output: Iterable[str]) -> list[str]:
    """The last lines of pip's output without progress, traceback frames and decorations, which
    would crowd the error itself out of a FailureReason."""
    noise = (
        "Looking in ",
        "note: This error originates",
        "hint: See above",
        "[end of output]",
        "╰─> See above",
    )
    kept: list[str] = []
    frame_indent: int | None = None
    for line in output:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if frame_indent is not None and indent > frame_indent:
            continue  # a frame's source line, or its ^^^ marks
        frame_indent = indent if stripped.startswith('File "') else None
        progress = stripped.endswith((": started", "finished with status 'done'"))
        if stripped and frame_indent is None and not progress and not stripped.startswith(noise):
            kept.append(line.rstrip())
    return kept[-PIP_TAIL_LINES:]


def build_environment(env: PythonEnvironment) -> dict[str, str]:
    # pip's own configuration (PIP_* variables, proxies, certificates) comes from the environment
    # of the user who runs dockyard, as it would for their own pip; Python's own does not.
    variables = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARIABLES}
    variables["PATH"] = ":".join(
        [*(str(d) for d in env.bin_dirs), variables.get("PATH", DEFAULT_PATH)]
    )
    variables["PYTHONNOUSERSITE"] = "1"  # the sandbox has no user site either
    variables["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return variables


def site_dirs(env: PythonEnvironment) -> list[Path]:
    try:
        done = subprocess.run(
            [str(env.python), "-I", "-c", _SITE_DIRS],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [Path(p) for p in json.loads(done.stdout)]
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise EnvironmentBuildError(
            f"cannot ask {env.python} for its site-packages: {exc}"
        ) from exc


def _copy_scripts(base: PythonEnvironment, env: PythonEnvironment) -> None:
    """The base's console scripts (torchrun, ...), run by the layer's Python: what they start
    with sys.executable then sees both the layer and the base."""
    repoint_scripts(base, f"{env.bin_dir}/python", env.bin_dir)


def repoint_scripts(base: PythonEnvironment, python: str, target_bin: Path) -> None:
    """Copy into `target_bin` the base's scripts that run the base's Python, run by `python`
    instead. The Python is looked for in the first bytes, not only the `#!` line: for a long
    path pip writes a `#!/bin/sh` line and an `exec` of it on the next. It is named by the
    environment's path or, when the environments folder is reached through a link, its real
    path. Links are skipped, never followed; a script already in `target_bin` is kept."""
    olds = {f"{folder}/python".encode() for folder in (base.bin_dir, base.bin_dir.resolve())}
    new = python.encode()
    for entry in sorted(os.scandir(base.bin_dir), key=lambda e: e.name):
        target = target_bin / entry.name
        if entry.is_symlink() or not entry.is_file() or target.exists():
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            head = handle.read(_SCRIPT_HEAD_BYTES)
            old = next((o for o in olds if o in head), None)
            if not head.startswith(b"#!") or old is None:
                continue
            content = head + handle.read()
        target.write_bytes(head.replace(old, new) + content[len(head) :])
        target.chmod(0o755)


def _write_train(env: PythonEnvironment) -> None:
    # Both toolkits declare a `train` console script; this one is always sagemaker-training's.
    train = env.bin_dir / "train"
    train.unlink(missing_ok=True)
    train.write_text(_TRAIN_SCRIPT.format(python=env.python), encoding="utf-8")
    train.chmod(0o755)


def write_image_file(env: PythonEnvironment, lines: list[str]) -> None:
    header = "# dockyard built this environment; it stands for an image (this is not a Dockerfile)"
    _write_lines(env.root / IMAGE_FILE, [header, *lines])


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _is_no_deps(line: str) -> bool:
    return line.split()[-1:] == [NO_DEPS]


def _strip_no_deps(line: str) -> str:
    return line.rsplit(NO_DEPS, 1)[0].strip()
