"""The sandbox's file tree, planned as mounts before bubblewrap makes it: what of the host the
program sees (the system's folders, read-only), the image's files, the host's folders, and data."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.contract.errors import SandboxError

# What a program needs of the host to run: its programs and libraries, and its configuration.
SYSTEM_FOLDERS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "sys")
# Kernel settings stay readable (programs size themselves by them) but can never be written.
READ_ONLY_PROC = ("sys", "sysrq-trigger")
# Parts of /etc that are nobody's business in a sandbox (unreadable to its user anyway, but not
# even there to try): password hashes, sudo rules, SSH host keys, TLS private keys.
ETC_SECRETS = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
    "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd",
    "/etc/.pwd.lock", "/etc/credstore", "/etc/credstore.encrypted",
)  # fmt: skip


@dataclass
class Node:
    """One path of the sandbox's file tree.

    kind: "bind" (a host file or folder; `explicit=False` when it is only seen through a bind of
    a parent), "tmpfs", "dir" (made inside a tmpfs or a writable bind), "symlink", "proc", "dev",
    "data" (a file copied from an fd)."""

    kind: str
    source: Path | None = None
    writable: bool = False
    explicit: bool = True
    target: str = ""
    fd: int = -1
    size: int | None = None  # a tmpfs's size in bytes
    children: dict[str, Node] = field(default_factory=dict)

    def is_dir(self) -> bool:
        if self.kind == "bind":
            return self.source is not None and self.source.is_dir()
        return self.kind in ("tmpfs", "dir", "proc", "dev")


class MountPlan:
    """The sandbox's file tree, built by placing mounts; then emitted as bwrap arguments.

    The root is bwrap's tmpfs with the host's system folders bound read-only. A mount point that
    does not exist under a read-only bind cannot be made without writing to the host, so that bind
    is replaced by a tmpfs into which each of the folder's entries is bound again (read-only)."""

    def __init__(self, root: Node) -> None:
        self.root = root

    @classmethod
    def over_host_system(cls) -> MountPlan:
        """The system's own folders (read-only) and nothing else of the host: no /home, /root,
        /srv, /mnt, /media, /var, /opt or project folders; /etc without its secrets."""
        root = Node("tmpfs")
        for name in SYSTEM_FOLDERS:
            node = _host_node(Path("/", name), explicit=True)
            if node is not None:
                root.children[name] = node
        root.children.update({"proc": Node("proc"), "dev": Node("dev")})
        plan = cls(root)
        plan._hide_etc_secrets()
        return plan

    @classmethod
    def over_host_read_only(cls) -> MountPlan:
        """All of this machine's folders, read-only (/etc without its secrets), with a /proc
        and /dev of the view's own: the view an image's build step runs in."""
        root = Node("tmpfs")
        for entry in sorted(os.scandir("/"), key=lambda e: e.name):
            if entry.name in ("proc", "dev"):
                continue
            node = _host_node(Path(entry.path), explicit=True)
            if node is not None:
                root.children[entry.name] = node
        root.children.update({"proc": Node("proc"), "dev": Node("dev")})
        plan = cls(root)
        plan._hide_etc_secrets()
        return plan

    def _hide_etc_secrets(self) -> None:
        for secret in ETC_SECRETS:
            kind = self.kind_at(secret)
            if kind == "dir":
                self.place(secret, Node("tmpfs"))
            elif kind == "file":
                self.place(secret, Node("bind", source=Path(os.devnull)))

    def kind_at(self, path: str) -> str | None:
        """What the program would see at `path`: "dir", "file" or None. Changes nothing."""
        resolved = self._resolve(path, create=False)
        if resolved is None:
            return None
        parent, name = resolved
        node = self._child(parent, name) if name else parent
        if node is None:
            return None
        return "dir" if node.is_dir() else "file"

    def place(self, path: str, node: Node) -> None:
        """Mount (or make) `node` at `path`, hiding whatever was there."""
        resolved = self._resolve(path, create=True)
        assert resolved is not None
        parent, name = resolved
        if not name:
            raise SandboxError("cannot mount over the sandbox's root")
        self._attach(parent, name, node)

    def make_dir(self, path: str) -> None:
        self.place(path, Node("dir"))

    def copy(self, destination: str, source: Path, *, writable: bool = False) -> None:
        """Place an image file or folder; a folder over an existing folder is merged into it."""
        if source.is_symlink():
            self.place(destination, Node("symlink", target=os.readlink(source)))
        elif source.is_dir() and self.kind_at(destination) == "dir":
            for entry in sorted(source.iterdir()):
                self.copy(posixpath.join(destination, entry.name), entry, writable=writable)
        else:
            self.place(destination, Node("bind", source=source, writable=writable))

    def arguments(self) -> list[str]:
        arguments: list[str] = []
        for name, child in sorted(self.root.children.items()):
            self._emit(child, "/" + name, arguments)
        return arguments

    def _emit(self, node: Node, path: str, out: list[str]) -> None:
        if node.kind == "bind" and node.explicit:
            out += ["--bind" if node.writable else "--ro-bind", str(node.source), path]
        elif node.kind == "tmpfs" and node.writable:
            # A writable tmpfs is shared scratch space (/dev/shm): sticky and open to all.
            size = ["--size", str(node.size)] if node.size is not None else []
            out += ["--perms", "1777", *size, "--tmpfs", path]
        elif node.kind == "proc":
            out += ["--proc", path]
            for name in READ_ONLY_PROC:
                if os.path.exists(posixpath.join("/proc", name)):
                    out += ["--ro-bind", f"/proc/{name}", posixpath.join(path, name)]
        elif node.kind in ("tmpfs", "dir", "dev"):
            out += [f"--{node.kind}", path]
        elif node.kind == "symlink" and node.explicit:
            out += ["--symlink", node.target, path]
        elif node.kind == "data":
            # bwrap makes data files 0600 for the user it runs as, root: readable to all instead.
            out += ["--perms", "0644", "--ro-bind-data", str(node.fd), path]
        for name, child in sorted(node.children.items()):
            self._emit(child, posixpath.join(path, name), out)
        if node.kind == "tmpfs" and not node.writable:
            out += ["--remount-ro", path]

    def _resolve(self, path: str, *, create: bool, hops: int = 0) -> tuple[Node, str] | None:
        """(folder node, name) for `path` with every symlink followed, as the kernel would.

        With `create`, missing folders on the way are made; without, None when one is missing."""
        if hops > 40:
            raise SandboxError(f"too many symbolic links below {path}")
        parts = [part for part in posixpath.normpath(path).split("/") if part]
        node, here = self.root, "/"
        for index, name in enumerate(parts):
            child = self._child(node, name)
            if child is not None and child.kind == "symlink":
                rest = "/".join(parts[index + 1 :])
                target = posixpath.normpath(posixpath.join(here, child.target, rest))
                return self._resolve(target, create=create, hops=hops + 1)
            if index == len(parts) - 1:
                return node, name
            if child is None:
                if not create:
                    return None
                child = self._attach(node, name, Node("dir"))
            here = posixpath.join(here, name)
            if not child.is_dir():
                if create:
                    raise SandboxError(f"cannot place {path} in the sandbox: {here} is a file")
                return None
            node = child
        return node, ""

    def _child(self, node: Node, name: str) -> Node | None:
        """The existing child `name` of a folder node, host entries seen through a bind included."""
        child = node.children.get(name)
        if child is None and node.kind == "bind" and node.source is not None:
            child = _host_node(node.source / name, explicit=False, writable=node.writable)
            if child is not None:
                node.children[name] = child
        return child

    def _attach(self, parent: Node, name: str, node: Node) -> Node:
        existing = self._child(parent, name)
        # A mount needs an existing mount point of its kind; a folder or symlink must be made.
        # Neither may be written into a read-only host folder, which therefore becomes a tmpfs.
        needs_new_entry = (
            existing is None
            or node.kind in ("dir", "symlink")
            or existing.kind == "symlink"
            or existing.is_dir() != node.is_dir()
        )
        if parent.kind == "bind" and not parent.writable and needs_new_entry:
            self._to_tmpfs(parent)
        elif parent.kind not in ("bind", "tmpfs", "dir", "dev"):
            raise SandboxError(f"cannot create {name} inside a {parent.kind} mount")
        elif parent.kind == "bind" and existing is not None and needs_new_entry:
            raise SandboxError(
                f"cannot mount {node.source} over {existing.source}: not the same kind"
            )
        parent.children[name] = node
        return node

    @staticmethod
    def _to_tmpfs(node: Node) -> None:
        """Turn a read-only folder bind into a tmpfs holding a read-only bind of each entry."""
        assert node.source is not None
        for entry in os.scandir(node.source):
            child = node.children.get(entry.name)
            if child is None:
                child = _host_node(Path(entry.path), explicit=True)
                if child is not None:
                    node.children[entry.name] = child
            elif child.kind in ("bind", "symlink") and not child.explicit:
                child.explicit = True
        node.kind, node.explicit, node.writable = "tmpfs", True, False


def _host_node(path: Path, *, explicit: bool, writable: bool = False) -> Node | None:
    """The node for a host path as seen through a bind; None when it does not exist."""
    try:
        if path.is_symlink():
            # Seen through a bind of its folder, a link is there already: only made when its
            # folder becomes a tmpfs (explicit).
            return Node("symlink", target=os.readlink(path), explicit=explicit)
        if path.exists():
            return Node("bind", source=path, explicit=explicit, writable=writable)
    except OSError:
        pass
    return None
