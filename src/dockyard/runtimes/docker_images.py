"""Images of the docker runtime: a reference (checked against Docker's reference grammar when a
job is created, looked up or pulled when it starts) or an image folder with a Dockerfile, built
by the engine's own build under a tag named by the folder's content."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from dockyard.contract.errors import ImageError, ValidationError
from dockyard.runtimes.base import (
    FolderCheck,
    ImageCheck,
    Log,
    PreparedImage,
    Purpose,
    ResolvedImage,
    RunLineOutcome,
)
from dockyard.runtimes.docker_pulls import is_podman, pull
from dockyard.runtimes.images import command_line, image_folder_path, is_image_folder

# Docker's reference grammar (the distribution project's): [domain[:port]/]path[:tag][@digest].
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_MAX_NAME = 255
BUILD_REPOSITORY = "localhost/dockyard-build"
HOME_LABEL = "dockyard.home"

# Where a reference is looked up (the server maps ECR URIs to its registry), and the docker SDK
# auth_config a pull of it needs, if any.
Locate = Callable[[str], str]
AuthFor = Callable[[str], "dict[str, str] | None"]


def check_reference(ref: str) -> str:
    """`ref` when it is an image reference Docker accepts; ValidationError saying why not."""
    match = _REFERENCE.match(ref)
    if match is None:
        raise ValidationError(
            f"image {ref!r} is neither an image folder (an absolute path) nor an image reference "
            "Docker accepts (like registry.example:5000/team/name:tag, lowercase names)"
        )
    if len(match.group("name")) > _MAX_NAME:
        raise ValidationError(f"image {ref!r}: the name is longer than {_MAX_NAME} characters")
    return ref


@dataclass(frozen=True)
class DockerImageRef(ResolvedImage):
    """A checked reference: an image for the engine to find (or pull), or a folder to build."""

    ref: str
    located: str | None = None  # the reference the engine is asked for
    folder: Path | None = None  # an image folder with a Dockerfile

    def check_command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> None:
        # Whatever the image's ENTRYPOINT, `train` / `serve` is always something to run; whether
        # the image has that program is known only once it is pulled or built.
        command_line(None, None, entrypoint, arguments, default, self.ref)


@dataclass(frozen=True)
class DockerImage(PreparedImage):
    """An image present in the engine: its id (what containers run, whatever its tags become
    meanwhile) and the Entrypoint / Cmd / Env its config holds."""

    ref: str
    image_id: str
    purpose: Purpose
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    def command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> list[str]:
        return command_line(self.entrypoint, self.cmd, entrypoint, arguments, default, self.ref)


class DockerImages:
    """Resolves, pulls and builds images through one docker SDK client."""

    def __init__(
        self,
        client: docker.DockerClient,
        home: Path,
        *,
        locate: Locate | None = None,
        auth_for: AuthFor | None = None,
        engine_is_podman: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.home = home
        self.locate = locate or (lambda ref: ref)
        self.auth_for = auth_for or (lambda ref: None)
        # The runtime's answer, asked of the engine once; alone, this asks at each pull.
        self.engine_is_podman = engine_is_podman or (lambda: is_podman(client))

    def resolve(self, ref: str, readable: FolderCheck) -> DockerImageRef:
        """Cheap, at create time: a folder must be readable and hold a Dockerfile; a reference
        must follow the grammar. Nothing asks the engine yet."""
        if is_image_folder(ref):
            folder = readable(f"image {ref}", Path(image_folder_path(ref)))
            if not folder.is_dir():
                raise ImageError(f"image folder {ref} is not a folder")
            if not (folder / "Dockerfile").is_file():
                raise ImageError(
                    f"image folder {ref} has no Dockerfile: add one, or name an image reference"
                )
            return DockerImageRef(ref, folder=folder)
        located = check_reference(self.locate(check_reference(ref)))
        return DockerImageRef(ref, located=located)

    def prepare(self, image: DockerImageRef, *, purpose: Purpose, log: Log) -> DockerImage:
        """At start: a folder is built (or its build reused); a reference is looked up, and
        pulled when the engine does not have it."""
        if image.folder is not None:
            found = self._build(image.folder, log)
        else:
            found = self._find_or_pull(image, log)
        config = found.attrs.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        return DockerImage(
            image.ref,
            str(found.id),
            purpose,
            entrypoint=config.get("Entrypoint") or None,
            cmd=config.get("Cmd") or None,
            env=env,
            workdir=config.get("WorkingDir") or "/",
        )

    def check(self, image: DockerImageRef) -> ImageCheck:
        """What a build of the folder would do: its RUN lines, run by the engine's build."""
        folder = _own_folder(image)
        tag = build_tag(folder)
        built = bool(self.client.images.list(name=tag))
        outcomes = [
            RunLineOutcome(number, line, "other", "built" if built else "not run")
            for number, line in enumerate(run_lines(folder / "Dockerfile"), start=1)
        ]
        return ImageCheck(
            run_lines=outcomes,
            python_layer={"Status": "Built" if built else "NotBuilt", "Image": tag},
            build_steps=len(outcomes),
            missing=[],  # the build runs in the image, where its RUN lines install what they need
        )

    def build(self, image: DockerImageRef, log: Log) -> None:
        self._build(_own_folder(image), log)

    def _find_or_pull(self, image: DockerImageRef, log: Log) -> Any:
        """A reference the registry answers for (an ECR URI) is pulled each time, as SageMaker
        does, so a new push of a tag is what runs; any other is pulled only when missing."""
        ref = image.located
        assert ref is not None
        if ref == image.ref:
            try:
                return self.client.images.get(ref)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                raise ImageError(
                    f"could not look up image {ref}: {exc.explanation or exc}"
                ) from exc
        log(f"pulling {ref}" + (f" (for {image.ref})" if ref != image.ref else ""))
        return pull(self.client, ref, self.auth_for(ref), podman=self.engine_is_podman())

    def _build(self, folder: Path, log: Log) -> Any:
        tag = build_tag(folder)
        try:
            found = self.client.images.get(tag)
            log(f"image {tag}: {folder} as built before (its files are unchanged)")
            return found
        except docker.errors.ImageNotFound:
            pass
        log(f"building {folder} as {tag}")
        try:
            for chunk in self.client.api.build(
                path=str(folder),
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels={HOME_LABEL: str(self.home)},
            ):
                if "error" in chunk:
                    raise ImageError(f"building {folder} failed: {str(chunk['error']).strip()}")
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        log(line)
            return self.client.images.get(tag)
        except docker.errors.APIError as exc:
            raise ImageError(f"building {folder} failed: {exc.explanation or exc}") from exc
        except docker.errors.BuildError as exc:
            raise ImageError(f"building {folder} failed: {exc.msg}") from exc


def build_tag(folder: Path) -> str:
    """`localhost/dockyard-build/<folder name>:<content hash>`: a changed folder is built again,
    an unchanged one is found."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-") or "image"
    return f"{BUILD_REPOSITORY}/{name}:{content_hash(folder)[:16]}"


def content_hash(folder: Path) -> str:
    """A digest of every path, file and link in `folder` (links are hashed by their target,
    never followed), in a fixed order."""
    digest = hashlib.sha256()
    for path in _walk(folder):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(b"L" + relative.encode() + b"\0" + os.readlink(path).encode() + b"\0")
        elif path.is_file():
            digest.update(b"F" + relative.encode() + b"\0")
            digest.update(oct(path.lstat().st_mode & 0o7777).encode())
            with path.open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
        else:
            digest.update(b"D" + relative.encode() + b"\0")
    return digest.hexdigest()


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):  # does not descend into linked folders
        dirs.sort()
        for name in sorted([*dirs, *files]):
            yield Path(root) / name


def run_lines(dockerfile: Path) -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending.strip())
    return [line for line in logical if line.split(None, 1)[0].upper() == "RUN"]


def _own_folder(image: ResolvedImage) -> Path:
    if not isinstance(image, DockerImageRef):
        raise ImageError(f"{image.ref} was not resolved by the docker runtime")
    if image.folder is None:
        raise ImageError(
            f"{image.ref} is an image reference: there is no image folder to check or build; "
            "its first job pulls it if the engine does not have it"
        )
    return image.folder
