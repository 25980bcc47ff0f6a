"""Which paths of this machine dockyard reads or writes for a job (file:// URIs and local paths):
only under the roots DOCKYARD_LOCAL_PATHS names, never a hidden, system or dockyard folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import ValidationError

SETTING = "DOCKYARD_LOCAL_PATHS"

# Never read or written for a job, even under a configured root: the machine's configuration,
# programs and libraries, kernel interfaces and system state (/var holds crontabs, mail
# spools and package databases). /srv, /opt, /mnt, /media and /tmp are not here: data lives
# there, and an operator may name such folders in DOCKYARD_LOCAL_PATHS.
SYSTEM_FOLDERS = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var",
)


def _resolved_all(paths: Iterable[Path | str]) -> tuple[Path, ...]:
    found: list[Path] = []
    for path in paths:
        # /bin is /usr/bin on merged-/usr systems: both spellings are refused.
        for spelling in (Path(path), Path(os.path.realpath(path))):
            if spelling not in found:
                found.append(spelling)
    return tuple(found)


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class LocalPaths:
    """The operator's roots (resolved) and dockyard's own folders (never given to a job)."""

    roots: tuple[Path, ...]
    forbidden: tuple[Path, ...]
    system: tuple[Path, ...] = ()

    @classmethod
    def of(cls, roots: Iterable[Path], forbidden: Iterable[Path]) -> LocalPaths:
        return cls(
            roots=tuple(Path(os.path.realpath(root)) for root in roots),
            forbidden=_resolved_all(forbidden),
            system=_resolved_all(SYSTEM_FOLDERS),
        )

    def readable(self, what: str, path: Path) -> Path:
        """`path` resolved, when it exists and dockyard may read it for a job; ValidationError
        saying what to do otherwise. `what` starts the error ("input file:///x")."""
        resolved = self._resolve(what, path)
        # Checked before it is looked for: whether a file exists outside the roots is not
        # something to tell.
        self.check(what, resolved)
        if not resolved.exists():
            raise ValidationError(f"{what}: {path} does not exist")
        return resolved

    def writable(self, what: str, path: Path) -> Path:
        """`path` resolved (it need not exist yet), when dockyard may write (or, once it exists,
        read) there for a job."""
        resolved = self._resolve(what, path)
        self.check(what, resolved)
        return resolved

    @staticmethod
    def _resolve(what: str, path: Path) -> Path:
        if not path.is_absolute():
            raise ValidationError(f"{what}: local paths must be absolute")
        return Path(os.path.realpath(path))

    def problem(self, resolved: Path) -> str | None:
        """Why the resolved path may not be read or written for a job; None when it may."""
        if resolved == Path("/"):
            return "the root folder can't be given to a job"
        for system in self.system:
            if _within(resolved, system) or resolved in system.parents:
                return (
                    f"{resolved} is or holds a system folder ({system}); dockyard never reads "
                    "or writes system folders for a job, whatever " + SETTING + " says"
                )
        for own in self.forbidden:
            if _within(resolved, own) or resolved in own.parents:
                return (
                    f"{resolved} is or holds a dockyard folder ({own}, its own state), which "
                    "a job must never see"
                )
        root = self.root_of(resolved)
        if root is None:
            allowed = ":".join(str(r) for r in self.roots) or "none"
            return (
                f"{resolved} is outside the folders {SETTING} allows ({allowed}); add its "
                f"folder to {SETTING} (absolute folders separated by ':') where the server "
                "starts, or upload the data to s3:// (dockyard s3 cp)"
            )
        hidden = [part for part in resolved.relative_to(root).parts if part.startswith(".")]
        if hidden:
            return (
                f"{resolved} is or is inside a hidden folder or file ({hidden[0]}), which "
                f"dockyard never reads or writes for a job; move the data, or name that "
                f"folder itself in {SETTING}"
            )
        return None

    def check(self, what: str, resolved: Path) -> None:
        problem = self.problem(resolved)
        if problem is not None:
            raise ValidationError(f"{what}: {problem}")

    def root_of(self, resolved: Path) -> Path | None:
        """The deepest root `resolved` is in (the hidden-folder rule applies below it)."""
        inside = [root for root in self.roots if _within(resolved, root)]
        return max(inside, key=lambda root: len(root.parts)) if inside else None
