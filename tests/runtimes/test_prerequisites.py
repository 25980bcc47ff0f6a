"""RUN lines read and checked against this machine's real dpkg, apt and R; pip lines are built
into the image's layer, never looked for in dockyard's own environment."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.runtimes import prerequisites
from dockyard.runtimes.prerequisites import Prerequisite, check_prerequisites, describe_missing

NOT_A_DEBIAN_PACKAGE = "definitely-not-a-package-xyz"
NOT_A_PYTHON_PACKAGE = "definitely-not-a-distribution-xyz"


def only(run_line: str) -> Prerequisite:
    [prerequisite] = check_prerequisites([run_line])
    return prerequisite


@pytest.mark.parametrize(
    "line",
    [
        f"apt-get install -y bash {NOT_A_DEBIAN_PACKAGE}",
        f"apt install bash {NOT_A_DEBIAN_PACKAGE}",
        "apt-get -y update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"--no-install-recommends -o Dpkg::Options::=--force-confold bash=5.* "
        f"{NOT_A_DEBIAN_PACKAGE}:amd64 > /dev/null 2>&1 && rm -rf /var/lib/apt/lists/*",
        f"apt-get update\napt-get install -y bash\napt-get install -y {NOT_A_DEBIAN_PACKAGE}",
    ],
)
def test_apt_packages_are_checked_with_dpkg(line: str) -> None:
    assert only(line) == Prerequisite(
        line=line,
        kind="apt",
        missing=[NOT_A_DEBIAN_PACKAGE],
        checked=True,
        packages=["bash", NOT_A_DEBIAN_PACKAGE],
    )


def test_all_apt_packages_are_checked_in_one_dpkg_query(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real_run: Callable[..., Any] = subprocess.run

    def counting_run(argv: list[str], **kwargs: Any) -> Any:
        calls.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(prerequisites.subprocess, "run", counting_run)
    found = check_prerequisites(
        ["apt-get install -y bash", f"apt-get install -y coreutils {NOT_A_DEBIAN_PACKAGE}"]
    )
    assert [p.missing for p in found] == [[], [NOT_A_DEBIAN_PACKAGE]]
    assert [argv[0] for argv in calls] == ["dpkg-query"]


@pytest.mark.parametrize(
    "line",
    [
        f"pip install pytest {NOT_A_PYTHON_PACKAGE}",
        f"pip3 install --no-cache-dir -U -r requirements.txt pytest>=8 {NOT_A_PYTHON_PACKAGE}==1.0",
        f"python3 -m pip install --upgrade pip 'pytest[testing]>=8' '{NOT_A_PYTHON_PACKAGE}<2'",
        f"pip install -i https://example.org/simple pytest ./local-dir https://example.org/x.whl "
        f"git+https://example.org/repo.git -e ./editable {NOT_A_PYTHON_PACKAGE}",
    ],
)
def test_pip_lines_are_built_not_looked_for_in_dockyards_environment(line: str) -> None:
    assert only(line) == Prerequisite(
        line=line,
        kind="pip",
        missing=[],
        checked=True,
        packages=["pytest", NOT_A_PYTHON_PACKAGE],
    )


@pytest.mark.parametrize(
    ("line", "commands"),
    [
        ("pip3 install --upgrade pip", [["install", "--upgrade", "pip"]]),
        (
            "python3 -m pip install -r /opt/init/requirements.txt && pip uninstall -y six",
            [["install", "-r", "/opt/init/requirements.txt"], ["uninstall", "-y", "six"]],
        ),
        (
            "apt-get install -y gcc; uv pip install numpy || true",
            [["install", "numpy"]],
        ),
        ("pip config set global.index-url https://x && pip list", []),
        ("python3 -c 'import pip' && echo pip install x", []),
    ],
)
def test_pip_commands_of_a_line_in_order(line: str, commands: list[list[str]]) -> None:
    assert prerequisites.pip_commands(line) == commands


@pytest.mark.parametrize(
    "line",
    [
        "Rscript -e \"install.packages(c('randomForest', 'notARealPackageXyz'), repos='https://x')\"",
        "R --no-save -e 'install.packages(\"randomForest\")' "
        "&& R -e \"install.packages('notARealPackageXyz')\"",
    ],
)
def test_r_packages_are_checked_with_require_namespace(line: str) -> None:
    assert only(line) == Prerequisite(
        line=line,
        kind="r",
        missing=["notARealPackageXyz"],
        checked=True,
        packages=["randomForest", "notARealPackageXyz"],
    )


@pytest.mark.parametrize(
    "line",
    [
        "ln -s /usr/bin/python3 /usr/bin/python",
        "curl -fsSL https://example.org/install.sh | sh",
        "apt-get update && rm -rf /var/lib/apt/lists/*",
        "echo 'unterminated",
    ],
)
def test_anything_else_is_listed_not_checked(line: str) -> None:
    assert only(line) == Prerequisite(line=line, kind="other", missing=[], checked=False)


def test_a_line_with_an_installer_and_other_commands_lists_both() -> None:
    line = "apt-get install -y bash && pip install pytest && ln -s /a /b"
    assert check_prerequisites([line]) == [
        Prerequisite(line=line, kind="apt", missing=[], checked=True, packages=["bash"]),
        Prerequisite(line=line, kind="pip", missing=[], checked=True, packages=["pytest"]),
        Prerequisite(line=line, kind="other", missing=[], checked=False),
    ]


def test_describe_missing_names_the_package_and_the_line() -> None:
    found = check_prerequisites(["apt-get install -y bash", "apt-get install -y r-cran-foo"])
    assert describe_missing(found) == (
        "the image's RUN line `apt-get install -y r-cran-foo` needs Debian package r-cran-foo, "
        "which is not installed on this machine: install it (apt-get install r-cran-foo) "
        "and run the job again"
    )


def test_describe_missing_for_several_kinds() -> None:
    found = check_prerequisites(
        [
            f"pip install {NOT_A_PYTHON_PACKAGE} pytest nope-xyz-2",
            f"apt-get install -y {NOT_A_DEBIAN_PACKAGE}",
            "Rscript -e \"install.packages('notARealPackageXyz')\"",
        ]
    )
    message = describe_missing(found)
    assert message is not None
    assert "\n" not in message
    assert "Python" not in message and "pip" not in message
    assert f"needs Debian package {NOT_A_DEBIAN_PACKAGE}" in message
    # No r-cran-notarealpackagexyz in apt: R's own installer is the way.
    assert (
        "needs R package notARealPackageXyz, which is not installed on this machine: install it "
        """(Rscript -e "install.packages(c('notARealPackageXyz'))") and run the job again"""
    ) in message


def test_r_packages_name_their_debian_package_where_apt_has_one() -> None:
    found = prerequisites.debian_r_packages(["randomForest", "notARealPackageXyz"])
    assert found == {"randomForest": "r-cran-randomforest"}
    missing = Prerequisite(
        line="R -e \"install.packages('randomForest')\"",
        kind="r",
        missing=["randomForest"],
        checked=True,
        packages=["randomForest"],
    )
    assert prerequisites.fix_command(missing) == "apt-get install r-cran-randomforest"


def test_nothing_missing_describes_as_none() -> None:
    found = check_prerequisites(["apt-get install -y bash", "ln -s /a /b"])
    assert describe_missing(found) is None
    assert check_prerequisites([]) == []


def test_long_run_lines_are_shortened_to_one_line() -> None:
    line = "apt-get install -y \\\n" + " ".join(["bash"] * 60) + f" {NOT_A_DEBIAN_PACKAGE}"
    message = describe_missing(check_prerequisites([line]))
    assert message is not None
    assert "\n" not in message
    assert "…` needs Debian package" in message


def test_an_image_with_a_python_layer_needs_no_debian_python_or_pip() -> None:
    apt = f"apt-get install -y python3 python3-pip python3.6-venv {NOT_A_DEBIAN_PACKAGE}"
    with_layer = check_prerequisites([apt, "pip3 install six"])
    assert with_layer[0].missing == [NOT_A_DEBIAN_PACKAGE]
    # Without a pip line nothing brings pip: python3.6-venv is looked for (and is not here).
    without = check_prerequisites([apt])
    assert "python3.6-venv" in without[0].missing
