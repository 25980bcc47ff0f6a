"""The process runtime against real bubblewrap: isolation, mounts, environment, output, signals."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.contract.errors import ImageError, SandboxError
from dockyard.runtimes.images import DEFAULT_PATH, ImageSpec, read_image
from dockyard.runtimes.netns import Network
from dockyard.runtimes.process import (
    ProcessHost,
    ProcessRuntime,
    SandboxFiles,
    bwrap_argv,
    find_program,
)
from dockyard.runtimes.sandbox_spec import SandboxSpec
from dockyard.runtimes.volumes import GIB, HostFolder, unmount_all_under
from tests.runtimes.output import Output

HOSTS = {"algo-1": "127.0.10.1", "algo-2": "127.0.10.2"}


RUNTIME = ProcessRuntime()
_OPEN: list[HostFolder | Network] = []  # closed after each test


@pytest.fixture(autouse=True)
def _close_folders_and_networks() -> Iterator[None]:
    yield
    while _OPEN:
        item = _OPEN.pop()
        item.remove() if isinstance(item, HostFolder) else item.close()


def host_folder(root: Path) -> HostFolder:
    """A host's folder with a 1 GiB volume, unmounted and removed after the test."""
    folder = RUNTIME.prepare_host(root, GIB)
    _OPEN.append(folder)
    return folder


def network(*, outside: bool = False) -> Network:
    made = RUNTIME.create_network(outside=outside)
    _OPEN.append(made)
    return made


def shell_spec(tmp_path: Path, script: str, **overrides: Any) -> SandboxSpec:
    image = overrides.pop("image", None) or ImageSpec(
        context=tmp_path, dockerfile=tmp_path / "Dockerfile"
    )
    values: dict[str, Any] = {
        "image": image,
        "argv": ["/bin/sh", "-c", script],
        "hostname": "algo-1",
        "hosts": HOSTS,
        **overrides,
    }
    if "folder" not in values:
        values["folder"] = host_folder(tmp_path / "host")
    if "network" not in values:
        values["network"] = network()
    return SandboxSpec(**values)


def run(spec: SandboxSpec, timeout: float = 30.0) -> tuple[int, Output]:
    output = Output()
    host = ProcessRuntime().start_sandbox(spec, output)
    code = host.wait(timeout)
    if code is None:
        host.kill()
        raise TimeoutError(f"sandbox still running after {timeout} s: {output.lines}")
    return code, output


def run_shell(tmp_path: Path, script: str, **overrides: Any) -> tuple[int, Output]:
    return run(shell_spec(tmp_path, script, **overrides))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            state, _, group = raw[raw.rindex(b")") + 2 :].split()[:3]
            if int(group) == pgid and state != b"Z":
                members.append(int(entry))
    return members


@pytest.fixture
def visible_dir() -> Iterator[Path]:
    """A host folder in a system folder (/usr), so the sandbox would see it unless hidden."""
    path = Path(tempfile.mkdtemp(prefix="dockyard-test-", dir="/usr/local/share"))
    path.chmod(0o755)  # readable by the sandbox's user, like the rest of /usr
    try:
        yield path
    finally:
        unmount_all_under(path)  # a host folder made inside it
        shutil.rmtree(path)


# -- the host's root -----------------------------------------------------------------------------


def test_host_root_is_read_only(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        "touch /usr/dockyard-probe || echo usr-read-only; "
        "mkdir /dockyard-probe || echo root-read-only; "
        "ls /usr/bin/env >/dev/null && echo usr-readable",
    )
    assert code == 0
    assert output.stdout == ["usr-read-only", "root-read-only", "usr-readable"]
    assert not Path("/usr/dockyard-probe").exists()
    assert not Path("/dockyard-probe").exists()


def test_private_tmp(tmp_path: Path) -> None:
    (tmp_path / "host-file").write_text("host")
    code, output = run_shell(
        tmp_path,
        f"test -e {tmp_path}/host-file || echo host-tmp-hidden; "
        "echo mine > /tmp/dockyard-sandbox-file && cat /tmp/dockyard-sandbox-file",
    )
    assert (code, output.stdout) == (0, ["host-tmp-hidden", "mine"])
    assert not Path("/tmp/dockyard-sandbox-file").exists()


def test_own_proc_dev_and_pid_namespace(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        "echo $$; ls /proc | grep -c '^[0-9]'; "
        "echo discard > /dev/null && test -c /dev/urandom && echo dev-ok",
    )
    assert code == 0
    pid, process_count, dev = output.stdout
    assert int(pid) <= 3  # the sandbox's init is 1: the program is one of the first
    assert int(process_count) <= 5
    assert dev == "dev-ok"


def test_hostname_and_etc_hosts(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        "hostname; echo $HOSTNAME; getent hosts algo-2; getent hosts algo-1; "
        "head -n 1 /etc/hosts; touch /etc/hosts || echo hosts-read-only",
    )
    assert code == 0
    assert [" ".join(line.split()) for line in output.stdout] == [
        "algo-1",
        "algo-1",
        "127.0.10.2 algo-2",
        "127.0.10.1 algo-1",
        "127.0.0.1 localhost",
        "hosts-read-only",
    ]


def test_own_hostname_resolves_without_a_hosts_entry(tmp_path: Path) -> None:
    code, output = run_shell(tmp_path, "getent hosts algo-9", hostname="algo-9", hosts={})
    assert code == 0
    assert output.stdout[0].split() == ["127.0.0.1", "algo-9"]


def test_root_home_is_private_and_on_the_volume(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        'echo "$HOME"; ls -A /root | wc -l; echo x > /root/f && cat /root/f; '
        "test -e /root/.dockyard || echo no-dockyard-state",
    )
    assert output.stdout == ["/root", "0", "x", "no-dockyard-state"]
    assert code == 0
    assert not Path("/root/f").exists()
    assert (tmp_path / "host" / "home" / "f").read_text() == "x\n"


def test_hidden_paths_cannot_be_read(tmp_path: Path, visible_dir: Path) -> None:
    home = visible_dir / "dockyard-home"
    (home / "jobs" / "job-b").mkdir(parents=True)
    (home / "state.db").write_text("secret state\n")
    (home / "jobs" / "job-b" / "model.bin").write_text("another job's model\n")
    secret_file = visible_dir / "credentials"
    secret_file.write_text("secret file\n")
    script = (
        f"cat {home}/state.db; cat {home}/jobs/job-b/model.bin; cat {secret_file}; "
        f"ls -A {home} | wc -l; echo own > /opt/ml/own && cat /opt/ml/own"
    )
    folder = host_folder(home / "jobs" / "job-a")
    opt_ml = folder.opt_ml

    # Without hiding, the sandbox sees these files: the check below means something.
    code, output = run_shell(tmp_path, script, folder=folder)
    assert output.stdout == ["secret state", "another job's model", "secret file", "2", "own"]

    code, output = run_shell(
        tmp_path,
        script,
        folder=folder,
        hidden_paths=[home, home / "jobs" / "job-b", secret_file, visible_dir / "absent"],
    )
    assert code == 0
    assert output.stdout == ["0", "own"]
    # The two folders' files are gone; the hidden file is /dev/null on a nodev mount: unreadable.
    assert [line.rsplit(": ", 1)[1] for line in output.stderr] == [
        "No such file or directory",
        "No such file or directory",
        "Permission denied",
    ]
    assert (opt_ml / "own").read_text() == "own\n"
    assert (home / "state.db").read_text() == "secret state\n"


# -- /opt/ml and binds ---------------------------------------------------------------------------


def test_opt_ml_is_the_host_folders_opt_ml_and_nothing_else_of_opt(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        "mkdir -p /opt/ml/model && echo weights > /opt/ml/model/w; ls /opt; "
        "touch /opt/new || echo opt-read-only",
    )
    assert code == 0
    assert (tmp_path / "host" / "opt_ml" / "model" / "w").read_text() == "weights\n"
    assert output.stdout == ["ml", "opt-read-only"]


def test_read_only_binds_inside_opt_ml(tmp_path: Path) -> None:
    channel = tmp_path / "staged-train"
    channel.mkdir()
    (channel / "data.csv").write_text("1,2\n")
    config = tmp_path / "hyperparameters.json"
    config.write_text("{}")
    spec = shell_spec(
        tmp_path,
        "cat /opt/ml/input/data/train/data.csv; cat /opt/ml/input/config/hyperparameters.json; "
        "echo; touch /opt/ml/input/data/train/x || echo channel-read-only; "
        "echo out > /opt/ml/output/result && echo output-writable",
        read_only_binds=[
            (channel, "/opt/ml/input/data/train"),
            (config, "/opt/ml/input/config/hyperparameters.json"),
        ],
    )
    (spec.opt_ml / "output").mkdir()
    code, output = run(spec)
    assert code == 0
    assert output.stdout == ["1,2", "{}", "channel-read-only", "output-writable"]
    assert (spec.opt_ml / "input" / "data" / "train").is_dir()  # the mount point, made for it
    assert not (channel / "x").exists()
    assert (spec.opt_ml / "output" / "result").read_text() == "out\n"


def test_binds_at_their_own_path_show_folders_inside_hidden_ones(
    tmp_path: Path, visible_dir: Path
) -> None:
    """A framework environment lives in dockyard's hidden state folder and is shown again,
    read-only, at its own path; so is a folder in /tmp (a private tmpfs in the sandbox) or
    elsewhere."""
    home = visible_dir / "dockyard-home"
    environment = home / "envs" / "python-3.11-abc"
    (environment / "bin").mkdir(parents=True)
    (environment / "bin" / "dockyard-env-tool").write_text("#!/bin/sh\necho environment tool\n")
    (environment / "bin" / "dockyard-env-tool").chmod(0o755)
    (home / "envs" / "another-env").mkdir()
    (home / "dockyard.db").write_text("secret state\n")
    layer = tmp_path / "envs" / "layer-abc"
    layer.mkdir(parents=True)
    (layer / "marker").write_text("layer\n")
    elsewhere = visible_dir / "interpreter-prefix"
    elsewhere.mkdir()
    (elsewhere / "lib.txt").write_text("prefix\n")
    image = ImageSpec(
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        env={"PATH": f"{environment / 'bin'}:{DEFAULT_PATH}"},
    )
    spec = shell_spec(
        tmp_path,
        f"dockyard-env-tool; ls {home}; ls {home / 'envs'}; cat {home}/dockyard.db; "
        f"cat {layer}/marker {elsewhere}/lib.txt; "
        f"touch {environment}/x || echo environment-read-only; "
        f"touch {layer}/x || echo layer-read-only",
        image=image,
        hidden_paths=[home],
        read_only_binds=[(p, str(p)) for p in (environment, layer, elsewhere)],
    )
    assert find_program(dataclasses.replace(spec, argv=["dockyard-env-tool"])) == str(
        environment / "bin" / "dockyard-env-tool"
    )
    code, output = run(spec)
    assert output.stdout == [
        "environment tool",
        "envs",
        "python-3.11-abc",  # not another-env, not dockyard.db
        "layer",
        "prefix",
        "environment-read-only",
        "layer-read-only",
    ]
    assert output.stderr[0].endswith("No such file or directory")  # dockyard.db stays hidden
    assert code == 0
    assert not (environment / "x").exists() and not (layer / "x").exists()


def test_two_sandboxes_at_once_do_not_interfere(tmp_path: Path) -> None:
    script = (
        "echo $MARK > /opt/ml/mark; echo $MARK > /tmp/mark; echo ready; "
        "i=0; while [ ! -e /opt/ml/go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; "
        "cat /opt/ml/mark /tmp/mark; ls /opt/ml"
    )
    hosts: list[tuple[ProcessHost, Output, Path]] = []
    for mark in ("first", "second"):
        folder = tmp_path / mark
        folder.mkdir()
        output = Output()
        spec = shell_spec(folder, script, env={"MARK": mark})
        hosts.append((ProcessRuntime().start_sandbox(spec, output), output, spec.opt_ml))
    for _, output, _ in hosts:
        output.wait_for("ready")  # both are running now
    for _, _, opt_ml in hosts:
        (opt_ml / "go").touch()
    for (host, output, _), mark in zip(hosts, ("first", "second"), strict=True):
        assert host.wait(30) == 0
        assert output.stdout == ["ready", mark, mark, "go", "mark"]


# -- image content -------------------------------------------------------------------------------


def test_copies_are_placed_read_only(tmp_path: Path) -> None:
    image = tmp_path / "image"
    (image / "program").mkdir(parents=True)
    (image / "program" / "train").write_text("#!/bin/sh\necho training in $PWD\n")
    (image / "program" / "train").chmod(0o755)
    (image / "tool").write_text("#!/bin/sh\necho tool ran\n")
    (image / "tool").chmod(0o755)
    (image / "app.txt").write_text("app\n")
    (image / "Dockerfile").write_text(
        "FROM debian\n"
        "COPY program /opt/program\n"
        "COPY app.txt /app/\n"
        "COPY tool /usr/local/bin/dockyard-test-tool\n"
        "ENV PATH=/opt/program:$PATH\n"
        "WORKDIR /opt/program\n"
    )
    spec = shell_spec(
        tmp_path,
        "train; cat /app/app.txt; dockyard-test-tool; ls /usr/local/bin; "
        "echo x > /opt/program/train || echo copy-read-only; "
        "touch /usr/local/bin/other || echo bin-read-only",
        image=read_image(str(image)),
    )
    host_bin_before = sorted(os.listdir("/usr/local/bin"))
    code, output = run(spec)
    assert code == 0, output.lines
    assert output.stdout == [
        "training in /opt/program",
        "app",
        "tool ran",
        *sorted([*host_bin_before, "dockyard-test-tool"]),
        "copy-read-only",
        "bin-read-only",
    ]
    assert sorted(os.listdir("/usr/local/bin")) == host_bin_before  # nothing written to the host
    assert (image / "program" / "train").read_text().startswith("#!/bin/sh")


def test_copies_below_opt_ml_survive_the_job_folder(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    (image / "train.py").write_text("print('hi')\n")
    (image / "Dockerfile").write_text("FROM debian\nWORKDIR /opt/ml/code\nCOPY train.py .\n")
    code, output = run_shell(tmp_path, "pwd; cat train.py", image=read_image(str(image)))
    assert (code, output.stdout) == (0, ["/opt/ml/code", "print('hi')"])


def test_missing_workdir_is_created_in_the_sandbox(tmp_path: Path) -> None:
    image = ImageSpec(
        context=tmp_path, dockerfile=tmp_path / "Dockerfile", workdir="/srv/dockyard-wd/deep"
    )
    code, output = run_shell(tmp_path, "pwd", image=image)
    assert (code, output.stdout) == (0, ["/srv/dockyard-wd/deep"])
    assert not Path("/srv/dockyard-wd").exists()


def test_environment_is_clean_defaults_then_image_then_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_ONLY_VARIABLE", "leak")
    image = ImageSpec(
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        env={"PATH": f"/opt/program:{DEFAULT_PATH}", "FROM_IMAGE": "image", "OVERRIDDEN": "image"},
    )
    code, output = run_shell(
        tmp_path,
        "env | sort",
        image=image,
        env={"TRAINING_JOB_NAME": "job", "OVERRIDDEN": "platform"},
    )
    assert code == 0
    assert output.stdout == [
        "FROM_IMAGE=image",
        "HOME=/root",
        "HOSTNAME=algo-1",
        "LANG=C.UTF-8",
        "OVERRIDDEN=platform",
        f"PATH=/opt/program:{DEFAULT_PATH}",
        "PWD=/",
        "TRAINING_JOB_NAME=job",
    ]


def test_every_sandbox_has_its_own_network(tmp_path: Path) -> None:
    script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort"
    code, output = run_shell(tmp_path, script)
    assert (code, output.stdout) == (0, ["lo"])
    code, output = run_shell(tmp_path / "outside", script, network=network(outside=True))
    assert (code, output.stdout) == (0, ["lo", "tap0"])  # slirp4netns's interface


# -- output --------------------------------------------------------------------------------------


def test_output_lines_streams_decoding_and_stdin(tmp_path: Path) -> None:
    code, output = run_shell(
        tmp_path,
        "printf 'a\\nb\\n'; printf 'err\\n' >&2; printf '\\377caf\\303\\251\\n'; "
        "if read line; then echo got-input; else echo stdin-empty; fi; "
        "printf 'partial'; exit 3",
    )
    assert code == 3
    assert output.stdout == ["a", "b", "\ufffdcafé", "stdin-empty", "partial"]
    assert output.stderr == ["err"]


def test_a_failing_sink_does_not_block_the_program(tmp_path: Path) -> None:
    seen: list[str] = []

    def sink(stream: str, line: str) -> None:
        seen.append(line)
        raise RuntimeError("sink broke")

    spec = shell_spec(tmp_path, "seq 1 20000")
    host = ProcessRuntime().start_sandbox(spec, sink)
    assert host.wait(30) == 0
    assert len(seen) == 20000


# -- signals -------------------------------------------------------------------------------------


def test_sigterm_reaches_the_program_for_a_graceful_stop(tmp_path: Path) -> None:
    output = Output()
    spec = shell_spec(
        tmp_path,
        "trap 'echo saved > /opt/ml/stopped; exit 7' TERM; echo ready; "
        "while :; do sleep 0.05; done",
    )
    host = ProcessRuntime().start_sandbox(spec, output)
    output.wait_for("ready")
    host.signal(signal.SIGTERM)
    assert host.wait(30) == 7
    assert host.returncode == 7
    assert (spec.opt_ml / "stopped").read_text() == "saved\n"


def test_kill_ends_a_program_that_ignores_sigterm(tmp_path: Path) -> None:
    output = Output()
    spec = shell_spec(tmp_path, "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    host = ProcessRuntime().start_sandbox(spec, output)
    output.wait_for("ready")
    host.signal(signal.SIGTERM)
    assert host.wait(0.5) is None  # still running: SIGTERM is ignored
    assert host.returncode is None
    host.kill()
    assert host.wait(30) == 128 + signal.SIGKILL
    wait_until(lambda: group_members(host.pid) == [])


def test_program_killed_by_a_signal_exits_128_plus_n(tmp_path: Path) -> None:
    code, _ = run_shell(tmp_path, "kill -INT $$")
    assert code == 128 + signal.SIGINT


def test_a_program_starts_with_default_signals_whatever_the_server_ignores(
    tmp_path: Path,
) -> None:
    # As a server started in the background (`dockyard server &` ignores SIGINT) would spawn it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code, _ = run_shell(tmp_path, "kill -INT $$")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 128 + signal.SIGINT


def test_sandbox_dies_with_its_parent(tmp_path: Path) -> None:
    parent_code = textwrap.dedent(
        f"""
        import sys, threading
        from pathlib import Path
        from dockyard.runtimes.sandbox_spec import SandboxSpec
        from dockyard.runtimes.images import ImageSpec
        from dockyard.runtimes.process import ProcessRuntime
        ready = threading.Event()
        runtime = ProcessRuntime()
        spec = SandboxSpec(
            image=ImageSpec(context=Path("/"), dockerfile=Path("/Dockerfile")),
            argv=["/bin/sh", "-c", "echo ready; exec sleep 300"],
            hostname="algo-1",
            folder=runtime.prepare_host(Path({str(tmp_path / "host")!r}), 2**30),
            network=runtime.create_network(outside=False),
        )
        host = runtime.start_sandbox(spec, lambda stream, line: ready.set())
        ready.wait(30)
        print(host.pid, flush=True)
        sys.stdin.read()
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    assert parent.stdout is not None
    sandbox_pgid = int(parent.stdout.readline())
    assert len(group_members(sandbox_pgid)) >= 3  # bwrap, its init, sleep
    parent.kill()
    parent.wait(30)
    wait_until(lambda: group_members(sandbox_pgid) == [])
    HostFolder(tmp_path / "host", tmp_path / "host.volume", GIB, 0).remove()  # left mounted
    if parent.stdin:
        parent.stdin.close()
    parent.stdout.close()


def test_a_sandbox_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    # bwrap's --die-with-parent uses PR_SET_PDEATHSIG, which Linux ties to the parent *thread*:
    # a sandbox started from a worker thread must not die when that thread ends.
    output = Output()
    spec = shell_spec(
        tmp_path,
        "echo ready; i=0; while [ ! -e /opt/ml/go ] && [ $i -lt 3000 ]; do sleep 0.01; "
        "i=$((i+1)); done; test -e /opt/ml/go && echo went",
    )
    started: list[ProcessHost] = []
    starter = threading.Thread(
        target=lambda: started.append(ProcessRuntime().start_sandbox(spec, output))
    )
    starter.start()
    starter.join()
    output.wait_for("ready")
    (spec.opt_ml / "go").touch()
    assert started[0].wait(30) == 0
    assert output.stdout == ["ready", "went"]


# -- errors and the command line -----------------------------------------------------------------


def test_missing_bwrap(tmp_path: Path) -> None:
    runtime = ProcessRuntime(bwrap="dockyard-no-such-bwrap")
    with pytest.raises(SandboxError, match=r"^bubblewrap \(bwrap\) is not installed"):
        runtime.start_sandbox(shell_spec(tmp_path, "true"), Output())


def test_missing_folders_are_refused_before_start(tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "true", read_only_binds=[(tmp_path / "nope", "/opt/ml/input")])
    with pytest.raises(SandboxError, match=r"nope at /opt/ml/input: it does not exist"):
        ProcessRuntime().start_sandbox(spec, Output())
    spec = shell_spec(tmp_path, "true")
    spec.folder.opt_ml.rmdir()
    with pytest.raises(SandboxError, match=r"host/opt_ml for /opt/ml does not exist"):
        ProcessRuntime().start_sandbox(spec, Output())


def test_a_program_missing_from_the_sandbox_is_an_image_error(tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "true")
    for argv, message in [
        (["train"], r"^the program train is not in the image: nothing at any folder of its PATH"),
        (["/opt/program/train"], r"nothing at /opt/program/train"),
        (["./train"], r"the program ./train is not in the image"),
    ]:
        with pytest.raises(ImageError, match=message):
            ProcessRuntime().start_sandbox(dataclasses.replace(spec, argv=argv), Output())


def test_find_program_searches_the_sandboxs_path(tmp_path: Path) -> None:
    image = tmp_path / "image"
    (image / "program").mkdir(parents=True)
    (image / "program" / "train").write_text("#!/bin/sh\n")
    (image / "Dockerfile").write_text(
        "FROM debian\nCOPY program /opt/program\nENV PATH=/opt/program:$PATH\nWORKDIR /opt\n"
    )
    spec = shell_spec(tmp_path, "true", image=read_image(str(image)))
    assert find_program(dataclasses.replace(spec, argv=["train"])) == "/opt/program/train"
    assert find_program(dataclasses.replace(spec, argv=["program/train"])) == "/opt/program/train"
    assert find_program(dataclasses.replace(spec, argv=["sh"])) == shutil.which(
        "sh", path=DEFAULT_PATH
    )
    assert find_program(dataclasses.replace(spec, argv=["no-such-program"])) is None


def test_bad_host_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="not a host name"):
        ProcessRuntime().start_sandbox(
            shell_spec(tmp_path, "true", hosts={"algo 1": "x"}), Output()
        )


def test_bwrap_argv_is_inspectable_and_writes_nothing(tmp_path: Path) -> None:
    channel = tmp_path / "channel"
    channel.mkdir()
    spec = shell_spec(tmp_path, "true", read_only_binds=[(channel, "/opt/ml/input/data/train")])
    files = SandboxFiles(hosts=9, passwd=10, group=11, resolv_conf=12, seccomp=13)
    argv = bwrap_argv(spec, files, bwrap="/usr/bin/bwrap")
    uid = str(spec.folder.uid)
    # Outer stage (root): namespaces and file tree; then setpriv; then the inner stage.
    outer_end = argv.index("setpriv") - 1
    outer, rest = argv[:outer_end], argv[outer_end + 1 :]
    assert outer[0] == "/usr/bin/bwrap" and argv[outer_end] == "--"
    for flag in ("--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"):
        assert flag in outer
    assert outer[outer.index("--hostname") + 1] == "algo-1"
    assert outer[outer.index("--cap-drop") : outer.index("--cap-drop") + 6] == [
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
    ]  # fmt: skip
    assert rest[:5] == ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    inner = rest[5:]
    assert inner[:6] == ["/usr/bin/bwrap", "--unshare-user", "--uid", uid, "--gid", uid]
    assert inner[inner.index("--seccomp") + 1] == "13"
    assert inner[inner.index("--cap-drop") + 1] == "ALL"
    assert inner[inner.index("--chdir") + 1] == "/"
    assert inner[-4:] == ["--", "/bin/sh", "-c", "true"]
    assert "--new-session" not in argv and "--unshare-net" not in argv  # nsenter joins it

    def position(*words: str) -> int:
        return next(i for i in range(len(outer)) if outer[i : i + len(words)] == list(words))

    opt_ml_bind = position("--bind", str(spec.opt_ml), "/opt/ml")
    assert position("--dir", "/opt") < opt_ml_bind
    assert opt_ml_bind < position("--ro-bind", str(channel), "/opt/ml/input/data/train")
    assert position("--ro-bind-data", "9", "/etc/hosts") > position("--ro-bind", "/etc", "/etc")
    assert position("--ro-bind-data", "10", "/etc/passwd") > position("--ro-bind", "/etc", "/etc")
    assert position("--bind", str(spec.folder.tmp), "/tmp") > 0
    assert position("--bind", str(spec.folder.home), "/root") > 0
    for host_only in ("/home", "/var/lib", "/srv", "/mnt", "/media", "/work"):
        assert host_only not in outer
    assert outer[-3:] == ["--remount-ro", "/", "--chdir"] or "--remount-ro" in outer
    assert list(spec.opt_ml.iterdir()) == []  # planning the mounts created nothing


def test_without_root_the_runtime_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making uids, cgroups, volumes and networks takes root: refused before anything is made."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    runtime = ProcessRuntime()
    for attempt in (
        lambda: runtime.prepare_host(tmp_path / "host", GIB),
        lambda: runtime.create_network(outside=False),
    ):
        with pytest.raises(SandboxError, match=r"run the dockyard server as root"):
            attempt()
    assert not (tmp_path / "host").exists()


def test_a_folder_named_through_a_link_is_also_shown_at_its_real_path(tmp_path: Path) -> None:
    """An environment built at its real path, reached through a linked folder (a linked
    DOCKYARD_HOME): its scripts' #! lines name the real path, which must exist inside."""
    real = tmp_path / "real-envs" / "env"
    (real / "bin").mkdir(parents=True)
    (real / "bin" / "tool").write_text(f"#!{real}/bin/interpreter\n")
    (real / "bin" / "tool").chmod(0o755)
    (real / "bin" / "interpreter").write_text("#!/bin/sh\necho interpreted\n")
    (real / "bin" / "interpreter").chmod(0o755)
    (tmp_path / "linked-envs").symlink_to(tmp_path / "real-envs")
    linked = tmp_path / "linked-envs" / "env"
    code, output = run_shell(
        tmp_path, f"{linked}/bin/tool", read_only_binds=[(linked, str(linked))]
    )
    assert (code, output.stdout) == (0, ["interpreted"])
