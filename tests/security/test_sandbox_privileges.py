"""What a job's program may do to the host (issue 8's review, part 2): each test is a finding that
held before the sandbox was rebuilt. The program runs through the real API in a real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pyseccomp

from tests.conftest import RunningServer, make_image, training_request, wait_for_job
from tests.security.sandbox_jobs import job_log, run_script_job

REPO = Path(__file__).resolve().parents[2]


def test_a_job_is_an_unprivileged_user_and_cannot_read_the_shadow_file(
    server: RunningServer, tmp_path: Path
) -> None:
    # Found: `id; head -2 /etc/shadow` ran as uid=0(root) and the log held the shadow lines.
    described, lines = run_script_job(
        server,
        tmp_path,
        "who-am-i",
        "id -u; id -g; id -G; head -2 /etc/shadow; echo read=$?",
        as_entrypoint=True,
    )
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    uid, gid, groups = (int(line) for line in lines[:3])
    assert uid == gid == groups >= server.settings.sandbox_uid_base
    shadow = Path("/etc/shadow").read_text().splitlines()[:2]
    assert shadow and not set(shadow) & set(lines)
    assert lines[3:] == ["head: cannot open '/etc/shadow' for reading: Permission denied", "read=1"]


def test_on_the_host_the_jobs_processes_are_its_own_uid_with_no_capabilities(
    server: RunningServer, tmp_path: Path
) -> None:
    marker = "1234.5678"  # an argument only this job's process has
    request = training_request("seen-from-host", make_image(tmp_path / "i", "", language="sh"))
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sleep", marker]
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**request)
    deadline = time.monotonic() + 60
    while not (found := _processes_with_argument(marker)):
        assert time.monotonic() < deadline, "the job's process never appeared"
        time.sleep(0.05)
    for status in found:
        uids = status["Uid"].split()
        assert len(set(uids)) == 1 and int(uids[0]) >= server.settings.sandbox_uid_base
        assert status["Gid"].split() == uids
        for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[capabilities], 16) == 0, capabilities
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    sagemaker.stop_training_job(TrainingJobName="seen-from-host")


def _processes_with_argument(argument: str) -> list[dict[str, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            # The program itself, not the launchers whose command lines carry its argv.
            if argv[:2] != [b"/bin/sleep", argument.encode()]:
                continue
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        found.append(dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line))
    return found


def test_kernel_settings_and_sys_cannot_be_written(server: RunningServer, tmp_path: Path) -> None:
    # Found: a job wrote kernel.printk_ratelimit_burst and the host saw the new value;
    # kernel.core_pattern passed the write check too (a full host escape).
    burst = Path("/proc/sys/kernel/printk_ratelimit_burst")
    pattern = Path("/proc/sys/kernel/core_pattern")
    before = burst.read_text(), pattern.read_text()
    script = (
        "exec 2>/dev/null; "
        "echo 77 > /proc/sys/kernel/printk_ratelimit_burst; echo burst=$?; "
        "echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern; echo pattern=$?; "
        "test -w /proc/sys/kernel/core_pattern && echo core-pattern-writable; "
        "echo 1 > /sys/kernel/mm/transparent_hugepage/khugepaged/defrag; echo sys=$?; "
        "cut -d' ' -f5,6 /proc/self/mountinfo | grep -E '^/proc/sys |^/sys '"
    )
    described, lines = run_script_job(server, tmp_path, "sysctl", script)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines[:3] == ["burst=2", "pattern=2", "sys=2"]
    mounts = dict(line.split() for line in lines[3:])
    assert mounts["/proc/sys"].startswith("ro,") and mounts["/sys"].startswith("ro,")
    assert (burst.read_text(), pattern.read_text()) == before


def test_the_hosts_own_file_tree_is_not_there(server: RunningServer, tmp_path: Path) -> None:
    # Found: /home, /work, /srv, /mnt, /var and the rest were bound in; /etc/shadow readable.
    private = [
        "/home", "/srv", "/mnt", "/media", "/var/lib", "/var/log", "/boot", "/run",
        str(REPO), str(Path.home() / ".ssh"), str(server.settings.home),
    ]  # fmt: skip
    script = " ".join(f"test -e {path} && echo visible:{path};" for path in private)
    script += " ls -A /root | wc -l; ls /opt; ls /var; ls -A /etc/ssh | wc -l; "
    script += "cat /etc/shadow > /dev/null 2>&1 || echo shadow-unreadable"
    described, lines = run_script_job(server, tmp_path, "tree", script)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines == ["0", "ml", "program", "tmp", "0", "shadow-unreadable"]  # program: the image's
    assert Path("/etc/ssh").is_dir() and Path("/home").exists()  # the host has them


def test_a_job_has_its_own_namespaces(server: RunningServer, tmp_path: Path) -> None:
    kinds = ("user", "pid", "ipc", "uts", "mnt", "net", "cgroup")
    script = "; ".join(f"readlink /proc/self/ns/{kind}" for kind in kinds)
    described, lines = run_script_job(server, tmp_path, "namespaces", script)
    assert described["TrainingJobStatus"] == "Completed"
    host = [os.readlink(f"/proc/self/ns/{kind}") for kind in kinds]
    assert len(lines) == len(kinds)
    for kind, inside, outside in zip(kinds, lines, host, strict=True):
        assert inside.startswith(f"{kind}:[") and inside != outside, kind


def test_setuid_files_and_device_nodes_have_no_power(server: RunningServer, tmp_path: Path) -> None:
    # Found: a setuid copy of sh a job left in /opt/ml/model stayed on the host as root's, mode
    # -rwsr-xr-x, and gave euid=0 to nobody; a job could make device nodes.
    script = (
        "cp /bin/sh /opt/ml/model/rootsh && chmod 4755 /opt/ml/model/rootsh; "
        "stat -c '%u %A' /opt/ml/model/rootsh; "
        "mknod /opt/ml/model/mem c 1 1 2>/dev/null; echo mknod=$?; "
        "grep ' /opt/ml ' /proc/self/mountinfo | cut -d' ' -f6; "
        "/opt/ml/model/rootsh -c 'id -u'"
    )
    described, lines = run_script_job(server, tmp_path, "setuid", script)
    assert described["TrainingJobStatus"] == "Completed"
    owner, mode = lines[0].split()
    assert int(owner) >= server.settings.sandbox_uid_base and mode == "-rwsr-xr-x"
    assert lines[1] == "mknod=1"
    assert {"nosuid", "nodev"} <= set(lines[2].split(","))
    assert int(lines[3]) == int(owner)  # no privilege gained by running it
    # On the host the file is inside the host's volume, which is no longer mounted anywhere.
    host_folder = server.settings.jobs_dir / "setuid" / "hosts" / "algo-1"
    assert not os.path.ismount(host_folder) and not (host_folder / "opt_ml").exists()


PROBE = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(4096)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 16)
calls = {
    "unshare": [0x10000000],                      # CLONE_NEWUSER
    "keyctl": [0, ctypes.c_long(-2), 1],           # get (and make) the process keyring
    "ptrace": [0],                                 # PTRACE_TRACEME
    "personality": [0x0400000],                    # READ_IMPLIES_EXEC
    "kcmp": [os.getpid(), os.getpid(), 0, 0, 0],   # KCMP_FILE of fd 0 with itself
    "get_mempolicy": [0, 0, 0, 0, 0],
    "set_mempolicy": [0, 0, 0],                    # MPOL_DEFAULT
    "io_uring_setup": [1, ctypes.addressof(buf)],
    "userfaultfd": [1],                            # UFFD_USER_MODE_ONLY
    "process_vm_readv": [os.getpid(), iov, 1, iov, 1, 0],
    "name_to_handle_at": [ctypes.c_long(-100), b"/", ctypes.addressof(buf), iov, 0],
    "clone3": [0, 0],                              # size 0: EINVAL unless refused first
}
numbers = json.loads(sys.argv[1])
out = {}
for name, args in calls.items():
    pid = os.fork()
    if pid == 0:
        ctypes.memset(buf, 0, 4096)
        if name == "name_to_handle_at":
            ctypes.c_uint.from_buffer(buf).value = 128
        result = libc.syscall(numbers[name], *args)
        os._exit(0 if result >= 0 else min(ctypes.get_errno(), 250))
    out[name] = os.waitpid(pid, 0)[1] >> 8
out["getpid"] = 0 if libc.syscall(numbers["getpid"]) == os.getpid() else 1
print(json.dumps(out))
"""


def test_seccomp_refuses_what_dockers_default_profile_refuses(
    server: RunningServer, tmp_path: Path
) -> None:
    """Each call below works for an ordinary unprivileged process on this machine (checked
    outside, as nobody); inside a sandbox every one of them is refused by the filter."""
    names = [*_probe_names(), "getpid"]
    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}
    outside = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "/usr/bin/python3", "-c", PROBE, json.dumps(numbers)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    allowed_outside = {n for n, code in json.loads(outside.stdout).items() if code == 0}
    assert len(allowed_outside - {"getpid"}) >= 6, outside.stdout  # enough to mean something
    image = make_image(tmp_path / "probe-image", PROBE)
    request = training_request("seccomp", image)
    request["AlgorithmSpecification"]["ContainerArguments"] = [json.dumps(numbers)]
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "seccomp")["TrainingJobStatus"] == "Completed"
    inside = json.loads(job_log(server, "seccomp")[-1])
    assert inside["getpid"] == 0
    for name in allowed_outside - {"getpid"}:
        expected = 38 if name == "clone3" else 1  # ENOSYS sends glibc to clone(2); else EPERM
        assert inside[name] == expected, (name, inside)
    assert inside["clone3"] == 38  # refused before its arguments are even looked at


def _probe_names() -> list[str]:
    return [
        "unshare", "keyctl", "ptrace", "personality", "kcmp", "get_mempolicy", "set_mempolicy",
        "io_uring_setup", "userfaultfd", "process_vm_readv", "name_to_handle_at", "clone3",
    ]  # fmt: skip


def test_every_job_gets_a_uid_of_its_own(server: RunningServer, tmp_path: Path) -> None:
    """No two sandboxes share a uid: none can signal, trace or read another's files."""
    first = run_script_job(server, tmp_path, "uid-a", "id -u")[1]
    second = run_script_job(server, tmp_path, "uid-b", "id -u")[1]
    assert first != second
