"""The seccomp filter every sandboxed program runs under: at least as strict as Docker's default
profile for a container without added capabilities (built with libseccomp through pyseccomp, then
handed to bubblewrap as BPF)."""

from __future__ import annotations

import errno
import functools
import tempfile

import pyseccomp as seccomp

# What Docker's default profile refuses a container that was given no extra capabilities, plus
# what it only allows with CAP_SYS_PTRACE (ptrace and process_vm_*): kernel modules and keys,
# mounts and namespaces, clocks, accounting, swap, reboot, BPF and perf, handles that bypass
# path permissions, io_uring (which bypasses these very filters), NUMA policy, userfaultfd.
DENIED_SYSCALLS = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter", "io_uring_register",
    "io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount", "move_pages",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
    "pivot_root", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
    "query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy",
    "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog", "sysfs", "_sysctl",
    "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86",
    "vm86old",
)  # fmt: skip

# clone(2) flags that make namespaces: refused, as in Docker's profile.
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
_TIOCSTI = 0x5412  # pushes characters into a terminal's input: refused
_READ_IMPLIES_EXEC = 0x0400000  # a personality that makes every readable page executable


@functools.cache
def filter_bpf() -> bytes:
    """The compiled filter for this machine's architecture (built once per process)."""
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    denied = seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(denied, name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a system call on this architecture
    for flag in _CLONE_NAMESPACE_FLAGS:
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, where a filter cannot look; ENOSYS makes the C
    # library fall back to clone(2), whose flags are checked above (Docker does the same).
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(denied, "ioctl", seccomp.Arg(1, seccomp.EQ, _TIOCSTI))
    rules.add_rule(
        denied,
        "personality",
        seccomp.Arg(0, seccomp.MASKED_EQ, _READ_IMPLIES_EXEC, _READ_IMPLIES_EXEC),
    )
    with tempfile.TemporaryFile() as file:  # libseccomp writes to a file descriptor
        rules.export_bpf(file)
        file.seek(0)
        return file.read()
