"""What the routed network tests run on: a probe program for sandboxes, a sandbox runner on the
real process runtime (each host in a routed network of its own), a namespace standing in for the
outside world, and readers of the machine's links, routes and rules."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from dockyard.engine.local_paths import LocalPaths
from dockyard.runtimes import routed_state
from dockyard.runtimes.base import HostSpec, PreparedImage, RunningHost
from dockyard.runtimes.factory import open_runtime
from dockyard.runtimes.netns import NamespaceConnector, new_namespace
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.routed_network import RoutedNetwork
from dockyard.settings import Settings
from tests.runtimes.output import Output

HOSTS_CIDR = "10.208.0.0/12"
SRC = str(Path(__file__).resolve().parents[2] / "src")
# The program every test host runs (the machine's python3 in the sandbox).
PROBE = r"""
import errno, json, socket, sys, threading, time

def own_address():
    return socket.gethostbyname(socket.gethostname())

def serve(port):
    # As gloo does: listen on the address this host's own name resolves to.
    server = socket.create_server((own_address(), port))
    print(f"listening {server.getsockname()[0]}:{port}", flush=True)
    while True:
        conn, peer = server.accept()
        with conn:
            data = conn.recv(100).decode()
            print(f"got {data} from {peer[0]}", flush=True)
            conn.sendall(f"pong from {socket.gethostname()}".encode())

def send(host, port, message):
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as conn:
                conn.sendall(message.encode())
                print(f"reply {conn.recv(100).decode()}", flush=True)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

def probe(targets):
    results = {}
    for target in targets:
        host, port = target.rsplit(":", 1)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        start = time.monotonic()
        try:
            address = socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)[0][4]
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.5)
                sock.connect(address)
            outcome = "connected"
        except OSError as exc:
            outcome = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        results[target] = [outcome, round(time.monotonic() - start, 2)]
    print("probed " + json.dumps(results), flush=True)

def link_local_ready():
    # The host's own IPv6 link-local address, past duplicate address detection: before that a
    # connection over IPv6 would fail whatever the node allows.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open("/proc/net/if_inet6") as table:
            for line in table:
                fields = line.split()
                tentative = int(fields[4], 16) & 0x40
                if fields[5] == "eth0" and fields[0].startswith("fe80") and not tentative:
                    return
        time.sleep(0.05)
    raise SystemExit("eth0 has no IPv6 link-local address")

mode, *rest = sys.argv[1:]
if mode == "serve":
    serve(int(rest[0]))
elif mode == "exchange":  # serve own_port, send to peer:peer_port, until one message came
    own_port, peer, peer_port = int(rest[0]), rest[1], int(rest[2])
    threading.Thread(target=serve, args=(own_port,), daemon=True).start()
    send(peer, peer_port, f"hello from {socket.gethostname()}")
    time.sleep(30)  # killed by the test once both sides have spoken
elif mode == "probe":
    if any(target.startswith("fe80") for target in rest):
        link_local_ready()
    probe(rest)
"""


def random_port() -> int:
    """Any port: a host has the ports of its own namespace to itself."""
    return random.randint(20000, 60999)


def fresh_subnet() -> ipaddress.IPv4Network:
    """A /24 of the hosts range no network of this machine is in (other test runs may be)."""
    taken = {record.subnet for record in routed_state.read_records(routed_state.STATE_DIR)}
    while True:
        subnet = random.choice(list(ipaddress.IPv4Network(HOSTS_CIDR).subnets(new_prefix=24)))
        if str(subnet) not in taken:
            return subnet


def job_hosts(subnet: ipaddress.IPv4Network, count: int = 2) -> dict[str, str]:
    return {f"algo-{n}": str(subnet[n + 1]) for n in range(1, count + 1)}


def dockyard_rules() -> str:
    """The machine's rules of both tables."""
    return "\n".join(
        line
        for table in ("filter", "nat")
        for line in routed_state.run_output(["iptables", "-w", "-t", table, "-S"])
    )


def rules_of(subnet: object) -> list[str]:
    return [line for line in dockyard_rules().splitlines() if f"{subnet}" in line]


def routes() -> list[str]:
    return routed_state.run_output(["ip", "-4", "-o", "route", "show"])


def links() -> list[str]:
    return routed_state.links_made()


def node_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (`ip -o -4 addr`)."""
    listing = routed_state.run_output(["ip", "-4", "-o", "addr"])
    addresses = [line.split()[3].split("/")[0] for line in listing]
    return [address for address in addresses if not address.startswith("127.")]


class OutsideWorld:
    """A stand-in for the world beyond the node (there is no outside network here): a namespace
    linked to the node at 198.51.100.1/24 (TEST-NET-2), with a server at 198.51.100.2 that notes
    from which address each connection comes."""

    NODE = "198.51.100.1"
    SERVER = "198.51.100.2"
    OTHER_NODE = "198.51.100.9"  # on the node's segment, no machine's: a peer node elsewhere

    def __init__(self) -> None:
        self.link = f"dkw{secrets.token_hex(4)}"  # not dy...: recovery must leave it alone
        self.fd = new_namespace()
        namespace = f"/proc/{os.getpid()}/fd/{self.fd}"
        veth = ["type", "veth", "peer", "name", "eth0", "netns", namespace]
        routed_state.run(["ip", "link", "add", self.link, *veth])
        routed_state.run(["ip", "addr", "add", f"{self.NODE}/24", "dev", self.link])
        routed_state.run(["ip", "link", "set", self.link, "up"])
        routed_state.run(
            ["nsenter", f"--net={namespace}", "ip", "-batch", "-"],
            stdin=f"addr add {self.SERVER}/24 dev eth0\nlink set eth0 up\n",
        )
        self._connector = NamespaceConnector(self.fd)
        self.server = self._connector.socket()
        self.server.setblocking(True)
        self.server.bind((self.SERVER, 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, peer = self.server.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            connection.close()

    def close(self) -> None:
        self.server.close()
        self._connector.close()
        os.close(self.fd)  # the namespace goes, and the veth pair with it


class Sandboxes:
    """Hosts run by the real process runtime, each in a routed network of its own; all closed
    after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.cleanups: list[Callable[[], None]] = []
        runtime = open_runtime(Settings(runtime="process"))
        assert isinstance(runtime, ProcessRuntime)
        self.runtime = runtime
        folder = tmp_path / "allowed" / "image"
        folder.mkdir(parents=True)
        (folder / "probe.py").write_text(PROBE)
        (folder / "Dockerfile").write_text(
            "FROM debian:stable-slim\nCOPY probe.py /opt/program/probe.py\n"
            'ENTRYPOINT ["python3", "/opt/program/probe.py"]\n'
        )
        readable = LocalPaths.of([tmp_path / "allowed"], [Settings().home]).readable
        self.image: PreparedImage = runtime.prepare_image(
            runtime.resolve(str(folder), readable), code=None, purpose="train", log=lambda _: None
        )

    def network(
        self,
        hosts: Mapping[str, str],
        hostname: str,
        *,
        outside: bool = False,
        peer_nodes: Mapping[str, str] = {},
    ) -> RoutedNetwork:
        address = hosts[hostname]
        made = self.runtime.create_routed_network(
            address=address,
            subnet=str(ipaddress.IPv4Network(f"{address}/24", strict=False)),
            hosts=hosts,
            outside=outside,
            hosts_cidr=HOSTS_CIDR,
            peer_nodes=peer_nodes,
        )
        self.cleanups.append(made.close)
        return made

    def start(
        self, network: RoutedNetwork, hostname: str, *arguments: str
    ) -> tuple[RunningHost, Output]:
        folder = self.runtime.prepare_host(self.tmp_path / f"{hostname}-{network.link}", 1 << 30)
        self.cleanups.append(folder.remove)
        spec = HostSpec(
            image=self.image,
            argv=self.image.command(None, list(arguments), "train"),
            hostname=hostname,
            folder=folder,
            network=network,
            hosts=network.host_addresses(sorted(network.hosts)),
        )
        output = Output()
        host = self.runtime.start(spec, output)

        def stop() -> None:
            host.kill()
            host.wait(timeout=10)

        self.cleanups.append(stop)
        return host, output

    def close(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()


def probe_results(output: Output, host: RunningHost) -> dict[str, list[object]]:
    assert host.wait(timeout=60) == 0, output.lines
    [line] = [line for line in output.stdout if line.startswith("probed ")]
    results: dict[str, list[object]] = json.loads(line.removeprefix("probed "))
    return results


def eui64_interface_id(mac: str) -> str:
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    words = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return ":".join(f"{words[i]:02x}{words[i + 1]:02x}" for i in range(0, 8, 2))
