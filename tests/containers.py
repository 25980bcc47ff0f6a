"""A real container engine for the docker runtime's tests: podman's Docker-compatible service on
a socket of the test session's own, and base images made here from a rootfs (no outside registry
is reachable), kept in podman's storage between runs on one machine."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.runtimes.docker_images import HOME_LABEL
from dockyard.runtimes.volumes import mount_points
from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = REPO / "scripts" / "podman" / "containers.conf"
DEBIAN_SUITE = "bookworm"
# Part of every Debian image's tag: change it whenever debian_image builds differently, so a
# machine's cached images built the old way are not taken for new ones.
DEBIAN_RECIPE = "minbase; apt-get --no-install-recommends; lists and archives removed; v1"
DEBIAN_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "DEBIAN_FRONTEND=noninteractive",
)
# What the R example needs; bookworm's R is 4.2.2, the version its Dockerfile starts FROM.
R_BASE = ("r-base-core", "r-cran-randomforest", "r-cran-plumber", "r-cran-jsonlite")
R_BASE_TAG = ("localhost/r-base", "4.2.2")
BUSYBOX_APPLETS = (
    "sh echo cat sleep nc ls env id true false head dd hostname wc mkdir touch rm test grep kill ps"
)


@dataclass(frozen=True)
class Engine:
    """The running service: a docker SDK client and the DOCKER_HOST that names it."""

    client: Any
    docker_host: str


def podman() -> str:
    exe = shutil.which("podman")
    if exe is None:
        raise RuntimeError("podman is not installed: apt-get install podman runc aardvark-dns")
    return exe


def engine_at(docker_host: str) -> Engine:
    """The engine already serving at `docker_host`."""
    import docker

    os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    client = docker.DockerClient(base_url=docker_host, timeout=120)
    client.ping()
    return Engine(client, docker_host)


def start_service(folder: Path) -> Iterator[Engine]:
    """podman system service on `folder`/podman.sock until the generator is closed."""
    import docker

    os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    socket = folder / "podman.sock"
    log = (folder / "service.log").open("wb")
    proc = subprocess.Popen(
        [podman(), "system", "service", "--time=0", f"unix://{socket}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        # conmon writes an `oom` file into its working folder when a container is killed for
        # memory (podman 4.3, cgroup v1): this folder, not the repository's.
        cwd=folder,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman's service did not start: {folder / 'service.log'}")
            time.sleep(0.05)
        docker_host = f"unix://{socket}"
        client = docker.DockerClient(base_url=docker_host, timeout=120)
        client.ping()
        yield Engine(client, docker_host)
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def import_rootfs(client: Any, rootfs: Path, name: str, changes: list[str] | None = None) -> str:
    """`podman import` of a rootfs folder as `name`; its id."""
    command = [podman(), "import"]
    for change in changes or []:
        command += ["--change", change]
    # --one-file-system: a /proc or /dev a failed debootstrap left mounted is not imported.
    tar = subprocess.Popen(
        ["tar", "--one-file-system", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
    )
    done = subprocess.run([*command, "-", name], stdin=tar.stdout, capture_output=True, check=False)
    tar.wait()
    if done.returncode != 0 or tar.returncode != 0:
        raise RuntimeError(f"podman import {name}: {done.stderr.decode(errors='replace')}")
    return str(client.images.get(name).id)


def busybox_image(client: Any, work: Path) -> str:
    """A 2 MB image: the static busybox of the busybox-static package with its usual applets,
    tagged by the binary's digest so a machine builds it once."""
    binary = Path("/bin/busybox")
    if not binary.exists():
        raise RuntimeError("busybox-static is not installed: apt-get install busybox-static")
    digest = hashlib.sha256(binary.read_bytes() + BUSYBOX_APPLETS.encode()).hexdigest()
    name = f"localhost/dockyard-test/busybox:{digest[:12]}"
    if client.images.list(name=name):
        return name
    rootfs = work / "busybox-rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(exist_ok=True)
    shutil.copy2(binary, rootfs / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS.split():
        (rootfs / "bin" / applet).symlink_to("busybox")
    import_rootfs(client, rootfs, name, ["ENV PATH=/bin"])
    return name


def debian_image(client: Any, work: Path, packages: list[str], suite: str = DEBIAN_SUITE) -> str:
    """A Debian `suite` image with `packages` installed, made with debootstrap from this machine's
    Debian mirror and tagged by a hash of (suite, packages, recipe), so a machine builds each
    once; test processes asking at once wait for one build instead of racing."""
    key = "\n".join([suite, " ".join(sorted(packages)), DEBIAN_RECIPE, *DEBIAN_ENV])
    name = f"localhost/dockyard-test/debian:{suite}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if client.images.list(name=name):
        return name
    # Machine-wide like podman's storage (so not under TMPDIR, which a process may change):
    # every worktree and session shares the one build.
    locks = Path("/var/tmp/dockyard-test-images")
    locks.mkdir(exist_ok=True)
    with (locks / f"{name.rsplit(':', 1)[1]}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if client.images.list(name=name):
            return name
        rootfs = work / f"debian-{suite}-rootfs"
        _debootstrap(suite, rootfs, debian_mirror(suite))
        _chroot_install(rootfs, packages)
        changes = [f"ENV {value}" for value in DEBIAN_ENV] + ['CMD ["bash"]']
        import_rootfs(client, rootfs, name, changes)
        # The rootfs is root-owned and 200+ MB: not left for pytest's temporary-folder rotation.
        remove_rootfs(rootfs)
    return name


def debian_mirror(suite: str, sources: Path = Path("/etc/apt")) -> str:
    """The URI of this machine's Debian mirror for `suite`, read from its apt sources (both the
    one-line `.list` form and the deb822 `.sources` form), so no mirror is named in the repo."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]
    for file in files:
        for line in file.read_text().splitlines() if file.is_file() else []:
            fields = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(fields) >= 3 and fields[0] == "deb" and fields[2] == suite:
                return fields[1]
    for file in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", file.read_text()):
            entry: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    field, value = line.split(":", 1)
                    entry[field.strip().lower()] = value.strip()
            enabled = entry.get("enabled", "yes").lower() != "no" and entry.get("uris")
            debs = "deb" in entry.get("types", "").split()
            if enabled and debs and suite in entry.get("suites", "").split():
                return entry["uris"].split()[0]
    raise RuntimeError(f"no Debian mirror for {suite} in {sources}/sources.list(.d): add one")


def remove_rootfs(rootfs: Path) -> None:
    """Remove a rootfs folder, first unmounting what debootstrap mounts in it (/proc, /sys, and
    /dev when it binds the host's) if a killed run left them: deleting through those mounts
    would delete the host's own files."""
    if not rootfs.exists():
        return
    for point in sorted(mounts_under(rootfs), reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = sorted(mounts_under(rootfs))
    if left:
        raise RuntimeError(f"cannot remove {rootfs}: still mounted there: {', '.join(left)}")
    shutil.rmtree(rootfs)


def mounts_under(folder: Path) -> set[str]:
    """The mount points below `folder` (this process's mount namespace)."""
    prefix = str(folder.resolve()).rstrip("/") + "/"
    return {point for point in mount_points() if point.startswith(prefix)}


def _debootstrap(suite: str, rootfs: Path, mirror: str) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: apt-get install debootstrap")
    remove_rootfs(rootfs)
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stdout.decode(errors="replace")[-2000:] + done.stderr.decode(errors="replace")
        raise RuntimeError(f"debootstrap {suite} from {mirror} failed:\n{tail}")


def _chroot_install(rootfs: Path, packages: list[str]) -> None:
    """apt-get install in the rootfs, then what an image should not carry: apt's lists and
    downloaded archives, and this machine's resolver and host name (the engine supplies them)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
    }
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        ["apt-get", "clean"],
    ):
        done = subprocess.run(
            ["chroot", str(rootfs), *command], env=env, capture_output=True, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
            raise RuntimeError(f"chroot {rootfs} {' '.join(command)} failed:\n{output}")
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists")
    (rootfs / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    for host_file in ("etc/resolv.conf", "etc/hostname"):
        (rootfs / host_file).unlink(missing_ok=True)


def tag_r_base(client: Any, name: str) -> None:
    """Tag the R image `name` as r-base:<its R version> after checking that version is the one
    the R example's Dockerfile names."""
    repository, tag = R_BASE_TAG
    printed = client.containers.run(
        name, ["Rscript", "-e", "cat(as.character(getRversion()))"], remove=True
    )
    version = printed.decode().strip()
    if version != tag:
        raise RuntimeError(f"{name} has R {version}, not {tag}: change R_BASE_TAG and the example")
    client.images.get(name).tag(repository, tag)


@contextmanager
def running_registry(folder: Path, users: dict[str, str] | None = None) -> Iterator[str]:
    """The distribution registry on an ephemeral loopback port: storage in `folder`, plain
    HTTP, and basic auth for `users` when given; its host:port."""
    exe = shutil.which("docker-registry")
    if exe is None:
        raise RuntimeError("docker-registry is not installed: apt-get install docker-registry")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    auth = ""
    if users:
        import bcrypt

        htpasswd = folder / "htpasswd"
        htpasswd.write_text(
            "".join(
                f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
                for user, password in users.items()
            )
        )
        auth = f"auth: {{htpasswd: {{realm: dockyard-test, path: {htpasswd}}}}}\n"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, "
        "delete: {enabled: true}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n" + auth
    )
    log = (folder / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def labelled(kind: str, home: Path, *, running: bool = False) -> list[str]:
    """What podman itself lists with a home's label: containers (`podman ps -a`, full ids; only
    running ones with `running`) or networks (`podman network ls`, names)."""
    label = ["--filter", f"label={HOME_LABEL}={home}"]
    if kind == "network":
        command = [podman(), "network", "ls", *label, "--format", "{{.Name}}"]
    else:
        command = [podman(), "ps", "-a", "--no-trunc", *label, "--format", "{{.ID}}"]
        if running:
            command[-2:-2] = ["--filter", "status=running"]
    listed = subprocess.run(command, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def nothing_labelled(home: Path) -> bool:
    """No container or network with the home's label is left."""
    return not labelled("container", home) and not labelled("network", home)
