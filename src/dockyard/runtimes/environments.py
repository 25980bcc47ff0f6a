"""Host virtual environments for framework images, built outside the sandbox and cached by hash.

Layout of the environments folder (settings.envs_dir):

    <name>-<version>-<key12>/  a framework environment: a venv of a host interpreter holding the
                               pinned requirements, the toolkits, the shim (dockyard_shim.py and
                               dockyard_shim.pth) and bin/train; `.complete` is written last
    layer-<key12>/             a job's requirements.txt (and package) over a framework environment:
                               a venv of the same interpreter whose .pth adds the framework's
                               site-packages, so pip adds only what is missing; pip runs in its
                               copy of the code folder (`code/`), which stays for `-e` lines
    .locks/<folder>.lock       one build of a folder at a time, across processes

A folder without `.complete` is a build that died: it is removed and built again. A folder with it
is never changed, so a sandbox can see it read-only while another job builds something else. A
layer's key covers its base, requirements.txt, the ordered flag and the content of what pip reads
from the code folder (the whole folder when it has a setup.py, else the local paths that
requirements.txt names), so the same code staged anew reuses its layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from dockyard.contract.errors import DockyardError
from dockyard.runtimes.frameworks import Framework
from dockyard.runtimes.images import DEFAULT_PATH, ImageSpec

Log = Callable[[str], None]

# Bumped when a change here changes what an environment holds: every environment is then rebuilt.
BUILDER_VERSION = "1"
# Installed first, so every environment builds with the same pip (and the same setuptools and
# wheel for `--no-build-isolation`), whatever the interpreter's bundled pip is.
BOOTSTRAP = ("pip==26.1.1", "setuptools==80.9.0", "wheel==0.45.1")
NO_DEPS = "--no-deps"
COMPLETE = ".complete"
IMAGE_FILE = "IMAGE"
SHIM_MODULE = "dockyard_shim"
ORDERED = re.compile(r"^\s*#\s*dockyard:\s*ordered\s*$", re.IGNORECASE | re.MULTILINE)
# The sandbox replaces these folders with its own: an interpreter there must be bound back in.
PRIVATE_IN_SANDBOX = ("/tmp", "/root", "/proc", "/dev")
PIP_TAIL_LINES = 20
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
_PROBE = (
    "import importlib.util as u, json, sys\n"
    "print(json.dumps({'version': sys.version.split()[0], 'base_prefix': sys.base_prefix,\n"
    "    'venv': bool(u.find_spec('venv') and u.find_spec('ensurepip'))}))"
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
# Requirement-file options that apply to the whole file rather than to one requirement.
_FILE_OPTIONS = re.compile(
    r"^(-i|--index-url|--extra-index-url|--no-index|-f|--find-links|--pre|--trusted-host|"
    r"--prefer-binary|--only-binary|--no-binary|--use-feature|-c|--constraint)(\s|=|$)"
)
_LOCAL_REFERENCE = re.compile(r"^(?:(-e|--editable|-r|--requirement|-c|--constraint)[\s=]+)?(\S+)")


class EnvironmentBuildError(DockyardError):
    """A framework environment or a requirements layer could not be built; the message carries
    pip's own last error lines."""


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


def framework_image(framework: Framework, env: PythonEnvironment) -> ImageSpec:
    """The image a framework environment stands for: `train` on PATH, no ENTRYPOINT or CMD."""
    variables = {
        "PATH": ":".join([*(str(folder) for folder in env.bin_dirs), DEFAULT_PATH]),
        "PYTHONUNBUFFERED": "TRUE",  # so the job's log streams
        "PYTHONDONTWRITEBYTECODE": "1",  # the environment is read-only in the sandbox
    }
    if framework.training_module:
        variables["SAGEMAKER_TRAINING_MODULE"] = framework.training_module
    return ImageSpec(
        context=env.root, dockerfile=env.root / IMAGE_FILE, env=variables, digest=env.key
    )


class Environments:
    """Builds and reuses framework environments and requirements layers under `root`."""

    def __init__(self, root: Path, python: str | None = None) -> None:
        self.root = root
        self._python = python
        self._interpreter: Interpreter | None = None
        self._interpreter_lock = threading.Lock()

    @property
    def interpreter(self) -> Interpreter:
        """The interpreter to build from: `python`, else the first python3.<this minor> that the
        sandbox can see and that can make virtual environments. Probed once."""
        with self._interpreter_lock:
            if self._interpreter is None:
                self._interpreter = _choose_interpreter(self._python)
            return self._interpreter

    def framework(self, framework: Framework, log: Log) -> PythonEnvironment:
        """The environment for `framework`, built on first use and reused afterwards."""
        interpreter = self.interpreter
        key = _framework_key(framework, interpreter)
        folder = self.root / f"{framework.label}-{key[:12]}"
        env = PythonEnvironment(
            root=folder,
            key=key,
            visible_paths=(folder, *interpreter.exposed),
            name=framework.label,
        )
        return self._ensure(env, log, lambda: _FrameworkBuild(env, framework, interpreter).run(log))

    def with_requirements(
        self,
        base: PythonEnvironment,
        code_dir: Path,
        *,
        ordered: bool | None = None,
        log: Log,
    ) -> PythonEnvironment:
        """`base` with the code's requirements.txt and, when it has a setup.py, its package
        installed in a layer over it; `base` itself when there is nothing to install.

        Ordered mode (`ordered=True`, or a `# dockyard: ordered` line in requirements.txt)
        installs one line at a time, in file order, without build isolation."""
        code = _Code.read(code_dir)
        if not code.lines and not code.package:
            return base
        if ordered is None:
            ordered = bool(ORDERED.search(code.text))
        key = _layer_key(base, code, ordered)
        folder = self.root / f"layer-{key[:12]}"
        env = PythonEnvironment(
            root=folder,
            key=key,
            visible_paths=(folder, *base.visible_paths),
            name=f"{base.name} + code requirements",
            base=base,
        )
        return self._ensure(env, log, lambda: _LayerBuild(env, base, code, ordered).run(log))

    def _ensure(
        self, env: PythonEnvironment, log: Log, build: Callable[[], None]
    ) -> PythonEnvironment:
        if _is_complete(env):
            log(f"environment {env.name} ({env.key[:12]}) ready: reused, no pip run")
            return env
        with _locked(self.root / ".locks" / f"{env.root.name}.lock", env, log):
            if _is_complete(env):
                log(f"environment {env.name} ({env.key[:12]}) ready: built by another job")
                return env
            if env.root.exists():
                log(f"removing the unfinished build of environment {env.name} in {env.root}")
                shutil.rmtree(env.root)
            started = time.monotonic()
            try:
                build()
            except BaseException:
                shutil.rmtree(env.root, ignore_errors=True)  # no half environment stays behind
                raise
            seconds = time.monotonic() - started
            marker = {"key": env.key, "name": env.name, "seconds": round(seconds, 1)}
            (env.root / COMPLETE).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            log(f"environment {env.name} ({env.key[:12]}) ready: built in {seconds:.1f} s")
        return env


def _is_complete(env: PythonEnvironment) -> bool:
    try:
        marker = json.loads((env.root / COMPLETE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("key") == env.key


@contextlib.contextmanager
def _locked(path: Path, env: PythonEnvironment, log: Log) -> Iterator[None]:
    """An exclusive flock on `path`: two jobs needing the same environment build it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another job that is building environment {env.name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the interpreter -----------------------------------------------------------------------------


def _choose_interpreter(python: str | None) -> Interpreter:
    if python is not None:
        found = shutil.which(python) or python
        interpreter, can_make_venvs = _probe(found)
        if interpreter is None or not can_make_venvs:
            raise EnvironmentBuildError(
                f"the Python {python} (DOCKYARD_FRAMEWORK_PYTHON) cannot make virtual "
                "environments: give a python3 with the venv module (on Debian: "
                "apt-get install python3-venv)"
            )
        return interpreter
    minor = f"python3.{sys.version_info.minor}"
    candidates = [f"/usr/local/bin/{minor}", f"/usr/bin/{minor}", shutil.which(minor)]
    fallback = None
    for candidate in [*candidates, sys.executable]:
        if not candidate or not os.path.exists(candidate):
            continue
        interpreter, can_make_venvs = _probe(candidate)
        if interpreter is None or not can_make_venvs:
            continue
        if not interpreter.exposed:
            return interpreter
        fallback = fallback or interpreter
    if fallback is not None:
        return fallback  # one the sandbox cannot see: its prefix is bound in read-only
    raise EnvironmentBuildError(
        f"no {minor} on this machine can make virtual environments: install its venv module "
        f"(on Debian: apt-get install {minor}-venv) or name an interpreter in "
        "DOCKYARD_FRAMEWORK_PYTHON"
    )


def _probe(executable: str) -> tuple[Interpreter | None, bool]:
    real = os.path.realpath(executable)
    try:
        done = subprocess.run(
            [real, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
        )
        facts = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, False
    base_prefix = Path(os.path.realpath(facts["base_prefix"]))
    exposed: tuple[Path, ...] = ()
    if _private_in_sandbox(real) or _private_in_sandbox(str(base_prefix)):
        exposed = (base_prefix,)
        if not Path(real).is_relative_to(base_prefix):
            exposed += (Path(real).parent,)
    interpreter = Interpreter(real, str(facts["version"]), base_prefix, exposed)
    return interpreter, bool(facts["venv"])


def _private_in_sandbox(path: str) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in PRIVATE_IN_SANDBOX)


# -- keys -----------------------------------------------------------------------------------------


def shim_source() -> bytes:
    return (resources.files("dockyard.runtimes.shim") / f"{SHIM_MODULE}.py").read_bytes()


def _framework_key(framework: Framework, interpreter: Interpreter) -> str:
    digest = hashlib.sha256()
    for part in (
        f"builder {BUILDER_VERSION}",
        f"python {interpreter.version} {interpreter.executable}",
        *BOOTSTRAP,
        "requirements",
        *framework.requirements,
        "shim",
    ):
        digest.update(part.encode() + b"\0")
    digest.update(shim_source())
    return digest.hexdigest()


def _layer_key(base: PythonEnvironment, code: _Code, ordered: bool) -> str:
    digest = hashlib.sha256()
    for part in (f"builder {BUILDER_VERSION}", f"base {base.key}", f"ordered {ordered}"):
        digest.update(part.encode() + b"\0")
    digest.update(b"requirements\0" + code.requirements + b"\0")
    # What pip reads besides requirements.txt: the package itself, and local paths it names.
    sources = [code.folder] if code.package else code.local_paths()
    for source in sources:
        digest.update(f"source {source.relative_to(code.folder)}\0".encode())
        _hash_tree(digest, source)
    return digest.hexdigest()


def _hash_tree(digest: hashlib._Hash, source: Path) -> None:
    if source.is_file():
        digest.update(source.read_bytes() + b"\0")
        return
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_COPIED)
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_file():
                relative = path.relative_to(source)
                digest.update(f"{relative}\0{os.access(path, os.X_OK)}\0".encode())
                digest.update(path.read_bytes() + b"\0")


# -- the code's requirements ----------------------------------------------------------------------

_NOT_COPIED = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})


@dataclass(frozen=True)
class _Code:
    """What a code folder asks to have installed."""

    folder: Path
    requirements: bytes  # requirements.txt as it is, b"" when there is none
    text: str
    lines: tuple[str, ...]  # logical requirement lines: comments and continuations resolved
    package: bool  # it has a setup.py: the toolkit would `pip install .`

    @classmethod
    def read(cls, folder: Path) -> _Code:
        path = folder / "requirements.txt"
        try:
            requirements = path.read_bytes() if path.is_file() else b""
        except OSError as exc:
            raise EnvironmentBuildError(f"cannot read {path}: {exc}") from exc
        text = requirements.decode("utf-8", errors="replace")
        return cls(
            folder, requirements, text, _logical_lines(text), (folder / "setup.py").is_file()
        )

    @property
    def file_options(self) -> tuple[str, ...]:
        return tuple(line for line in self.lines if _FILE_OPTIONS.match(line))

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(line for line in self.lines if not _FILE_OPTIONS.match(line))

    def local_paths(self) -> list[Path]:
        """Files and folders inside the code folder that requirement lines name."""
        found = []
        inside = self.folder.resolve()
        for line in self.lines:
            match = _LOCAL_REFERENCE.match(line)
            if match is None:
                continue
            option, reference = match.group(1), match.group(2).removeprefix("file://")
            if option in (None, "-e", "--editable") and not reference.startswith((".", "/")):
                continue  # a requirement from an index, not a path
            path = (self.folder / reference).resolve()
            if path.exists() and path.is_relative_to(inside):
                found.append(self.folder / path.relative_to(inside))
        return found


def _logical_lines(text: str) -> tuple[str, ...]:
    """Requirement lines as pip reads them: continuations joined, comments and blanks dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = re.sub(r"(^|\s+)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    tail = re.sub(r"(^|\s+)#.*$", "", pending).strip()
    if tail:
        lines.append(tail)
    return tuple(lines)


# -- building -------------------------------------------------------------------------------------


class _FrameworkBuild:
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
        _run(
            [interpreter.executable, "-m", "venv", str(env.root)], log, env, "python -m venv failed"
        )
        with_deps = [line for line in self.framework.requirements if not _is_no_deps(line)]
        no_deps = [
            _strip_no_deps(line) for line in self.framework.requirements if _is_no_deps(line)
        ]
        _write_lines(env.root / "requirements.txt", with_deps)
        _pip(env, ["install", *BOOTSTRAP], log, "pip could not install pip itself")
        _pip(
            env,
            ["install", "-r", "requirements.txt"],
            log,
            f"pip could not install the {env.name} requirements",
            cwd=env.root,
        )
        if no_deps:
            _write_lines(env.root / "requirements-no-deps.txt", no_deps)
            _pip(
                env,
                ["install", "--no-deps", "-r", "requirements-no-deps.txt"],
                log,
                f"pip could not install the {env.name} requirements",
                cwd=env.root,
            )
        site = _site_dirs(env)[0]
        (site / f"{SHIM_MODULE}.py").write_bytes(shim_source())
        (site / f"{SHIM_MODULE}.pth").write_text(f"import {SHIM_MODULE}\n", encoding="utf-8")
        _write_train(env)
        _write_image_file(
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
            _run(
                [str(env.python), "-c", check],
                log,
                env,
                "the new environment cannot run",
                extra={"SAGEMAKER_BASE_DIR": scratch},
            )


class _LayerBuild:
    """A venv over the base environment, then pip with the code folder as its working folder."""

    def __init__(self, env: PythonEnvironment, base: PythonEnvironment, code: _Code, ordered: bool):
        self.env, self.base, self.code, self.ordered = env, base, code, ordered

    def run(self, log: Log) -> None:
        env, base, code = self.env, self.base, self.code
        what = "ordered, one line at a time" if self.ordered else "one pip run"
        log(
            f"building environment {env.name} ({env.key[:12]}) over {base.name} "
            f"({base.key[:12]}): {what}"
        )
        env.root.parent.mkdir(parents=True, exist_ok=True)
        interpreter = os.path.realpath(base.python)
        _run(
            [interpreter, "-m", "venv", "--without-pip", str(env.root)],
            log,
            env,
            "python -m venv failed",
        )
        base_sites = _site_dirs(base)
        additions = "".join(f"import site; site.addsitedir({str(s)!r})\n" for s in base_sites)
        (_site_dirs(env)[0] / "_dockyard_base.pth").write_text(additions, encoding="utf-8")
        _copy_scripts(base, env)
        _write_train(env)
        # pip runs in a copy: in-tree builds write build/ and *.egg-info next to the sources.
        work = env.root / "code"
        shutil.copytree(
            code.folder,
            work,
            symlinks=True,
            ignore=shutil.ignore_patterns(*_NOT_COPIED),
            ignore_dangling_symlinks=True,
        )
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
            _pip(env, ["install", *targets], log, f"pip could not install {what}", cwd=work)
        _write_image_file(
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
        _run([str(env.python), "-c", f"import {SHIM_MODULE}"], log, env, "the new layer cannot run")

    def _ordered(self, work: Path, log: Log) -> None:
        steps = self.code.steps
        for number, line in enumerate(steps, start=1):
            log(f"ordered install {number}/{len(steps)}: {line}")
            step_file = work / f".dockyard-step-{number}.txt"
            _write_lines(step_file, [*self.code.file_options, line])
            _pip(
                self.env,
                ["install", "--no-build-isolation", "-r", step_file.name],
                log,
                f"pip could not install line {number} of requirements.txt ({line})",
                cwd=work,
            )
        if self.code.package:
            log("ordered install: the code's package (setup.py)")
            _pip(
                self.env,
                ["install", "--no-build-isolation", "."],
                log,
                "pip could not install the code's package (setup.py)",
                cwd=work,
            )


def _pip(
    env: PythonEnvironment, arguments: list[str], log: Log, failure: str, *, cwd: Path | None = None
) -> None:
    argv = [str(env.python), "-m", "pip", *arguments, "--progress-bar", "off", "--no-input"]
    log("$ pip " + " ".join(arguments))
    _run(argv, log, env, failure, cwd=cwd)


def _run(
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
            env={**_build_environment(env), **(extra or {})},
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


def _build_environment(env: PythonEnvironment) -> dict[str, str]:
    # pip's own configuration (PIP_* variables, proxies, certificates) comes from the environment
    # of the user who runs dockyard, as it would for their own pip; Python's own does not.
    variables = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARIABLES}
    variables["PATH"] = ":".join(
        [*(str(d) for d in env.bin_dirs), variables.get("PATH", DEFAULT_PATH)]
    )
    variables["PYTHONNOUSERSITE"] = "1"  # the sandbox has no user site either
    variables["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return variables


def _site_dirs(env: PythonEnvironment) -> list[Path]:
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
    old, new = f"{base.bin_dir}/python".encode(), f"{env.bin_dir}/python".encode()
    for entry in sorted(base.bin_dir.iterdir()):
        target = env.bin_dir / entry.name
        if entry.is_symlink() or not entry.is_file() or target.exists():
            continue
        with open(entry, "rb") as handle:
            head = handle.read(512)
        if not head.startswith(b"#!") or old not in head:
            continue
        content = entry.read_bytes()
        target.write_bytes(content[:512].replace(old, new) + content[512:])
        target.chmod(0o755)


def _write_train(env: PythonEnvironment) -> None:
    # Both toolkits declare a `train` console script; this one is always sagemaker-training's.
    train = env.bin_dir / "train"
    train.unlink(missing_ok=True)
    train.write_text(_TRAIN_SCRIPT.format(python=env.python), encoding="utf-8")
    train.chmod(0o755)


def _write_image_file(env: PythonEnvironment, lines: list[str]) -> None:
    header = "# dockyard built this environment; it stands for an image (this is not a Dockerfile)"
    _write_lines(env.root / IMAGE_FILE, [header, *lines])


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _is_no_deps(line: str) -> bool:
    return line.split()[-1:] == [NO_DEPS]


def _strip_no_deps(line: str) -> str:
    return line.rsplit(NO_DEPS, 1)[0].strip()
