"""Read an image folder's Dockerfile into an ImageSpec: what each instruction means, in order."""

from __future__ import annotations

import copy
import glob
import hashlib
import os
import posixpath
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dockyard.contract.errors import ImageError
from dockyard.runtimes.dockerfile_words import Expander, SyntaxProblem, json_list, split_words

# The host is the base image, and Debian's base image declares only PATH. `ENV PATH=/x:$PATH` must
# expand against it, exactly as it would against `FROM debian`.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV: Mapping[str, str] = {"PATH": DEFAULT_PATH}

_DEFAULT_SHELL = ("/bin/sh", "-c")
_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(\S*)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|git@)", re.IGNORECASE)
_IGNORED = frozenset({"EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"})


@dataclass(frozen=True)
class CopyInstruction:
    """One file or folder of the image folder placed read-only at `destination` in the sandbox.

    A folder's *contents* go to `destination` (Docker's rule), a file becomes `destination`."""

    source: Path
    destination: str


@dataclass(frozen=True)
class RunInstruction:
    """One RUN line with what it would see in a Docker build: the WORKDIR, the ENV (ARGs
    included, as Docker gives them to RUN) and how many of the image's COPYs came before it."""

    line: str
    workdir: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    copies_before: int = 0


@dataclass(frozen=True)
class ImageSpec:
    """What the process runtime honours of a Dockerfile's last stage."""

    context: Path
    dockerfile: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    copies: list[CopyInstruction] = field(default_factory=list)
    runs: list[RunInstruction] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    digest: str = ""

    @property
    def run_lines(self) -> list[str]:
        return [run.line for run in self.runs]

    def argv(
        self,
        entrypoint: list[str] | None = None,
        arguments: list[str] | None = None,
        default_argument: str | None = None,
    ) -> list[str]:
        """The program to run, with Docker's ENTRYPOINT/CMD rules and SageMaker's `train`/`serve`.

        SageMaker runs `docker run image train`: `default_argument` replaces CMD, unless the job
        overrides the entrypoint (ContainerEntrypoint alone runs without `train`)."""
        return command_line(
            self.entrypoint, self.cmd, entrypoint, arguments, default_argument, str(self.dockerfile)
        )


def command_line(
    image_entrypoint: list[str] | None,
    image_cmd: list[str] | None,
    entrypoint: list[str] | None,
    arguments: list[str] | None,
    default_argument: str | None,
    where: str,
) -> list[str]:
    """Docker's ENTRYPOINT/CMD rules with SageMaker's `train`/`serve` as the CMD; `where` names
    the image (its Dockerfile) in the error when there is nothing to run."""
    effective_entrypoint = entrypoint or image_entrypoint or []
    if arguments:
        effective_arguments = arguments
    elif entrypoint:
        # `docker run --entrypoint X image` drops the image's CMD too.
        effective_arguments = []
    elif default_argument is not None:
        effective_arguments = [default_argument]
    else:
        effective_arguments = image_cmd or []
    argv = [*effective_entrypoint, *effective_arguments]
    if not argv:
        raise ImageError(
            "image has no ENTRYPOINT or CMD and no command was given: "
            f"add an ENTRYPOINT or CMD to {where} or pass ContainerEntrypoint"
        )
    return argv


def read_image(ref: str) -> ImageSpec:
    """Read the image folder `ref` (a path or a `file://` URI) into an ImageSpec."""
    display = image_folder_path(ref)
    folder = Path(display)
    if not folder.is_dir():
        if folder.exists():
            raise ImageError(
                f"image {display} is not a folder: an image is a folder with a Dockerfile"
            )
        raise ImageError(f"image folder {display} does not exist")
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageError(f"image folder {display} has no Dockerfile")
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(
            f"cannot read {display}/Dockerfile ({exc}): make it a readable UTF-8 file"
        ) from exc
    return _DockerfileReader(folder.resolve(), dockerfile.resolve(), f"{display}/Dockerfile").read(
        text
    )


def is_image_folder(ref: str) -> bool:
    """A path or a file:// URI names an image folder; anything else is an image reference
    (the CLI and SDK send absolute paths; a relative one is refused by the folder rules)."""
    return ref.startswith(("/", "file:", "./", "../", "~"))


def image_folder_path(ref: str) -> str:
    """The path an image folder reference names (a path, or a `file://` URI)."""
    if not ref.startswith("file:"):
        return ref
    parts = urlsplit(ref)
    if parts.netloc not in ("", "localhost"):
        # file://examples/r is a common slip for a relative path; read it as one.
        return unquote(parts.netloc + parts.path)
    return unquote(parts.path)


@dataclass
class _Stage:
    """The state of one build stage while its instructions are read."""

    name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    cmd_set: bool = False
    copies: list[CopyInstruction] = field(default_factory=list)
    copied_dirs: set[str] = field(default_factory=set)
    runs: list[RunInstruction] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    shell: list[str] = field(default_factory=lambda: list(_DEFAULT_SHELL))

    def scope(self) -> dict[str, str]:
        # Docker: ENV (the base image's included) always wins over an ARG of the same name.
        return {**self.args, **BASE_ENV, **self.env}


class _DockerfileReader:
    def __init__(self, context: Path, dockerfile: Path, display: str) -> None:
        self.context = context
        self.dockerfile = dockerfile
        self.display = display
        self.escape = "\\"
        self.global_args: dict[str, str] = {}
        self.stages: list[_Stage] = []

    def read(self, text: str) -> ImageSpec:
        for number, instruction, args in self._instructions(text):
            try:
                self._dispatch(instruction, args)
            except SyntaxProblem as exc:
                raise ImageError(f"{self.display} line {number}: {exc}") from None
        if not self.stages:
            raise ImageError(
                f"{self.display} has no FROM instruction: start it with FROM <base image>"
            )
        stage = self.stages[-1]
        return ImageSpec(
            context=self.context,
            dockerfile=self.dockerfile,
            env=dict(stage.env),
            workdir=stage.workdir,
            entrypoint=stage.entrypoint,
            cmd=stage.cmd,
            copies=list(stage.copies),
            runs=list(stage.runs),
            labels=dict(stage.labels),
            user=stage.user,
            digest=_digest(self.dockerfile, self.context, stage.copies),
        )

    # -- lines ---------------------------------------------------------------------------------

    def _instructions(self, text: str) -> list[tuple[int, str, str]]:
        """(line number, INSTRUCTION, arguments), comments, continuations and heredocs resolved."""
        lines = text.splitlines()
        index = self._read_directives(lines)
        result: list[tuple[int, str, str]] = []
        while index < len(lines):
            start = index
            parts: list[str] = []
            while index < len(lines):
                line = lines[index]
                index += 1
                stripped = line.strip()
                # Comment lines are dropped even inside a continuation; so are blank ones there.
                if stripped.startswith("#") or (not stripped and parts):
                    continue
                if not stripped:
                    break
                body = line.rstrip()
                if body.endswith(self.escape):
                    parts.append(body[: -len(self.escape)])
                    continue
                parts.append(line)
                break
            if not parts:
                continue
            logical = "".join(parts).strip()
            head = re.match(r"(\S+)\s*(.*)", logical, re.S)
            assert head is not None  # logical is stripped and not empty
            instruction, args = head.group(1).upper(), head.group(2).strip()
            heredoc = _HEREDOC.search(args) if instruction in ("RUN", "COPY", "ADD") else None
            if heredoc:
                body_lines, index = self._read_heredoc(lines, index, heredoc, start)
                if instruction != "RUN":
                    raise ImageError(
                        f"{self.display} line {start + 1}: {instruction} with a here-document is "
                        "not supported by the process runtime: "
                        "put the file in the image folder and COPY it"
                    )
                command = (args[: heredoc.start()] + args[heredoc.end() :]).strip()
                args = "\n".join([command, *body_lines] if command else body_lines)
            result.append((start + 1, instruction, args))
        return result

    def _read_directives(self, lines: list[str]) -> int:
        index = 0
        while index < len(lines):
            match = _DIRECTIVE.match(lines[index].strip())
            if not match:
                break
            if match.group(1).lower() == "escape":
                if match.group(2) not in ("\\", "`"):
                    raise ImageError(
                        f"{self.display}: escape must be \\ or `, not {match.group(2)!r}"
                    )
                self.escape = match.group(2)
            index += 1
        return index

    def _read_heredoc(
        self, lines: list[str], index: int, heredoc: re.Match[str], start: int
    ) -> tuple[list[str], int]:
        strip_tabs, word = heredoc.group(1) == "-", heredoc.group(3)
        body: list[str] = []
        while index < len(lines):
            line = lines[index].lstrip("\t") if strip_tabs else lines[index]
            index += 1
            if line == word:
                return body, index
            body.append(line)
        raise ImageError(f"{self.display} line {start + 1}: here-document {word} is never closed")

    # -- instructions --------------------------------------------------------------------------

    def _dispatch(self, instruction: str, args: str) -> None:
        if instruction == "FROM":
            self._from(args)
            return
        if not self.stages:
            if instruction != "ARG":
                raise SyntaxProblem(f"{instruction} comes before FROM: only ARG may")
            self._arg(args, self.global_args, self.global_args)
            return
        stage = self.stages[-1]
        handler = {
            "ARG": lambda: self._arg(args, stage.args, stage.scope()),
            "ENV": lambda: stage.env.update(self._name_values(args, "ENV", stage.scope())),
            "LABEL": lambda: stage.labels.update(self._name_values(args, "LABEL", stage.scope())),
            "WORKDIR": lambda: self._workdir(stage, args),
            "USER": lambda: setattr(stage, "user", self._expand(args, stage.scope())),
            "ENTRYPOINT": lambda: self._entrypoint(stage, args),
            "CMD": lambda: self._cmd(stage, args),
            "SHELL": lambda: setattr(stage, "shell", self._shell(args)),
            "RUN": lambda: stage.runs.append(
                RunInstruction(self._run(args), stage.workdir, stage.scope(), len(stage.copies))
            ),
            "COPY": lambda: self._copy(stage, args, "COPY"),
            "ADD": lambda: self._copy(stage, args, "ADD"),
        }.get(instruction)
        if handler is not None:
            handler()
        elif instruction not in _IGNORED:
            raise SyntaxProblem(f"unknown instruction {instruction}")

    def _from(self, args: str) -> None:
        words = [
            self._expand(w, self.global_args) for w in self._words(args) if not w.startswith("--")
        ]
        if not words:
            raise SyntaxProblem("FROM needs a base image")
        base = words[0].lower()
        parent = next((s for s in reversed(self.stages) if s.name == base), None)
        stage = copy.deepcopy(parent) if parent else _Stage()
        # A stage built on an earlier one inherits its image config, but not its ARGs, and its CMD
        # counts as inherited (a later ENTRYPOINT clears it, as Docker does for a base image's CMD).
        stage.args, stage.cmd_set = {}, False
        stage.name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        self.stages.append(stage)

    def _arg(self, args: str, target: dict[str, str], scope: Mapping[str, str]) -> None:
        for word in self._words(args):
            name, has_default, default = word.partition("=")
            if has_default:
                target[name] = self._expand(default, scope)
            elif name in self.global_args and target is not self.global_args:
                # `ARG NAME` inside a stage brings a global ARG's default into scope.
                target[name] = self.global_args[name]

    def _name_values(self, args: str, instruction: str, scope: Mapping[str, str]) -> dict[str, str]:
        words = self._words(args)
        if not words:
            raise SyntaxProblem(f"{instruction} needs at least one name=value")
        if "=" not in words[0]:
            # Legacy `ENV name value with spaces`: the rest of the line is the value.
            legacy = re.match(r"(\S+)\s+(.*)", args, re.S)
            name, rest = (legacy.group(1), legacy.group(2)) if legacy else (args, "")
            if not rest.strip():
                raise SyntaxProblem(f"{instruction} {name} has no value: write {name}=value")
            return {name: self._expand(rest.strip(), scope)}
        values: dict[str, str] = {}
        for word in words:
            name, has_value, raw = word.partition("=")
            if not has_value or not name:
                raise SyntaxProblem(f"{instruction} expects name=value, got {word!r}")
            # Every value sees the variables as they were before this instruction (Docker's rule).
            values[self._expand(name, scope)] = self._expand(raw, scope)
        return values

    def _workdir(self, stage: _Stage, args: str) -> None:
        target = self._expand(args, stage.scope())
        if not target:
            raise SyntaxProblem("WORKDIR needs a path")
        stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, target))
        if stage.workdir.startswith("//"):
            stage.workdir = "/" + stage.workdir.lstrip("/")

    def _entrypoint(self, stage: _Stage, args: str) -> None:
        stage.entrypoint = self._command(args, stage.shell)
        if not stage.cmd_set:
            stage.cmd = None

    def _cmd(self, stage: _Stage, args: str) -> None:
        stage.cmd, stage.cmd_set = self._command(args, stage.shell), True

    def _command(self, args: str, shell: list[str]) -> list[str]:
        exec_form = json_list(args)
        return exec_form if exec_form is not None else [*shell, args]

    def _shell(self, args: str) -> list[str]:
        exec_form = json_list(args)
        if not exec_form:
            raise SyntaxProblem(
                'SHELL must be written in JSON form, e.g. SHELL ["/bin/bash", "-c"]'
            )
        return exec_form

    def _run(self, args: str) -> str:
        flags = re.match(r"(\s*--[a-z-]+(=\S*)?)*\s*", args)
        command = args[flags.end() :] if flags else args
        exec_form = json_list(command)
        return shlex.join(exec_form) if exec_form is not None else command

    def _copy(self, stage: _Stage, args: str, instruction: str) -> None:
        words = self._words(args)
        while words and words[0].startswith("--"):
            flag = words.pop(0)
            name = flag[2:].partition("=")[0].lower()
            if name == "from":
                raise SyntaxProblem(
                    f"{instruction} {flag} copies from another build stage or image: multi-stage "
                    "copies are not supported by the process runtime; "
                    "put the files in the image folder and COPY them from there"
                )
            if name in ("parents", "exclude"):
                raise SyntaxProblem(
                    f"{instruction} --{name} is not supported by the process runtime"
                )
            # --chown/--chmod/--link/--checksum change nothing for a read-only bind mount.
        scope = stage.scope()
        exec_form = json_list(" ".join(words))
        if exec_form is not None:
            paths = [self._expand(w, scope, quotes=False) for w in exec_form]
        else:
            paths = [self._expand(w, scope) for w in words]
        if len(paths) < 2:
            raise SyntaxProblem(f"{instruction} needs at least one source and a destination")
        *sources, raw_destination = paths
        matches = [m for source in sources for m in self._sources(source, instruction)]
        destination = posixpath.normpath(posixpath.join(stage.workdir, raw_destination))
        destination = "/" + destination.lstrip("/")
        into_directory = (
            raw_destination.endswith("/")
            or posixpath.basename(raw_destination) in (".", "..")
            or len(matches) > 1
            or destination in stage.copied_dirs
            # The host is the base image: `COPY train /usr/local/bin` lands in the existing folder.
            or os.path.isdir(destination)
        )
        for name, source in matches:
            if source.is_dir():
                target = destination
            else:
                if instruction == "ADD" and tarfile.is_tarfile(source):
                    raise SyntaxProblem(
                        f"ADD of an archive ({name}) is not supported; "
                        "extract it in the image folder and COPY it"
                    )
                target = posixpath.join(destination, name) if into_directory else destination
            stage.copied_dirs.update(
                _parents(target if source.is_dir() else posixpath.dirname(target))
            )
            stage.copies.append(CopyInstruction(source=source, destination=target))

    def _sources(self, source: str, instruction: str) -> list[tuple[str, Path]]:
        """(base name, resolved path) of each file a COPY source names; globs are expanded."""
        if _URL.match(source):
            raise SyntaxProblem(
                f"{instruction} of a URL ({source}) is not supported: "
                "download it into the image folder and COPY it"
            )
        relative = source.lstrip("/") or "."
        if any(ch in relative for ch in "*?["):
            names = sorted(glob.glob(relative, root_dir=self.context, include_hidden=True))
        else:
            names = [relative]
        found: list[tuple[str, Path]] = []
        for name in names:
            real = Path(os.path.realpath(self.context / name))
            if real != self.context and self.context not in real.parents:
                raise SyntaxProblem(
                    f"{instruction} source {source} is outside the image folder: "
                    "only files inside the image folder can be copied"
                )
            if real.exists():
                found.append((posixpath.basename(posixpath.normpath(name)), real))
        if not found:
            raise SyntaxProblem(
                f"{instruction} source {source} is not in the image folder {self.context}: "
                "add it there or fix the path"
            )
        return found

    # -- words ---------------------------------------------------------------------------------

    def _words(self, text: str) -> list[str]:
        try:
            return split_words(text, self.escape)
        except ValueError as exc:
            raise SyntaxProblem(str(exc)) from None

    def _expand(self, word: str, scope: Mapping[str, str], *, quotes: bool = True) -> str:
        try:
            return Expander(word, scope, self.escape, quotes).expand()
        except ValueError as exc:
            raise SyntaxProblem(str(exc)) from None


def _parents(path: str) -> list[str]:
    parents = [path]
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        parents.append(path)
    return parents


def _digest(dockerfile: Path, context: Path, copies: list[CopyInstruction]) -> str:
    """sha256 over the Dockerfile and each copied file's path, size and mtime: a cache key."""
    digest = hashlib.sha256(dockerfile.read_bytes())
    for item in copies:
        digest.update(f"\0copy\0{item.destination}\0".encode())
        for path in _walk(item.source):
            stat = path.lstat()
            relative = path.relative_to(context) if path.is_relative_to(context) else path
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _walk(source: Path) -> list[Path]:
    if not source.is_dir():
        return [source]
    paths = [source]
    for root, dirs, files in os.walk(source):
        dirs.sort()
        paths.extend(Path(root, name) for name in sorted(dirs + files))
    return paths
