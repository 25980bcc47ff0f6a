"""The tests' own base images: the Debian mirror read from apt's sources in both of their forms,
and the Debian image with Python the docker runtime's tests start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.containers import debian_mirror


def test_the_mirror_comes_from_one_line_and_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb-src deb\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    # The one-line form is read first, options in brackets and comments skipped.
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://source.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n"
    )
    assert debian_mirror("bookworm", tmp_path) == "http://list.example/debian"
    with pytest.raises(RuntimeError, match="no Debian mirror for trixie"):
        debian_mirror("trixie", tmp_path)


def test_the_debian_python_image_runs_python_and_carries_no_apt_lists(
    container_engine: Any, debian_python: str
) -> None:
    printed = container_engine.client.containers.run(
        debian_python,
        ["sh", "-c", "python3 -c 'import sys; print(sys.version_info[:2])'; ls /var/lib/apt/lists"],
        remove=True,
    )
    assert printed.decode().split() == ["(3,", "11)", "partial"]
