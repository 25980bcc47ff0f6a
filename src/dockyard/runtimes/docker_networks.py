"""Networks of the docker runtime: one labelled bridge network per job (or serving instance),
internal unless the job may reach outside. Each host gets a fixed address in the network's subnet,
named in every host's /etc/hosts, so `algo-2` reaches `algo-1` by name from its first instruction
(no DNS to wait for), and dockyard reaches an instance's port 8080 at its address on the bridge."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from socket import socket as Socket

import docker
import docker.errors

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.docker_hosts import remove_container

NETWORK_LABEL = "dockyard.network"
# Hosts' addresses start here: below are the gateway (.1, the host's side of the bridge) and room
# the engine's own allocator may use for anything attached without a fixed address.
_FIRST_HOST = 10


class DockerNetwork:
    """A bridge network made for one job or instance; its hosts' addresses are handed out in
    order of first asking, so host_addresses before any start gives the whole map."""

    def __init__(self, client: docker.DockerClient, name: str, subnet: str, outside: bool) -> None:
        self.client = client
        self.name = name
        self.subnet = ipaddress.ip_network(subnet)
        self.outside = outside
        self._addresses: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def create(
        cls, client: docker.DockerClient, labels: dict[str, str], *, outside: bool
    ) -> DockerNetwork:
        name = f"dockyard-{uuid.uuid4().hex[:16]}"
        try:
            made = client.networks.create(
                name,
                driver="bridge",
                internal=not outside,
                labels={**labels, NETWORK_LABEL: name},
            )
            made.reload()
            subnet = made.attrs["IPAM"]["Config"][0]["Subnet"]
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not make a network: {exc.explanation or exc}") from exc
        except (KeyError, IndexError, TypeError) as exc:
            _remove_network(client, name)
            raise SandboxError(f"the engine made network {name} without a subnet") from exc
        return cls(client, name, subnet, outside)

    def address_of(self, hostname: str) -> str:
        """The fixed address of `hostname` in this network (given out the first time asked)."""
        with self._lock:
            if hostname not in self._addresses:
                index = _FIRST_HOST + len(self._addresses)
                if index >= self.subnet.num_addresses - 1:
                    raise SandboxError(f"network {self.name} ({self.subnet}) has no room left")
                self._addresses[hostname] = str(self.subnet.network_address + index)
            return self._addresses[hostname]

    def host_addresses(self, hostnames: Sequence[str]) -> dict[str, str]:
        return {name: self.address_of(name) for name in hostnames}

    def connector(self) -> ContainerConnector:
        """Reaches the network's first host: the serving instance, for a serving network."""
        with self._lock:
            first = next(iter(self._addresses.values()), None)
        return ContainerConnector(self, first)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Remove the network, with any container of ours still attached to it."""
        if self._closed:
            return
        self._closed = True
        _remove_network(self.client, self.name)


def _remove_network(client: docker.DockerClient, name: str) -> None:
    for attempt in range(3):
        try:
            client.api.remove_network(name)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            # Still in use: a container being torn down. Containers of ours on it go first.
            for container in client.containers.list(
                all=True, filters={"label": f"{NETWORK_LABEL}={name}"}
            ):
                remove_container(client.api, str(container.id))
            if attempt == 2:
                raise
            time.sleep(0.2)


class ContainerConnector:
    """Reaches ports of a container on a bridge network from this machine: the bridge routes
    the host to its containers' addresses, so no port is published on the host."""

    def __init__(self, network: DockerNetwork, address: str | None) -> None:
        self._network = network
        self._address = address

    def _target(self, host: str = "127.0.0.1") -> str:
        if self._address is None or self._network.closed:
            # No instance is there (any more): to a caller that is a refused connection.
            raise ConnectionRefusedError("the instance's network is closed")
        # The instance's own loopback, seen from outside, is its address on the bridge.
        return self._address if host in ("127.0.0.1", "localhost") else host

    def address(self, port: int) -> tuple[str, int]:
        return (self._target(), port)

    def socket(self) -> Socket:
        made = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        made.setblocking(False)
        made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return made

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> Socket:
        return socket.create_connection((self._target(host), port), timeout=timeout)

    def close(self) -> None:
        self._address = None
