"""Routed host networks against the real kernel and the real process runtime: each host in a
sandbox of its own, in a RoutedNetwork of its own (as on two Ray nodes; here both nodes are this
machine), reaches its job's peers by name on any port, and nothing else: not the node on any of its
addresses, not another job's hosts, not the outside world when its job is isolated."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import SandboxError
from dockyard.runtimes import routed_state
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.routed_network import (
    GATEWAY_MAC,
    RoutedNetwork,
    reachable_resolv_conf,
    recover_routed_networks,
)
from tests.runtimes.routed_sandboxes import (
    HOSTS_CIDR,
    SRC,
    OutsideWorld,
    Sandboxes,
    dockyard_rules,
    eui64_interface_id,
    fresh_subnet,
    job_hosts,
    links,
    node_addresses,
    probe_results,
    random_port,
    routes,
    rules_of,
)


@pytest.fixture(scope="session", autouse=True)
def _leave_no_rules() -> Iterator[None]:
    """The machine is shared: at the end, nothing of this suite's networks is left, and the
    chains go when no routed network of any process is left."""
    yield
    recover_routed_networks(HOSTS_CIDR)
    if not links() and not routed_state.read_records(routed_state.STATE_DIR):
        routed_state.remove_rules()


@pytest.fixture(scope="module")
def world() -> Iterator[OutsideWorld]:
    made = OutsideWorld()
    yield made
    made.close()


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[Sandboxes]:
    made = Sandboxes(tmp_path)
    yield made
    made.close()


def test_hosts_on_two_networks_reach_each_other_by_name_on_any_port(sandboxes: Sandboxes) -> None:
    """algo-1 and algo-2 each listen on the address their own name resolves to (as gloo binds),
    on a port of their choosing, and each sends the other a message there: both arrive, from the
    sender's own routed address (no NAT between peers)."""
    hosts = job_hosts(fresh_subnet())
    ports = {"algo-1": random_port(), "algo-2": random_port()}
    outputs = {}
    for name, peer in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
        network = sandboxes.network(hosts, name)
        outputs[name] = sandboxes.start(
            network, name, "exchange", str(ports[name]), peer, str(ports[peer])
        )[1]
    for name, peer in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
        output = outputs[name]
        output.wait_for(f"listening {hosts[name]}:{ports[name]}")
        output.wait_for(f"got hello from {peer} from {hosts[peer]}")
        output.wait_for(f"reply pong from {peer}")


def test_the_router_reaches_a_host_by_its_address(sandboxes: Sandboxes) -> None:
    """The connector is a plain socket of the node to the host's routed address (the node's own
    connections to hosts are allowed); once the network is closed it refuses at once."""
    hosts = job_hosts(fresh_subnet(), 1)
    network = sandboxes.network(hosts, "algo-1")
    port = random_port()
    output = sandboxes.start(network, "algo-1", "serve", str(port))[1]
    output.wait_for(f"listening {hosts['algo-1']}:{port}")
    connector = network.connector()
    assert connector.address(port) == (hosts["algo-1"], port)
    with connector.connect(port) as connection:
        connection.sendall(b"ping")
        assert connection.recv(100) == b"pong from algo-1"
    sock = connector.socket()
    assert not sock.getblocking()
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert sock.connect_ex(connector.address(port)) in (0, errno.EINPROGRESS)
    sock.close()
    network.close()
    with pytest.raises(ConnectionRefusedError):
        connector.connect(port)
    with pytest.raises(ConnectionRefusedError):
        connector.socket()


@pytest.mark.parametrize("outside", [False, True], ids=["isolated", "outside"])
def test_a_host_reaches_nothing_of_the_node_nor_other_jobs(
    sandboxes: Sandboxes, world: OutsideWorld, outside: bool
) -> None:
    """From algo-2: its peer algo-1 answers (the control); a server on the node's loopback, the
    node on each of its addresses (eth0's, the world link's), the node's IPv6 link-local address
    on the host's link, and a host of another job all fail, at once or within the probe's short
    timeout, whether or not the job has outside access."""
    loopback_server = socket.create_server(("127.0.0.1", 0))
    node_server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    try:
        loopback_port = loopback_server.getsockname()[1]
        node_port = node_server.getsockname()[1]
        addresses = node_addresses()
        assert OutsideWorld.NODE in addresses and len(addresses) >= 2
        for address in addresses:  # the node's own servers are there: reachable from the node
            socket.create_connection((address, node_port), timeout=2).close()
        socket.create_connection(("127.0.0.1", loopback_port), timeout=2).close()

        hosts = job_hosts(fresh_subnet())
        other_job = job_hosts(fresh_subnet(), 1)
        port = random_port()
        peer_output = sandboxes.start(
            sandboxes.network(hosts, "algo-1", outside=outside), "algo-1", "serve", str(port)
        )[1]
        other_output = sandboxes.start(
            sandboxes.network(other_job, "algo-1", outside=True), "algo-1", "serve", str(port)
        )[1]
        peer_output.wait_for(f"listening {hosts['algo-1']}:{port}")
        other_output.wait_for(f"listening {other_job['algo-1']}:{port}")
        node_link_local = ipaddress.IPv6Address(
            "fe80::" + eui64_interface_id(GATEWAY_MAC)
        )  # the node end's address, were IPv6 on there
        targets = {
            "peer": f"algo-1:{port}",
            "node loopback": f"127.0.0.1:{loopback_port}",
            **{f"node {address}": f"{address}:{node_port}" for address in addresses},
            "node IPv6 link-local": f"{node_link_local}%eth0:{node_port}",
            "other job": f"{other_job['algo-1']}:{port}",
            "absent peer": f"{fresh_subnet()[9]}:{port}",  # no host has it, here or anywhere
        }
        host, output = sandboxes.start(
            sandboxes.network(hosts, "algo-2", outside=outside),
            "algo-2",
            "probe",
            *targets.values(),
        )
        results = probe_results(output, host)
    finally:
        loopback_server.close()
        node_server.close()
    outcomes = {what: results[target][0] for what, target in targets.items()}
    assert outcomes.pop("peer") == "connected", results
    assert outcomes.pop("node IPv6 link-local") != "connected", results
    # The node refuses as a closed port would; another job's host is refused by the node's guard.
    assert outcomes.pop("other job") == "EHOSTUNREACH", results
    assert outcomes.pop("absent peer") == "EHOSTUNREACH", results  # not sent out of the node
    assert set(outcomes.values()) == {"ECONNREFUSED"}, results
    # Refused at once, not left to time out (the IPv6 link-local try may wait for its neighbour).
    ipv4 = [results[target] for what, target in targets.items() if what != "node IPv6 link-local"]
    assert all(seconds < 1.0 for outcome, seconds in ipv4 if outcome != "connected"), results


def test_outside_access_is_masqueraded_and_isolation_refuses_the_world(
    sandboxes: Sandboxes, world: OutsideWorld
) -> None:
    """There is no outside network here: a namespace linked to the node stands in for it. A host
    with outside access reaches its server, which sees the node's address (masqueraded, and the
    rule says so); an isolated host is refused at once, and its subnet has no such rule."""
    outside_hosts = job_hosts(fresh_subnet(), 1)
    isolated_hosts = job_hosts(fresh_subnet(), 1)
    target = f"{OutsideWorld.SERVER}:{world.port}"
    outside_network = sandboxes.network(outside_hosts, "algo-1", outside=True)
    isolated_network = sandboxes.network(isolated_hosts, "algo-1", outside=False)
    outside_subnet = ipaddress.IPv4Network(f"{outside_hosts['algo-1']}/24", strict=False)
    isolated_subnet = ipaddress.IPv4Network(f"{isolated_hosts['algo-1']}/24", strict=False)
    assert f"-A DOCKYARD-HOSTS-NAT -s {outside_subnet} ! -d {HOSTS_CIDR} -j MASQUERADE" in (
        rules_of(outside_subnet)
    )
    assert f"-A DOCKYARD-HOSTS -s {outside_subnet} -j ACCEPT" in rules_of(outside_subnet)
    assert rules_of(isolated_subnet) == [
        f"-A DOCKYARD-HOSTS -s {isolated_subnet} -d {isolated_subnet} -j ACCEPT"
    ]

    host, output = sandboxes.start(isolated_network, "algo-1", "probe", target)
    [outcome, seconds] = probe_results(output, host)[target]
    assert outcome == "EHOSTUNREACH" and isinstance(seconds, float) and seconds < 1.0
    assert world.peers == []

    host, output = sandboxes.start(outside_network, "algo-1", "probe", target)
    assert probe_results(output, host)[target][0] == "connected"
    assert world.peers == [OutsideWorld.NODE]


def test_close_leaves_nothing_and_a_subnet_keeps_its_rules_until_its_last_network(
    world: OutsideWorld,
) -> None:
    """Two hosts of one job on this node, each with the same peer on another node: closing the
    first removes its link and route; the job's rules and the shared peer route stay until the
    second closes too. Nothing (link, route, rule, record) is left then; close is idempotent."""
    runtime = ProcessRuntime()
    subnet = fresh_subnet()
    hosts = job_hosts(subnet, 3)
    remote_peer = {hosts["algo-3"]: OutsideWorld.OTHER_NODE}
    first, second = (
        runtime.create_routed_network(
            address=hosts[name],
            subnet=str(subnet),
            hosts=hosts,
            outside=True,
            hosts_cidr=HOSTS_CIDR,
            peer_nodes=remote_peer,
        )
        for name in ("algo-1", "algo-2")
    )
    peer_route = f"{hosts['algo-3']} via {OutsideWorld.OTHER_NODE} dev {world.link} proto 213"
    try:
        assert {first.link, second.link} <= set(links())
        assert any(line.startswith(f"{hosts['algo-1']} dev {first.link} ") for line in routes())
        assert any(line.startswith(peer_route) for line in routes()), routes()
        assert ["unreachable", HOSTS_CIDR, "proto", "213"] in [line.split() for line in routes()]
        # What the node does with a host's packet to an address no host has: refuse it, not send
        # it out of its default route (this VM's gateway refuses it too, so a probe can't tell).
        absent = str(subnet[9])
        decision = subprocess.run(
            ["ip", "-o", "route", "get", absent, "from", hosts["algo-1"], "iif", first.link],
            capture_output=True,
            text=True,
        )
        assert "No route to host" in decision.stderr, decision
        rules = rules_of(subnet)
        assert len(rules) == 3, rules  # peers, outside, masquerade: once, not once per network
        assert f"-A DOCKYARD-HOSTS -d {OutsideWorld.OTHER_NODE}/32" in dockyard_rules()

        first.close()
        first.close()
        assert first.link not in links() and second.link in links()
        assert not any(line.startswith(f"{hosts['algo-1']} ") for line in routes())
        assert any(line.startswith(peer_route) for line in routes())
        assert rules_of(subnet) == rules
    finally:
        first.close()
        second.close()
    assert second.link not in links()
    destinations = [line.split()[0] for line in routes() if line[0].isdigit()]
    assert not any(
        ipaddress.IPv4Network(destination).subnet_of(subnet) for destination in destinations
    )
    assert rules_of(subnet) == []
    assert OutsideWorld.OTHER_NODE not in dockyard_rules()
    if not routed_state.read_records(routed_state.STATE_DIR):  # no other run's network is open
        assert not any(line.startswith("unreachable") for line in routes())
    assert not any(
        r.subnet == str(subnet) for r in routed_state.read_records(routed_state.STATE_DIR)
    )


def test_peers_on_this_machine_keep_their_own_links_whatever_their_node_ip(
    world: OutsideWorld,
) -> None:
    """Two Ray nodes of one machine may have node IPs 127.0.0.2 and 127.0.0.3 (TESTBED.md): those
    are this machine's, so no route via them is made. And a peer said to run elsewhere while it
    has a network here keeps its link's route: a route via a node would replace it (same prefix)
    and cut the host off. Once that network closes, the route via its node is made."""
    runtime = ProcessRuntime()
    subnet = fresh_subnet()
    hosts = job_hosts(subnet, 3)
    made = []
    try:
        for name, peers in (
            ("algo-1", {hosts["algo-2"]: "127.0.0.3", hosts["algo-3"]: OutsideWorld.OTHER_NODE}),
            ("algo-2", {hosts["algo-1"]: "127.0.0.2"}),
            ("algo-3", {}),
        ):
            made.append(
                runtime.create_routed_network(
                    address=hosts[name],
                    subnet=str(subnet),
                    hosts=hosts,
                    outside=False,
                    hosts_cidr=HOSTS_CIDR,
                    peer_nodes=peers,
                )
            )
        # 127.0.0.3 is this machine: algo-1 wants a route via a node for algo-3 only.
        assert made[0].record.peer_routes == {hosts["algo-3"]: OutsideWorld.OTHER_NODE}
        routed = {line.split()[0]: line.split()[1:3] for line in routes()}
        assert [routed[hosts[name]] for name in ("algo-1", "algo-2", "algo-3")] == [
            ["dev", network.link] for network in made
        ], routes()
        made.pop().close()  # algo-3 leaves this machine: its peer algo-1 says it is elsewhere
        routed = {line.split()[0]: line.split()[1:3] for line in routes()}
        assert routed[hosts["algo-3"]] == ["via", OutsideWorld.OTHER_NODE], routes()
    finally:
        for network in made:
            network.close()
    assert not any(line.split()[0] in hosts.values() for line in routes())


CHILD = """
import sys, time
from dockyard.runtimes.routed_network import RoutedNetwork
hosts = {"algo-1": sys.argv[1], "algo-2": sys.argv[2]}
network = RoutedNetwork.create(
    address=sys.argv[1], subnet=sys.argv[3], hosts=hosts, outside=True,
    hosts_cidr=sys.argv[4], peer_nodes={sys.argv[2]: sys.argv[5]},
)
print(network.link, flush=True)
time.sleep(300)
"""


def test_recovery_removes_what_a_process_killed_with_9_left(world: OutsideWorld) -> None:
    """A process makes a network and is killed with SIGKILL: its namespace, and so its veth pair
    and host route, die with it; its record, peer route and subnet rules stay, until recovery
    removes them. A live network (this process's) is kept."""
    subnet, live_subnet = fresh_subnet(), fresh_subnet()
    hosts, live_hosts = job_hosts(subnet), job_hosts(live_subnet, 1)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            hosts["algo-1"],
            hosts["algo-2"],
            str(subnet),
            HOSTS_CIDR,
            OutsideWorld.OTHER_NODE,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    live = ProcessRuntime().create_routed_network(
        address=live_hosts["algo-1"],
        subnet=str(live_subnet),
        hosts=live_hosts,
        outside=False,
        hosts_cidr=HOSTS_CIDR,
    )
    try:
        assert child.stdout is not None
        link = child.stdout.readline().strip()
        assert link in links()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 5
        while link in links() and time.monotonic() < deadline:
            time.sleep(0.02)  # the kernel frees the namespace of a dead process
        assert link not in links()
        assert len(rules_of(subnet)) == 3
        assert any(line.startswith(f"{hosts['algo-2']} via ") for line in routes())

        recover_routed_networks(HOSTS_CIDR)
        assert rules_of(subnet) == []
        assert not any(line.startswith(f"{hosts['algo-2']} ") for line in routes())
        records = routed_state.read_records(routed_state.STATE_DIR)
        assert [r.link for r in records if r.subnet == str(subnet)] == []
        # The live network is untouched.
        assert live.link in links() and rules_of(live_subnet)
        assert [r.link for r in records if r.subnet == str(live_subnet)] == [live.link]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        live.close()
    assert rules_of(live_subnet) == []


CHURN = """
import sys
from dockyard.runtimes import routed_state
from dockyard.runtimes.routed_network import RoutedNetwork
subnet, cidr, *addresses = sys.argv[1:]
hosts = {f"algo-{n}": address for n, address in enumerate(addresses, 1)}
built_in = ("-A INPUT ", "-A FORWARD ", "-A POSTROUTING ")
for address in addresses:
    network = RoutedNetwork.create(
        address=address, subnet=subnet, hosts=hosts, outside=True, hosts_cidr=cidr
    )
    rules = [
        line for table in ("filter", "nat")
        for line in routed_state.run_output(["iptables", "-w", "-t", table, "-S"])
    ]
    mine = [line for line in rules if subnet in line]
    jumps = [line for line in rules if line.startswith(built_in) and "-j DOCKYARD-" in line]
    if len(mine) != 3 or len(jumps) != 3:
        sys.exit(f"while the network of {address} is open: {mine} {jumps}")
    network.close()
"""


def test_concurrent_networks_of_one_subnet_from_several_processes() -> None:
    """Three processes make and close networks of one subnet at once, ten each: while a network
    is open its subnet's rules, and the jumps to dockyard's chains, are there exactly once (a
    last close removing the chains never meets a create adding to them), and when the last
    network closes they go."""
    subnet = fresh_subnet()
    addresses = list(job_hosts(subnet, 30).values())
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHURN, str(subnet), HOSTS_CIDR, *addresses[i::3]],
            env={**os.environ, "PYTHONPATH": SRC},
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]  # all ended, then judged
    assert [child.returncode for child in children] == [0, 0, 0], errors
    assert rules_of(subnet) == []
    records = routed_state.read_records(routed_state.STATE_DIR)
    assert not any(record.subnet == str(subnet) for record in records)


def test_addresses_outside_the_job_subnet_are_refused_with_a_reason() -> None:
    hosts = {"algo-1": "10.208.1.2", "algo-2": "10.208.2.3"}
    with pytest.raises(SandboxError, match=r"10\.208\.2\.3.* not in the job subnet 10\.208\.1\.0"):
        RoutedNetwork.create(
            address="10.208.1.2",
            subnet="10.208.1.0/24",
            hosts=hosts,
            outside=False,
            hosts_cidr=HOSTS_CIDR,
        )
    with pytest.raises(SandboxError, match=r"10\.99\.1\.0/24 is not in the hosts range"):
        RoutedNetwork.create(
            address="10.99.1.2",
            subnet="10.99.1.0/24",
            hosts={},
            outside=False,
            hosts_cidr=HOSTS_CIDR,
        )


def test_a_host_is_told_only_resolvers_it_can_reach() -> None:
    conf = (
        "# made by hand\nnameserver 127.0.0.53\nnameserver 192.0.2.2\nnameserver 10.255.255.53\n"
        "nameserver fd00::53\nsearch example.internal\noptions edns0\n"
    )
    node = [ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv4Network("192.0.2.2/32")]
    assert reachable_resolv_conf(conf, node) == (
        "nameserver 10.255.255.53\nsearch example.internal\noptions edns0\n"
    )
    assert reachable_resolv_conf("nameserver 127.0.0.53\nsearch x\n", node) == ""
