"""The hosts' addresses on a cluster: one /24 of the hosts range (DOCKYARD_HOSTS_CIDR) per job or
serving instance, one address in it per host, so the node rules can tell a job's hosts apart
from every other job's."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence

from dockyard.contract.errors import ResourceLimitExceeded, ValidationError


class SubnetPool:
    def __init__(self, cidr: str) -> None:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError as exc:
            raise ValidationError(
                f"DOCKYARD_HOSTS_CIDR={cidr} is not an IPv4 network ({exc}); give one like "
                "10.208.0.0/12 that no machine of the cluster uses"
            ) from None
        if network.prefixlen > 24:
            raise ValidationError(
                f"DOCKYARD_HOSTS_CIDR={cidr} is smaller than a /24: each job takes a /24 of it"
            )
        self.network = network
        self._taken: dict[str, ipaddress.IPv4Network] = {}
        self._lock = threading.Lock()

    def take(self, owner: str) -> ipaddress.IPv4Network:
        """The lowest /24 nobody holds, for `owner` (the same one again if it holds one)."""
        with self._lock:
            if owner in self._taken:
                return self._taken[owner]
            used = set(self._taken.values())
            for subnet in self.network.subnets(new_prefix=24):
                if subnet not in used:
                    self._taken[owner] = subnet
                    return subnet
        raise ResourceLimitExceeded(
            f"every /24 of DOCKYARD_HOSTS_CIDR={self.network} is held by a running job or "
            "instance: wait for one to end, or give the server a larger range"
        )

    def claim(self, owner: str, subnet: str) -> ipaddress.IPv4Network:
        """Hold `subnet` for `owner` again (its hosts still run: a server restarted)."""
        network = ipaddress.IPv4Network(subnet)
        with self._lock:
            self._taken[owner] = network
        return network

    def give_back(self, owner: str) -> None:
        with self._lock:
            self._taken.pop(owner, None)


def host_addresses(subnet: ipaddress.IPv4Network, hosts: Sequence[str]) -> dict[str, str]:
    """algo-1 is .1, algo-2 .2, ... of the subnet."""
    return {host: str(subnet.network_address + index + 1) for index, host in enumerate(hosts)}
