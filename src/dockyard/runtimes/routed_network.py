"""Routed host networks: the network of ONE host of a cluster job (or one serving instance) on
this node, routed by the node, so hosts on different machines reach each other by address on any
port. The model is Flannel's host-gw and Calico's: no bridge, no overlay.

Each host has a network namespace of its own with one end of a veth pair, `eth0`, holding the
host's address as a /32, and a default route via a link-local next hop (169.254.1.1) that exists
nowhere: the host's neighbour table maps it, for good, to the MAC of the veth's node end, so every
packet the host sends goes to the node, whatever the node's own routes are. The node end (`dy` +
12 hex digits) has a /32 route to the host. Peers on other machines are routed via their node's
IP (host-gw): the nodes of a cluster must share one network segment, with no router between them.
The rest of the hosts range is unreachable on the node, so a packet to an address with no host
behind it is refused there rather than sent out of the node's default route.
A node forwards between its hosts, as any container engine's node does: making a routed network
turns on `net.ipv4.ip_forward` (and leaves it on; the machine's own FORWARD policy is the admin's).

The node guards the hosts range (DOCKYARD_HOSTS_CIDR) with iptables chains of dockyard's own (see
routed_state): a host reaches its job's hosts (its subnet), and with outside access the world,
masqueraded as the node; never anything of its node (a service on any of the node's addresses,
loopback included: Ray's GCS and raylet, dockyard's API), another job's hosts, the nodes its peers
run on, or a link-local address. The node's own processes (the router) may connect to any host.
IPv6 is off on the host's link, so no IPv6 link-local address of the node is reachable either.

A process killed with -9 leaves its network's record, peer routes and subnet rules; its namespace,
and with it the veth pair and the /32 route, go with its last descriptor. The next network made on
the machine, or `recover_routed_networks`, removes what dead owners left."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from dockyard.contract.errors import SandboxError
from dockyard.runtimes import routed_state
from dockyard.runtimes.address_connector import AddressConnector
from dockyard.runtimes.netns import Network, new_namespace
from dockyard.runtimes.routed_state import STATE_DIR, NetworkRecord

# The host's next hop: an address of no one, link-local so no network a host reaches holds it.
GATEWAY = "169.254.1.1"
# The MAC of every node end; the host's neighbour entry for GATEWAY names it (as Calico does).
GATEWAY_MAC = "ee:ee:ee:ee:ee:ee"
HOST_LINK = "eth0"


class RoutedNetwork(Network):
    """One host's network namespace, routed by this node. Closing it removes its link and
    routes, and its subnet's rules when it was the subnet's last network on this node."""

    def __init__(
        self,
        fd: int,
        *,
        record: NetworkRecord,
        hosts: Mapping[str, str],
        state_dir: Path = STATE_DIR,
    ) -> None:
        super().__init__(fd, record.outside, None)
        self.record = record
        self.hosts = dict(hosts)
        self._state_dir = state_dir
        self._released = False

    @property
    def address(self) -> str:
        return self.record.address

    @property
    def link(self) -> str:
        return self.record.link

    @property
    def closed(self) -> bool:
        return self._released

    # A routed network is made from its addresses, not from `outside` alone: not Network.create's
    # arguments, though it is a Network wherever the process runtime takes one.
    @classmethod
    def create(  # type: ignore[override]
        cls,
        *,
        address: str,
        subnet: str,
        hosts: Mapping[str, str],
        outside: bool,
        hosts_cidr: str,
        peer_nodes: Mapping[str, str] = {},  # read, never changed
        state_dir: Path = STATE_DIR,
    ) -> RoutedNetwork:
        """The network of the host at `address` of the job whose hosts are `hosts` (hostname ->
        address, all in `subnet`, a subnet of `hosts_cidr`); `peer_nodes` names the node IP of
        each peer host that runs elsewhere, `outside` gives the world (EnableNetworkIsolation
        false)."""
        _check_addresses(address, subnet, hosts, hosts_cidr, peer_nodes)
        local = routed_state.local_networks()
        owner_pid, owner_start = routed_state.this_process()
        record = NetworkRecord(
            link=f"{routed_state.LINK_PREFIX}{secrets.token_hex(6)}",
            address=address,
            subnet=str(ipaddress.IPv4Network(subnet)),
            outside=outside,
            hosts_cidr=str(ipaddress.IPv4Network(hosts_cidr)),
            peer_routes=routed_state.remote_peers(peer_nodes, local),
            owner_pid=owner_pid,
            owner_start=owner_start,
        )
        _write_sysctl("net/ipv4/ip_forward", "1")
        fd = new_namespace()
        try:
            with routed_state.locked(state_dir):
                live = routed_state.reap_dead(state_dir)
                _check_conflicts(record, live)
                # The record first: a kill before the link exists leaves a record that names
                # a dead owner, which the next change removes.
                record.save(state_dir)
                try:
                    _make_link(fd, record.link, address)
                    routed_state.sync([*live, record])
                except BaseException:
                    routed_state.delete_link(record.link)
                    record.remove(state_dir)
                    routed_state.sync(live, [record.hosts_cidr])
                    raise
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, record=record, hosts=hosts, state_dir=state_dir)

    def resolv_conf(self) -> str:
        """With outside access, the node's own resolvers a host can reach: none on a loopback
        address (systemd-resolved's 127.0.0.53, a local dnsmasq) or on another of the node's
        addresses, which the guard refuses. Without one, the host has no resolver and names
        only its peers (/etc/hosts); an admin gives the node a resolver on the network."""
        if not self.outside:
            return ""
        try:
            text = Path("/etc/resolv.conf").read_text(errors="replace")
        except OSError:
            return ""
        return reachable_resolv_conf(text, routed_state.local_networks())

    # The router's sockets to a routed host are the node's own: no namespace to enter.
    def connector(self) -> AddressConnector:  # type: ignore[override]
        return AddressConnector(self.address, lambda: self.closed)

    def host_addresses(self, hostnames: Sequence[str]) -> dict[str, str]:
        """The addresses the server gave these hosts."""
        missing = [name for name in hostnames if name not in self.hosts]
        if missing:
            raise SandboxError(
                f"the routed network of {self.address} was given no address for "
                f"{', '.join(missing)}: make it with every host of the job"
            )
        return {name: self.hosts[name] for name in hostnames}

    def close(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            with routed_state.locked(self._state_dir):
                self.record.remove(self._state_dir)
                routed_state.delete_link(self.link)
                routed_state.sync(routed_state.reap_dead(self._state_dir), [self.record.hosts_cidr])
        finally:
            super().close()


def recover_routed_networks(hosts_cidr: str, state_dir: Path = STATE_DIR) -> None:
    """Remove what networks of dead processes left on this machine: their records and links,
    the veth pairs no record names (a link is made only after its record, under the lock, so
    such a link has no owner), the peer routes in `hosts_cidr` no live network wants, and the
    rules of subnets no live network is in (all of dockyard's chains, and the range's
    unreachable route, when none is left).
    Networks of live processes are kept. Run it at a node's (or the server's) start."""
    with routed_state.locked(state_dir):
        live = routed_state.reap_dead(state_dir)
        kept = {record.link for record in live}
        for link in routed_state.links_made():
            if link not in kept:
                routed_state.delete_link(link)
        routed_state.sync(live, [str(ipaddress.IPv4Network(hosts_cidr))])


def reachable_resolv_conf(text: str, node: Sequence[ipaddress.IPv4Network]) -> str:
    """The lines of a resolv.conf a host can use: IPv4 nameservers off the node itself, with the
    search and options lines when any nameserver is left."""
    nameservers, others = [], []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            try:
                server = ipaddress.ip_address(words[1])
            except ValueError:
                continue
            if (
                server.version == 4
                and not server.is_loopback
                and not routed_state.is_local(words[1], node)
            ):
                nameservers.append(f"nameserver {words[1]}")
        elif words[:1] in (["search"], ["domain"], ["options"]):
            others.append(" ".join(words))
    return "\n".join([*nameservers, *others]) + "\n" if nameservers else ""


def _make_link(fd: int, link: str, address: str) -> None:
    """The veth pair: `link` on the node, HOST_LINK in the namespace held by `fd`."""
    namespace = f"/proc/{os.getpid()}/fd/{fd}"
    mtu = str(_uplink_mtu())
    routed_state.run(
        ["ip", "link", "add", link, "mtu", mtu, "address", GATEWAY_MAC, "type", "veth",
         "peer", "name", HOST_LINK, "mtu", mtu, "netns", namespace]
    )  # fmt: skip
    # Before it is up: strict reverse-path filtering, so a packet from the host carries the
    # host's own address; no IPv6, so the host has no link-local way to the node's services.
    _write_sysctl(f"net/ipv4/conf/{link}/rp_filter", "1")
    if Path(f"/proc/sys/net/ipv6/conf/{link}").exists():
        _write_sysctl(f"net/ipv6/conf/{link}/disable_ipv6", "1")
    routed_state.run(
        ["nsenter", f"--net={namespace}", "ip", "-batch", "-"],
        stdin=(
            f"addr add {address}/32 dev {HOST_LINK}\n"
            f"link set {HOST_LINK} up\n"
            f"neigh replace {GATEWAY} lladdr {GATEWAY_MAC} dev {HOST_LINK} nud permanent\n"
            f"route add default via {GATEWAY} dev {HOST_LINK} onlink\n"
        ),
    )
    routed_state.run(["ip", "link", "set", link, "up"])  # its route comes with the sync


def _uplink_mtu() -> int:
    """The MTU of the node's way out (its default route's link): a host's packets to a peer on
    another node cross that link as they are, unwrapped."""
    listing = routed_state.run_output(["ip", "-4", "-o", "route", "show", "default"])
    words = listing[0].split() if listing else []
    if "dev" in words:
        try:
            return int(Path(f"/sys/class/net/{words[words.index('dev') + 1]}/mtu").read_text())
        except (OSError, ValueError, IndexError):
            pass
    return 1500


def _write_sysctl(name: str, value: str) -> None:
    path = Path("/proc/sys") / name
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
    except OSError as exc:
        raise SandboxError(f"cannot set {name.replace('/', '.')} to {value}: {exc}") from exc


def _check_addresses(
    address: str,
    subnet: str,
    hosts: Mapping[str, str],
    hosts_cidr: str,
    peer_nodes: Mapping[str, str],
) -> None:
    try:
        hosts_range = ipaddress.IPv4Network(hosts_cidr)
        job = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise SandboxError(
            f"a routed network needs IPv4 networks (like 10.208.0.0/12 and 10.208.3.0/24), not "
            f"{hosts_cidr!r} and {subnet!r}: {exc}"
        ) from exc
    if not job.subnet_of(hosts_range):
        raise SandboxError(f"the job subnet {job} is not in the hosts range {hosts_range}")
    for what, value in [("this host", address), *hosts.items(), *((p, p) for p in peer_nodes)]:
        try:
            inside = ipaddress.IPv4Address(value) in job
        except ValueError:
            inside = False
        if not inside:
            raise SandboxError(
                f"the address {value!r} of {what} is not in the job subnet {job}: every host "
                "of a job takes an address of its subnet"
            )
    for node in peer_nodes.values():
        try:
            ipaddress.IPv4Address(node)
        except ValueError as exc:
            raise SandboxError(f"{node!r} is not a node's IPv4 address") from exc


def _check_conflicts(record: NetworkRecord, live: Sequence[NetworkRecord]) -> None:
    for other in live:
        if other.address == record.address:
            raise SandboxError(
                f"the host address {record.address} is taken by a network of this machine "
                f"still open (process {other.owner_pid})"
            )
        if other.subnet == record.subnet and other.outside != record.outside:
            raise SandboxError(
                f"the subnet {record.subnet} is in use on this machine with outside access "
                f"{'on' if other.outside else 'off'}: a subnet is one job's, with one setting"
            )
