"""Where pip runs for a build of users' packages (an image's RUN lines, a job's requirements.txt
and setup.py): their code runs while they are built and is not trusted. So pip runs in a bubblewrap
view of this machine that is read-only but for the environment being built, its scratch folder and
pip's cache, without dockyard's home or the users' homes, as a build user of its own with no
capability. The environment's files are that user's while it builds and root's once it is done.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import EnvironmentBuildError
from dockyard.runtimes.mount_plan import MountPlan, Node
from dockyard.runtimes.volumes import chown_tree

# Users' homes: their pip configuration and their credentials live there.
PRIVATE = (Path("/root"), Path("/home"))


@dataclass(frozen=True)
class BuildView:
    build_uid: int
    cache_dir: Path  # pip's cache, the build user's
    hidden: tuple[Path, ...] = ()  # dockyard's home
    bwrap: str = "bwrap"

    def begin(self, root: Path, scratch: Path) -> None:
        """Hand the environment and a scratch folder (the build's /tmp) to the build user."""
        if os.geteuid() != 0:
            raise EnvironmentBuildError(
                "users' packages are built as a build user of their own, which takes root to set "
                "up: build as root (the dockyard server runs as root)"
            )
        scratch.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for folder in (root, scratch, self.cache_dir):
            chown_tree(folder, self.build_uid)

    def end(self, root: Path) -> None:
        """The environment becomes root's: no sandbox, nor a later build, may change it."""
        chown_tree(root, 0)

    def variables(self) -> dict[str, str]:
        """What a command in the view must have in its environment: its home, /tmp and pip's
        cache are the view's."""
        return {
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "PIP_CACHE_DIR": str(self.cache_dir),
            "PIP_NO_INPUT": "1",
        }

    def contained(
        self,
        root: Path,
        argv: Sequence[str],
        *,
        cwd: str,
        scratch: Path,
        read_only: Sequence[Path] = (),
        copies: Sequence[tuple[str, Path]] = (),
    ) -> list[str]:
        """`argv` (the environment's python, pip...) wrapped to run in the view of the build of
        the environment at `root`; run it with variables() in its environment."""
        plan = MountPlan.over_host_read_only()
        for hidden in (*self.hidden, *PRIVATE):
            if plan.kind_at(str(hidden)) == "dir":
                plan.place(str(hidden), Node("tmpfs"))
        # /tmp first: what follows may lie below it (a test's folders).
        plan.place("/tmp", Node("bind", source=scratch, writable=True))
        for path in read_only:
            plan.place(str(path), Node("bind", source=path))
        plan.place(str(root), Node("bind", source=root, writable=True))
        plan.place(str(self.cache_dir), Node("bind", source=self.cache_dir, writable=True))
        for destination, source in copies:
            plan.copy(destination, source, writable=True)
        workdir = posixpath.normpath(cwd)
        if plan.kind_at(workdir) is None:
            plan.make_dir(workdir)
        uid = str(self.build_uid)
        return [
            self.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            *plan.arguments(), "--chdir", workdir, "--",
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
            *argv,
        ]  # fmt: skip
