"""Host virtual environments for framework images, built outside the sandbox and cached by hash.

Layout of the environments folder (settings.envs_dir):

    <name>-<version>-<key12>/  a framework environment: a venv of a host interpreter holding the
                               pinned requirements, the toolkits, the shim (dockyard_shim.py and
                               dockyard_shim.pth) and bin/train; `.complete` is written last
    image-<key12>/             an image folder's Python layer: a venv of the host interpreter into
                               which the pip commands of its RUN lines were run, in order (see
                               image_layers); its key covers the commands, their WORKDIR and ENV
                               and the COPYed files under the folders they name
    .pip-cache/                pip's cache for image and code layers (their build user's)
    .build/<folder>/           a build's scratch (its /tmp, copies of an image's COPYs)
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
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dockyard.contract.errors import EnvironmentBuildError
from dockyard.runtimes.build_view import BuildView
from dockyard.runtimes.code_requirements import NOT_COPIED, ORDERED, CodeRequirements
from dockyard.runtimes.frameworks import Framework
from dockyard.runtimes.image_layers import ImageLayerBuild, PipStep, pip_steps
from dockyard.runtimes.images import DEFAULT_PATH, ImageSpec
from dockyard.runtimes.venv_builds import (
    BOOTSTRAP,
    IMAGE_FILE,
    FrameworkBuild,
    Interpreter,
    LayerBuild,
    Log,
    PythonEnvironment,
    shim_source,
)

__all__ = ["EnvironmentBuildError", "Environments", "PythonEnvironment", "framework_image"]

# Bumped when a change here changes what an environment holds: every environment is then rebuilt.
BUILDER_VERSION = "1"
COMPLETE = ".complete"
# The sandbox replaces these folders with its own: an interpreter there must be bound back in.
PRIVATE_IN_SANDBOX = ("/tmp", "/root", "/proc", "/dev")
_PROBE = (
    "import importlib.util as u, json, sys\n"
    "print(json.dumps({'version': sys.version.split()[0], 'base_prefix': sys.base_prefix,\n"
    "    'venv': bool(u.find_spec('venv') and u.find_spec('ensurepip'))}))"
)


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

    def __init__(
        self,
        root: Path,
        python: str | None = None,
        *,
        build_uid: int = 1_999_999_999,
        hidden: tuple[Path, ...] = (),
        bwrap: str = "bwrap",
    ) -> None:
        self.root = root
        self._python = python
        # Users' packages (image layers, code layers) are built as this user, never a sandbox's,
        # in a view of the machine without `hidden` (dockyard's home): see build_view.
        self.view = BuildView(build_uid, root / ".pip-cache", hidden, bwrap)
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
        return self._ensure(env, log, lambda: FrameworkBuild(env, framework, interpreter).run(log))

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
        code = CodeRequirements.read(code_dir)
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
        build = LayerBuild(env, base, code, ordered, self.view)
        return self._ensure(env, log, lambda: build.run(log))

    def image_layer_state(self, image: ImageSpec) -> dict[str, str]:
        """Whether the image has a Python layer and whether it is built, building nothing."""
        steps = pip_steps(image)
        if not steps:
            return {"Status": "NoLayer"}
        env = self._image_environment(image, steps)
        status = "Built" if _is_complete(env) else "NotBuilt"
        return {"Status": status, "Key": env.key, "Path": str(env.root)}

    def image_layer(self, image: ImageSpec, log: Log) -> PythonEnvironment | None:
        """The image's Python layer (its RUN lines' pip commands, built or reused); None when
        no RUN line runs pip."""
        steps = pip_steps(image)
        if not steps:
            return None
        interpreter = self.interpreter
        env = self._image_environment(image, steps)
        build = ImageLayerBuild(env, image, steps, interpreter, self.view)
        return self._ensure(env, log, lambda: build.run(log))

    def _image_environment(self, image: ImageSpec, steps: list[PipStep]) -> PythonEnvironment:
        interpreter = self.interpreter
        key = _image_key(steps, interpreter)
        folder = self.root / f"image-{key[:12]}"
        return PythonEnvironment(
            root=folder,
            key=key,
            visible_paths=(folder, *interpreter.exposed),
            name=f"image {image.context.name}",
        )

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


def _image_key(steps: list[PipStep], interpreter: Interpreter) -> str:
    digest = hashlib.sha256()
    for part in (
        f"builder {BUILDER_VERSION}",
        f"python {interpreter.version} {interpreter.executable}",
        *BOOTSTRAP,
    ):
        digest.update(part.encode() + b"\0")
    digest.update(b"shim\0" + shim_source() + b"\0")
    for step in steps:
        digest.update(f"step\0{step.run.workdir}\0".encode())
        facts = [step.arguments, sorted(step.run.env.items()), step.constraints]
        digest.update(json.dumps(facts).encode())
        for item in step.copies:
            digest.update(f"\0copy {item.destination}\0".encode())
            _hash_tree(digest, item.source)
    return digest.hexdigest()


def _layer_key(base: PythonEnvironment, code: CodeRequirements, ordered: bool) -> str:
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
    """Content, names and executable bits; a link counts as its target's name, never followed
    (a user's link must not make dockyard read a file for them)."""
    if source.is_symlink():
        digest.update(f"link {os.readlink(source)}\0".encode())
        return
    if source.is_file():
        digest.update(source.read_bytes() + b"\0")
        return
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in NOT_COPIED)
        for name in sorted(files):
            path = Path(folder, name)
            relative = path.relative_to(source)
            if path.is_symlink():
                digest.update(f"{relative}\0link {os.readlink(path)}\0".encode())
            elif path.is_file():
                digest.update(f"{relative}\0{os.access(path, os.X_OK)}\0".encode())
                digest.update(path.read_bytes() + b"\0")
