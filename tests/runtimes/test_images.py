"""Reading Dockerfiles into ImageSpecs: instructions, substitution, COPY placement, argv rules."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest

from dockyard.contract.errors import ImageError
from dockyard.runtimes.images import DEFAULT_PATH, CopyInstruction, ImageSpec, read_image


def make_image(folder: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def read(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> ImageSpec:
    return read_image(str(make_image(tmp_path / "image", dockerfile, files)))


def copies(spec: ImageSpec) -> list[tuple[str, str]]:
    return [(str(c.source.relative_to(spec.context)), c.destination) for c in spec.copies]


# -- finding the image ----------------------------------------------------------------------------


def test_missing_folder_names_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageError, match=r"^image folder examples/x does not exist$"):
        read_image("examples/x")


def test_folder_without_dockerfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples" / "r").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageError, match=r"^image folder examples/r has no Dockerfile$"):
        read_image("examples/r")


def test_file_uri_and_relative_path_give_absolute_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_image(tmp_path / "img", 'FROM debian\nCMD ["true"]\n')
    assert read_image(f"file://{folder}").context == folder.resolve()
    monkeypatch.chdir(tmp_path)
    spec = read_image("img")
    assert spec.context == folder.resolve()
    assert spec.dockerfile == folder.resolve() / "Dockerfile"


def test_unreadable_dockerfile(tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    (folder / "Dockerfile").write_bytes(b"FROM debian\nENV A=\xff\xfe\n")
    with pytest.raises(ImageError, match=r"cannot read .*Dockerfile"):
        read_image(str(folder))


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM debian\nFROBNICATE x\n", r"line 2: unknown instruction FROBNICATE"),
        ("ENV A=1\nFROM debian\n", r"line 1: ENV comes before FROM"),
        ("# only a comment\n", r"has no FROM instruction"),
        ("FROM debian\nENV A\n", r"line 2: ENV A has no value"),
        ("FROM debian\nENV A='unterminated\n", r"line 2: unterminated ' quote"),
        ("FROM debian\nENV A=${B:?B is required}\n", r"line 2: B is not set: B is required"),
        ("FROM debian\nCOPY onlyone\n", r"needs at least one source and a destination"),
    ],
)
def test_unreadable_instructions_name_the_line(
    tmp_path: Path, dockerfile: str, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        read(tmp_path, dockerfile)


# -- lines ----------------------------------------------------------------------------------------


def test_comments_continuations_and_blank_lines(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "# syntax=docker/dockerfile:1\n"
        "\n"
        "FROM debian:bookworm\n"
        "# a comment\n"
        "RUN apt-get update && \\\n"
        "    # a comment inside the continuation is dropped\n"
        "\n"
        "    apt-get install -y bash   \\  \n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "env  GREETING=hi\n",
    )
    assert spec.run_lines == [
        "apt-get update &&     apt-get install -y bash       && rm -rf /var/lib/apt/lists/*"
    ]
    assert spec.env == {"GREETING": "hi"}


def test_backtick_escape_directive(tmp_path: Path) -> None:
    spec = read(tmp_path, "# escape=`\nFROM debian\nRUN echo a `\n    b\nENV P=C:\\dir\n")
    assert spec.run_lines == ["echo a     b"]
    assert spec.env == {"P": "C:\\dir"}


def test_run_forms(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian\n"
        'RUN ["pip", "install", "two words"]\n'
        "RUN --mount=type=cache,target=/root/.cache --network=none pip install flask\n"
        "RUN <<EOF\napt-get install -y bash\necho done\nEOF\n"
        "ENV AFTER=heredoc\n",
    )
    assert spec.run_lines == [
        "pip install 'two words'",
        "pip install flask",
        "apt-get install -y bash\necho done",
    ]
    assert spec.env == {"AFTER": "heredoc"}


# -- ENV, ARG and substitution -------------------------------------------------------------------


def test_env_forms_and_order(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian\n"
        "ENV B=2 A=\"v 2\" C='single $B' D=escaped\\ space\n"
        "ENV LEGACY hello   world\n"
        "ENV E=${B}x F=$B G=${MISSING:-fallback} H=${B:+set} I=${MISSING:+set}\n",
    )
    assert list(spec.env) == ["B", "A", "C", "D", "LEGACY", "E", "F", "G", "H", "I"]
    assert spec.env == {
        "B": "2",
        "A": "v 2",
        "C": "single $B",
        "D": "escaped space",
        "LEGACY": "hello   world",
        "E": "2x",
        "F": "2",
        "G": "fallback",
        "H": "set",
        "I": "",
    }


def test_env_in_one_instruction_sees_values_from_before_it(tmp_path: Path) -> None:
    spec = read(tmp_path, "FROM debian\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    assert spec.env == {"abc": "bye", "def": "hello", "ghi": "bye"}


def test_path_expands_against_the_default_path(tmp_path: Path) -> None:
    spec = read(tmp_path, 'FROM debian\nENV PATH="/opt/program:${PATH}"\n')
    assert spec.env == {"PATH": f"/opt/program:{DEFAULT_PATH}"}


def test_arg_defaults_scope_and_env_precedence(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "ARG VERSION=3.11\n"
        "ARG UNUSED=x\n"
        "FROM python:${VERSION}\n"
        "ARG VERSION\n"
        "ARG USER_NAME=trainer\n"
        "ENV PY=$VERSION U=${UNUSED:-not-redeclared} WHO=$USER_NAME\n"
        "ARG WHO=from-arg\n"
        "ENV WHO2=$WHO\n"
        "WORKDIR /home/$USER_NAME\n"
        "USER ${USER_NAME}\n"
        'LABEL version=$VERSION "com.example.name"="my image"\n',
    )
    assert spec.env == {"PY": "3.11", "U": "not-redeclared", "WHO": "trainer", "WHO2": "trainer"}
    assert spec.workdir == "/home/trainer"
    assert spec.user == "trainer"
    assert spec.labels == {"version": "3.11", "com.example.name": "my image"}


def test_workdir_default_and_relative(tmp_path: Path) -> None:
    assert read(tmp_path / "a", "FROM debian\n").workdir == "/"
    spec = read(tmp_path / "b", "FROM debian\nWORKDIR /opt\nWORKDIR program\nWORKDIR ../x/./y\n")
    assert spec.workdir == "/opt/x/y"


# -- ENTRYPOINT, CMD, SHELL ----------------------------------------------------------------------


def test_exec_and_shell_forms(tmp_path: Path) -> None:
    spec = read(tmp_path, 'FROM debian\nENTRYPOINT ["python3", "-u"]\nCMD echo $HOME && ls\n')
    assert spec.entrypoint == ["python3", "-u"]
    assert spec.cmd == ["/bin/sh", "-c", "echo $HOME && ls"]


def test_shell_instruction_changes_shell_form(tmp_path: Path) -> None:
    spec = read(tmp_path, 'FROM debian\nSHELL ["/bin/bash", "-lc"]\nENTRYPOINT exec train\n')
    assert spec.entrypoint == ["/bin/bash", "-lc", "exec train"]


def test_invalid_json_falls_back_to_shell_form(tmp_path: Path) -> None:
    spec = read(tmp_path, "FROM debian\nCMD [not json]\n")
    assert spec.cmd == ["/bin/sh", "-c", "[not json]"]


def test_entrypoint_clears_an_inherited_cmd_but_not_its_own_stage_cmd(tmp_path: Path) -> None:
    inherited = read(
        tmp_path / "a", 'FROM debian AS base\nCMD ["serve"]\nFROM base\nENTRYPOINT ["run"]\n'
    )
    assert inherited.entrypoint == ["run"]
    assert inherited.cmd is None
    same_stage = read(tmp_path / "b", 'FROM debian\nCMD ["serve"]\nENTRYPOINT ["run"]\n')
    assert same_stage.cmd == ["serve"]


# -- stages ---------------------------------------------------------------------------------------


def test_only_the_last_stage_counts(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian AS builder\nENV BUILD=1\nRUN make\nCOPY a.txt /a\n"
        'FROM debian\nENV FINAL=1\nCMD ["final"]\n',
        {"a.txt": "a"},
    )
    assert spec.env == {"FINAL": "1"}
    assert spec.run_lines == []
    assert spec.copies == []
    assert spec.cmd == ["final"]


def test_a_stage_built_on_an_earlier_stage_inherits_it(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian AS Base\nENV A=1\nWORKDIR /app\nCOPY a.txt ./\nFROM base\nENV B=$A\n",
        {"a.txt": "a"},
    )
    assert spec.env == {"A": "1", "B": "1"}
    assert spec.workdir == "/app"
    assert copies(spec) == [("a.txt", "/app/a.txt")]


def test_copy_from_another_stage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"line 3: .*multi-stage copies are not supported"):
        read(tmp_path, "FROM debian AS b\nFROM debian\nCOPY --from=b /out /app\n")


# -- COPY and ADD ---------------------------------------------------------------------------------


def test_copy_destinations_follow_docker_rules(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian\n"
        "COPY program /opt/program\n"
        "COPY a.txt /etc/renamed.conf\n"
        "COPY a.txt /into/\n"
        "COPY a.txt b.txt /many\n"
        "WORKDIR /app\n"
        "COPY a.txt .\n"
        "COPY b.txt sub/\n"
        "COPY b.txt relative-file\n"
        'COPY ["with space.txt", "/spaced dir/"]\n'
        "COPY --chown=1000:1000 --chmod=755 a.txt /chowned\n",
        {
            "program/train": "x",
            "program/lib/util.py": "y",
            "a.txt": "a",
            "b.txt": "b",
            "with space.txt": "s",
        },
    )
    assert copies(spec) == [
        ("program", "/opt/program"),
        ("a.txt", "/etc/renamed.conf"),
        ("a.txt", "/into/a.txt"),
        ("a.txt", "/many/a.txt"),
        ("b.txt", "/many/b.txt"),
        ("a.txt", "/app/a.txt"),
        ("b.txt", "/app/sub/b.txt"),
        ("b.txt", "/app/relative-file"),
        ("with space.txt", "/spaced dir/with space.txt"),
        ("a.txt", "/chowned"),
    ]
    assert all(c.source.is_absolute() for c in spec.copies)


def test_copy_into_an_existing_folder_of_the_host_or_an_earlier_copy(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian\nCOPY tool /usr/local/bin\n"
        "COPY program /opt/program\nCOPY b.txt /opt/program\n",
        {"tool": "t", "program/train": "x", "b.txt": "b"},
    )
    assert copies(spec) == [
        ("tool", "/usr/local/bin/tool"),
        ("program", "/opt/program"),
        ("b.txt", "/opt/program/b.txt"),
    ]


def test_copy_globs_and_variables(tmp_path: Path) -> None:
    spec = read(
        tmp_path,
        "FROM debian\nARG DEST=/conf\nCOPY *.txt ${DEST}/\nCOPY .hidden* $DEST/\nCOPY . /all\n",
        {"b.txt": "b", "a.txt": "a", ".hidden": "h", "c.py": "c"},
    )
    assert copies(spec) == [
        ("a.txt", "/conf/a.txt"),
        ("b.txt", "/conf/b.txt"),
        (".hidden", "/conf/.hidden"),
        (".", "/all"),
    ]


@pytest.mark.parametrize("source", ["missing.txt", "*.nothing"])
def test_copy_of_a_missing_source(tmp_path: Path, source: str) -> None:
    message = rf"line 2: COPY source {re.escape(source)} is not in the image folder"
    with pytest.raises(ImageError, match=message):
        read(tmp_path, f"FROM debian\nCOPY {source} /x\n")


def test_copy_source_escaping_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s")
    with pytest.raises(ImageError, match="outside the image folder"):
        read(tmp_path, "FROM debian\nCOPY ../secret.txt /x\n")
    folder = make_image(tmp_path / "linked", "FROM debian\nCOPY link /x\n")
    (folder / "link").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ImageError, match="COPY source link is outside the image folder"):
        read_image(str(folder))


def test_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    folder = make_image(tmp_path / "img", "FROM debian\nCOPY link /etc/x\n", {"real.txt": "r"})
    (folder / "link").symlink_to("real.txt")
    assert read_image(str(folder)).copies == [
        CopyInstruction(source=folder.resolve() / "real.txt", destination="/etc/x")
    ]


def test_add_of_a_local_file_is_a_copy(tmp_path: Path) -> None:
    spec = read(tmp_path, "FROM debian\nADD a.txt /a.txt\n", {"a.txt": "a"})
    assert copies(spec) == [("a.txt", "/a.txt")]


def test_add_of_an_archive_or_url_is_refused(tmp_path: Path) -> None:
    folder = make_image(tmp_path / "img", "FROM debian\nADD model.tar.gz /opt/\n")
    with tarfile.open(folder / "model.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("weights.bin")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(ImageError, match=r"ADD of an archive .* extract it in the image folder"):
        read_image(str(folder))
    with pytest.raises(ImageError, match=r"ADD of a URL .* is not supported"):
        read(tmp_path / "url", "FROM debian\nADD https://example.com/x.py /x.py\n")


def test_copy_with_a_heredoc_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="here-document is not supported"):
        read(tmp_path, "FROM debian\nCOPY <<EOF /etc/x\nhello\nEOF\n")


def test_unsupported_copy_flags(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="--parents is not supported"):
        read(tmp_path, "FROM debian\nCOPY --parents a.txt /x/\n", {"a.txt": "a"})


# -- digest ---------------------------------------------------------------------------------------


def test_digest_changes_with_the_dockerfile_and_the_copied_files(tmp_path: Path) -> None:
    folder = make_image(
        tmp_path / "img",
        "FROM debian\nCOPY program /opt/program\n",
        {"program/train": "x", "unrelated.txt": "u"},
    )
    first = read_image(str(folder)).digest
    assert len(first) == 64
    assert read_image(str(folder)).digest == first

    (folder / "unrelated.txt").write_text("not copied, not counted")
    assert read_image(str(folder)).digest == first

    (folder / "program" / "train").write_text("longer content")
    second = read_image(str(folder)).digest
    assert second != first

    stat = (folder / "program" / "train").stat()
    os.utime(folder / "program" / "train", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    third = read_image(str(folder)).digest
    assert third != second

    (folder / "Dockerfile").write_text("FROM debian\nCOPY program /opt/program/\n")
    assert read_image(str(folder)).digest != third


# -- argv -----------------------------------------------------------------------------------------


TRAIN = {"default_argument": "train"}


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "kwargs", "expected"),
    [
        # SageMaker's `docker run image train`: the argument replaces CMD.
        (None, ["serve"], TRAIN, ["train"]),
        (["python3", "run.py"], ["--x"], TRAIN, ["python3", "run.py", "train"]),
        # ContainerEntrypoint alone: no `train`, and the image's CMD is dropped.
        (["python3"], ["--x"], {**TRAIN, "entrypoint": ["/bin/run"]}, ["/bin/run"]),
        # ContainerArguments alone replace CMD (and `train`).
        (["python3"], ["--x"], {**TRAIN, "arguments": ["a", "b"]}, ["python3", "a", "b"]),
        # Both.
        (["python3"], ["--x"], {"entrypoint": ["/e"], "arguments": ["a"]}, ["/e", "a"]),
        # Plain docker run.
        (["python3"], ["--x"], {}, ["python3", "--x"]),
        (None, ["/bin/sh", "-c", "echo"], {}, ["/bin/sh", "-c", "echo"]),
        (["python3"], None, {}, ["python3"]),
    ],
)
def test_argv_rules(
    tmp_path: Path,
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    kwargs: dict[str, object],
    expected: list[str],
) -> None:
    spec = ImageSpec(
        context=tmp_path, dockerfile=tmp_path / "Dockerfile", entrypoint=entrypoint, cmd=cmd
    )
    assert spec.argv(**kwargs) == expected  # type: ignore[arg-type]


def test_argv_with_nothing_to_run(tmp_path: Path) -> None:
    spec = ImageSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    with pytest.raises(
        ImageError, match=r"^image has no ENTRYPOINT or CMD and no command was given"
    ):
        spec.argv(default_argument=None)
