"""What an image's RUN lines ask of the host: Python package installs are built into the image's
own environment (see image_layers); Debian and R package installs name prerequisites the host must
already meet, checked here; anything else is listed, not run."""

from __future__ import annotations

import posixpath
import re
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

_SEPARATORS = frozenset(";&|()\n")
_REDIRECT = re.compile(r"^[0-9]*(>>?|<<?|>&|<&|&>>?)$")
# Words that can precede the real command without changing what it installs.
_PREFIXES = frozenset(
    {"sudo", "env", "command", "exec", "time", "nohup", "then", "else", "do", "!", "{", "if"}
)
# Commands that only tidy the image and need nothing from the host.
_HOUSEKEEPING = frozenset({"rm", "set", "true", ":", "cd", "fi", "done", "}"})
_APT = frozenset({"apt-get", "apt", "aptitude"})
_APT_VALUE_OPTIONS = frozenset(
    {"-o", "-c", "-t", "--option", "--config-file", "--target-release", "--default-release"}
)
_DEBIAN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_PIP_PROGRAM = re.compile(r"^pip[0-9.]*$")
_PYTHON_PROGRAM = re.compile(r"^python[0-9.]*$")
_PIP_VALUE_OPTIONS = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--src",
        "--platform", "--python-version", "--implementation", "--abi", "--only-binary",
        "--no-binary", "--progress-bar", "--cache-dir", "--log", "--timeout", "--retries",
        "--trusted-host", "--proxy", "--upgrade-strategy", "-C", "--config-settings",
        "--global-option", "--root-user-action", "--report", "--python",
    }
)  # fmt: skip
_PYTHON_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[^\]]*\])?")
_R_INSTALL = re.compile(
    r"(?:install\.packages|BiocManager::install)\(\s*(c\([^)]*\)|[\"'][^\"']+[\"'])"
)
_R_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")
# Debian's packages of Python itself and of pip: an image with a Python layer has both.
_PYTHON_DEBIAN = re.compile(
    r"^python3?(\.[0-9]+)?(-minimal|-pip|-venv|-setuptools|-wheel|-distutils|-is-python3)?$"
)


@dataclass(frozen=True)
class Prerequisite:
    """What one RUN line needs of the host, and what of it is missing.

    `kind` is "apt", "r", "pip" or "other". "pip" lines are built into the image's Python layer,
    never checked against dockyard's own environment; "other" lines are listed, not run."""

    line: str
    kind: str
    missing: list[str]
    checked: bool
    packages: list[str] = field(default_factory=list)


def check_prerequisites(run_lines: Iterable[str]) -> list[Prerequisite]:
    """Check every RUN line against this machine: one dpkg-query and one Rscript call at most.

    When a line runs pip, the image gets a Python layer of its own, which brings Python and pip:
    Debian's python3, python3-pip, python3-venv... are then not asked of this machine."""
    run_lines = list(run_lines)
    wanted = [(line, kind, packages) for line in run_lines for kind, packages in _needs(line)]
    has_layer = any(kind == "pip" for _, kind, _ in wanted)
    apt_missing = _missing_debian_packages(
        _unique(
            p
            for _, kind, packages in wanted
            if kind == "apt"
            for p in packages
            if not (has_layer and _PYTHON_DEBIAN.match(p))
        )
    )
    r_missing = _missing_r_packages(
        _unique(p for _, kind, packages in wanted if kind == "r" for p in packages)
    )
    prerequisites = []
    for line, kind, packages in wanted:
        missing: set[str] | None
        if kind == "apt":
            missing = apt_missing
        elif kind == "r":
            missing = r_missing
        elif kind == "pip":
            missing = set()  # built, not looked for
        else:
            missing = None
        prerequisites.append(
            Prerequisite(
                line=line,
                kind=kind,
                missing=[p for p in packages if missing is not None and p in missing],
                checked=missing is not None,
                packages=packages,
            )
        )
    return prerequisites


def describe_missing(prerequisites: Iterable[Prerequisite]) -> str | None:
    """One line naming every missing package, its RUN line and how to install it; None if none."""
    parts = []
    for prerequisite in prerequisites:
        if not prerequisite.missing:
            continue
        names = " ".join(prerequisite.missing)
        one = len(prerequisite.missing) == 1
        package, which, it = ("package", "is", "it") if one else ("packages", "are", "them")
        line = short_line(prerequisite.line)
        what, where, how = "Debian", "on this machine", fix_command(prerequisite)
        if prerequisite.kind == "r":
            what = "R"
        parts.append(
            f"the image's RUN line `{line}` needs {what} {package} {names.replace(' ', ', ')}, "
            f"which {which} not installed {where}: install {it} ({how}) and run the job again"
        )
    return "; ".join(parts) or None


def fix_command(prerequisite: Prerequisite) -> str:
    """The command that installs what `prerequisite` misses on this machine."""
    if prerequisite.kind == "apt":
        return "apt-get install " + " ".join(prerequisite.missing)
    quoted = ", ".join(f"'{name}'" for name in prerequisite.missing)
    r_install = f'Rscript -e "install.packages(c({quoted}))"'
    debian = debian_r_packages(prerequisite.missing)
    if len(debian) == len(prerequisite.missing):
        return "apt-get install " + " ".join(debian.values())
    if debian:
        return f"apt-get install {' '.join(debian.values())}, and {r_install}"
    return r_install


def debian_r_packages(names: Iterable[str]) -> dict[str, str]:
    """R package name -> the Debian package (`r-cran-*`) that ships it, for those apt knows."""
    candidates = {name: f"r-cran-{name.lower()}" for name in names}
    if not candidates:
        return {}
    try:
        result = subprocess.run(
            ["apt-cache", "policy", *candidates.values()],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    available, current = set(), None
    for row in result.stdout.splitlines():
        if row and not row[0].isspace() and row.endswith(":"):
            current = row[:-1]
        elif row.strip().startswith("Candidate:") and "(none)" not in row:
            available.add(current)
    return {name: debian for name, debian in candidates.items() if debian in available}


def pip_commands(line: str) -> list[list[str]]:
    """pip's arguments for each `pip install` / `pip uninstall` of a RUN line, in order (pip,
    pip3, python -m pip, uv pip; `&&` chains and `;` included); other pip commands are left out:
    `pip config` and the like would change the host, not the image."""
    try:
        commands = _commands(line)
    except ValueError:
        return []
    found = []
    for words in commands:
        args = _pip_arguments(posixpath.basename(words[0]), words[1:])
        if args is not None and _positional(args, _PIP_VALUE_OPTIONS)[:1] in (
            ["install"],
            ["uninstall"],
        ):
            found.append(args)
    return found


def pip_package_names(arguments: list[str]) -> list[str]:
    """The names of the packages a pip command installs by name (not paths, URLs or files)."""
    need = _pip(arguments)
    return need[1] if need is not None else []


def _pip_arguments(program: str, args: list[str]) -> list[str] | None:
    if _PYTHON_PROGRAM.match(program) and "-m" in args:
        module_args = args[args.index("-m") + 1 :]
        return module_args[1:] if module_args[:1] == ["pip"] else None
    if _PIP_PROGRAM.match(program):
        return args
    if program == "uv" and args[:1] == ["pip"]:
        return args[1:]
    return None


def short_line(line: str, limit: int = 160) -> str:
    """A RUN line on one line, cut at `limit` characters, for a message."""
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- reading a RUN line -------------------------------------------------------------------------


def _needs(line: str) -> list[tuple[str, list[str]]]:
    """(kind, packages) for each installer the line runs; ("other", []) for anything else in it."""
    try:
        commands = _commands(line)
    except ValueError:
        return [("other", [])]
    found: dict[str, list[str]] = {}
    other = False
    for words in commands:
        program = posixpath.basename(words[0])
        need = _installer(program, words[1:])
        if need is not None:
            kind, packages = need
            found.setdefault(kind, []).extend(packages)
        elif program not in _HOUSEKEEPING and program not in _APT:  # apt-get update, clean, ...
            other = True
    needs = [(kind, _unique(packages)) for kind, packages in found.items()]
    if other or not needs:
        needs.append(("other", []))
    return needs


def _commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line, split at ; && || | and newlines, minus redirections."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    commands: list[list[str]] = []
    words: list[str] = []
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif _REDIRECT.match(token) and any(ch in token for ch in "<>"):
            skip_next = True
            if words and words[-1].isdigit():
                words.pop()  # the 2 of 2>&1
        elif set(token) <= _SEPARATORS:
            commands.append(words)
            words = []
        else:
            words.append(token)
    commands.append(words)
    result = []
    for command in commands:
        while command and (command[0] in _PREFIXES or re.match(r"^[A-Za-z_]\w*=", command[0])):
            command = command[1:]
        if command:
            result.append(command)
    return result


def _installer(program: str, args: list[str]) -> tuple[str, list[str]] | None:
    if program in _APT:
        positional = _positional(args, _APT_VALUE_OPTIONS)
        if positional[:1] == ["install"]:
            return "apt", [n for n in map(_debian_name, positional[1:]) if n]
        return None
    if program in ("Rscript", "R"):
        expressions = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-e"]
        names = [name for expression in expressions for name in _r_names(expression)]
        return ("r", names) if names else None
    pip_args = _pip_arguments(program, args)
    return _pip(pip_args) if pip_args is not None else None


def _positional(args: list[str], value_options: frozenset[str]) -> list[str]:
    positional, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in value_options:
            skip = True
        elif not arg.startswith("-"):
            positional.append(arg)
    return positional


def _debian_name(word: str) -> str | None:
    if word.startswith((".", "/")) or word.endswith(".deb"):
        return None  # a local .deb file, not a package name
    name = re.split(r"[=/:]", word, maxsplit=1)[0].rstrip("+")
    return name if _DEBIAN_NAME.match(name) and not word.endswith("-") else None


def _pip(args: list[str]) -> tuple[str, list[str]] | None:
    positional = _positional(args, _PIP_VALUE_OPTIONS)
    if positional[:1] == ["uninstall"]:
        return "pip", []
    if positional[:1] != ["install"]:
        return None
    names = []
    for word in positional[1:]:
        if (
            "://" in word
            or word.startswith((".", "/", "git+", "@"))
            or word.endswith((".whl", ".zip", ".tar.gz"))
        ):
            continue
        match = _PYTHON_NAME.match(word)
        # pip upgrading itself is not something the program needs.
        if match and match.group(1).lower() != "pip":
            names.append(match.group(1))
    return "pip", names


def _r_names(expression: str) -> list[str]:
    names: list[str] = []
    for match in _R_INSTALL.finditer(expression):
        names.extend(
            n for n in re.findall(r"[\"']([^\"']+)[\"']", match.group(1)) if _R_NAME.match(n)
        )
    return names


# -- checking the host --------------------------------------------------------------------------


def _missing_debian_packages(packages: list[str]) -> set[str] | None:
    """Packages dpkg does not report as `install ok installed`; None when dpkg is not here."""
    if not packages:
        return set()
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}\t${Status}\n", *packages],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    installed = set()
    for row in result.stdout.splitlines():
        name, _, status = row.partition("\t")
        if status == "install ok installed":
            installed.add(name)
    return set(packages) - installed


def _missing_r_packages(packages: list[str]) -> set[str] | None:
    """Packages `requireNamespace` cannot load; all of them when R is not installed."""
    if not packages:
        return set()
    names = ", ".join(f"'{name}'" for name in packages)  # names matched _R_NAME: safe to quote
    script = (
        f"for (p in c({names})) if (!requireNamespace(p, quietly = TRUE)) cat(p, '\\n', sep = '')"
    )
    try:
        result = subprocess.run(
            ["Rscript", "--vanilla", "-e", script],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except FileNotFoundError:
        return set(packages)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return set(result.stdout.split()) & set(packages)
