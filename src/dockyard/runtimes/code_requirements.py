"""What a job's code folder asks to have installed: requirements.txt read as pip reads it, the
`# dockyard: ordered` marker, the local paths it names, and whether it is a package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import EnvironmentBuildError

ORDERED = re.compile(r"^\s*#\s*dockyard:\s*ordered\s*$", re.IGNORECASE | re.MULTILINE)
# Requirement-file options that apply to the whole file rather than to one requirement.
FILE_OPTIONS = re.compile(
    r"^(-i|--index-url|--extra-index-url|--no-index|-f|--find-links|--pre|--trusted-host|"
    r"--prefer-binary|--only-binary|--no-binary|--use-feature|-c|--constraint)(\s|=|$)"
)
LOCAL_REFERENCE = re.compile(r"^(?:(-e|--editable|-r|--requirement|-c|--constraint)[\s=]+)?(\S+)")

NOT_COPIED = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})


@dataclass(frozen=True)
class CodeRequirements:
    """What a code folder asks to have installed."""

    folder: Path
    requirements: bytes  # requirements.txt as it is, b"" when there is none
    text: str
    lines: tuple[str, ...]  # logical requirement lines: comments and continuations resolved
    package: bool  # it has a setup.py: the toolkit would `pip install .`

    @classmethod
    def read(cls, folder: Path) -> CodeRequirements:
        path = folder / "requirements.txt"
        try:
            requirements = path.read_bytes() if path.is_file() else b""
        except OSError as exc:
            raise EnvironmentBuildError(f"cannot read {path}: {exc}") from exc
        text = requirements.decode("utf-8", errors="replace")
        return cls(folder, requirements, text, logical_lines(text), (folder / "setup.py").is_file())

    @property
    def file_options(self) -> tuple[str, ...]:
        return tuple(line for line in self.lines if FILE_OPTIONS.match(line))

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(line for line in self.lines if not FILE_OPTIONS.match(line))

    def local_paths(self) -> list[Path]:
        """Files and folders inside the code folder that requirement lines name."""
        found = []
        inside = self.folder.resolve()
        for line in self.lines:
            match = LOCAL_REFERENCE.match(line)
            if match is None:
                continue
            option, reference = match.group(1), match.group(2).removeprefix("file://")
            if option in (None, "-e", "--editable") and not reference.startswith((".", "/")):
                continue  # a requirement from an index, not a path
            path = (self.folder / reference).resolve()
            if path.exists() and path.is_relative_to(inside):
                found.append(self.folder / path.relative_to(inside))
        return found


def logical_lines(text: str) -> tuple[str, ...]:
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
