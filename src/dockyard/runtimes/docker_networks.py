"""Networks of the docker runtime: one labelled bridge network per job (or serving instance),
internal unless the job may reach outside. Each host gets a fixed address in the network's subnet,
named in every host's /etc/hosts, so `algo-2` reaches `algo-1` by name from its first instruction
(no DNS to wait for), and dockyard reaches an instance's port 8080 at its address on the bridge."""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from collections.abc import Sequence

import docker
import docker.errors

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.address_connector import AddressConnector
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

    def connector(self) -> AddressConnector:
        """Reaches the network's first host: the serving instance, for a serving network."""
        with self._lock:
            first = next(iter(self._addresses.values()), None)
        return AddressConnector(first, lambda: self.closed)

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
