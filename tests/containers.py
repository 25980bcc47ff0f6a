"""A real container engine for the docker runtime's tests: podman's Docker-compatible service on
a socket of the test session's own, and base images made here from a rootfs (no outside registry
is reachable), kept in podman's storage between runs on one machine."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = REPO / "scripts" / "podman" / "containers.conf"
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
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
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
