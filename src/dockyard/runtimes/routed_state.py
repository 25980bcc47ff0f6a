"""What the routed networks of one machine share, kept in step under one file lock: a record of
each network on disk (its link, host address, job subnet and peer routes, and the process that
owns it), and the guard rules and peer routes made from the live records.

Several processes make networks on one machine (a Ray node's workers, several Ray nodes of a test
cluster, the server): nothing is counted by hand. The records *are* the reference counts: a job
subnet keeps its rules while some live record names it, a peer route while some live record wants
it. Every change takes the lock, drops the records of owners that died (kill -9), and then makes
the rules and routes match the records left, whole: the rules are replaced in one
`iptables-restore` transaction, so a packet never meets half of them."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dockyard.contract.errors import SandboxError

logger = logging.getLogger(__name__)

STATE_DIR = Path("/run/dockyard/routed-networks")  # /run: gone at reboot, as the links are
# Routes dockyard adds carry this protocol number (`ip route ... proto 213`), so a sweep finds
# its own and nothing else; 213 is unassigned in iproute2's rt_protos.
ROUTE_PROTOCOL = "213"
LINK_PREFIX = "dy"
LINK_NAME = re.compile(r"^dy[0-9a-f]{12}$")

INPUT_CHAIN = "DOCKYARD-HOSTS-INPUT"  # traffic from hosts to this node
FORWARD_CHAIN = "DOCKYARD-HOSTS-FORWARD"  # picks the forwarded traffic of the hosts range
POLICY_CHAIN = "DOCKYARD-HOSTS"  # what of that traffic passes
NAT_CHAIN = "DOCKYARD-HOSTS-NAT"  # outside access: masquerade as the node
JUMPS = (
    ("filter", "INPUT", INPUT_CHAIN),
    ("filter", "FORWARD", FORWARD_CHAIN),
    ("nat", "POSTROUTING", NAT_CHAIN),
)
# A host refused by the node sees a closed port (ECONNREFUSED): the node shows nothing of itself.
# A forwarded packet refused says so (EHOSTUNREACH, "administratively prohibited"): a program
# fails at once instead of hanging until its timeout, as it would on a dropped packet.
_REFUSE_INPUT = "-j REJECT --reject-with icmp-port-unreachable"
_REFUSE_FORWARD = "-j REJECT --reject-with icmp-admin-prohibited"
# Link-local addresses are never the outside world: a cloud's metadata service (the node's own
# credentials) answers at 169.254.169.254.
_LINK_LOCAL = "169.254.0.0/16"


@dataclass(frozen=True)
class NetworkRecord:
    """One routed network of this machine, as its owner made it."""

    link: str  # the node end of its veth pair
    address: str  # its host's address
    subnet: str  # its job's (or serving instance's) subnet
    outside: bool
    hosts_cidr: str
    # Peer host address -> the IP of its node, for peers on other machines (routes via them).
    peer_routes: dict[str, str] = field(default_factory=dict)
    owner_pid: int = 0
    # The owner's start time (clock ticks after boot): a pid reused by another process is not it.
    owner_start: int = 0

    def owner_alive(self) -> bool:
        return process_start(self.owner_pid) == self.owner_start

    def save(self, folder: Path) -> None:
        # Whole or not at all: a record half written by a killed process would be unreadable.
        temporary = folder / f".{self.link}.tmp"
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, folder / f"{self.link}.json")

    def remove(self, folder: Path) -> None:
        (folder / f"{self.link}.json").unlink(missing_ok=True)


def this_process() -> tuple[int, int]:
    """This process's pid and start time: the owner a record names."""
    pid = os.getpid()
    start = process_start(pid)
    assert start is not None  # this very process is there
    return pid, start


def process_start(pid: int) -> int | None:
    """A process's start time (field 22 of its stat), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name is in parentheses and may hold anything: fields follow the last ")".
    return int(raw[raw.rindex(b")") + 2 :].split()[19])


@contextlib.contextmanager
def locked(folder: Path = STATE_DIR) -> Iterator[None]:
    """The machine's routed networks, held by this caller alone (across processes and threads:
    each call opens the lock file anew, and flock excludes other open files of it)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_records(folder: Path) -> list[NetworkRecord]:
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(NetworkRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            # Not one of ours, or from an older dockyard: nothing of it can be trusted.
            logger.warning("removing an unreadable routed network record %s", path)
            path.unlink(missing_ok=True)
    return records


def reap_dead(folder: Path) -> list[NetworkRecord]:
    """Drop the records (and links) of owners that died without closing; the live records."""
    live = []
    for record in read_records(folder):
        if record.owner_alive():
            live.append(record)
            continue
        logger.info("removing routed network %s of dead process %s", record.link, record.owner_pid)
        delete_link(record.link)  # usually gone already: its namespace died with its owner
        record.remove(folder)
    return live


def sync(live: Sequence[NetworkRecord], hosts_cidrs: Iterable[str] = ()) -> None:
    """Make the peer routes and the guard rules those of `live`. Routes of dockyard's outside
    every hosts range named (the records' and `hosts_cidrs`) are never touched."""
    _sync_routes(live, {*hosts_cidrs, *(record.hosts_cidr for record in live)})
    if live:
        run(["iptables-restore", "-w", "--noflush"], stdin=render_rules(live))
        for table, chain, target in JUMPS:
            # First in the built-in chain: the hosts' traffic is decided here, before any rule
            # of the machine's own (as Calico's and Docker's chains are).
            if run(["iptables", "-w", "-t", table, "-C", chain, "-j", target], check=False):
                run(["iptables", "-w", "-t", table, "-I", chain, "1", "-j", target])
    else:
        remove_rules()


def render_rules(live: Sequence[NetworkRecord]) -> str:
    """The guard rules of these networks, as iptables-restore input that replaces dockyard's
    chains whole (declaring a chain flushes it)."""
    cidrs = sorted({record.hosts_cidr for record in live})
    subnets = sorted({record.subnet for record in live})
    outside = sorted({(record.subnet, record.hosts_cidr) for record in live if record.outside})
    nodes = sorted({node for record in live for node in record.peer_routes.values()})
    filter_rules = [f":{chain} - [0:0]" for chain in (INPUT_CHAIN, FORWARD_CHAIN, POLICY_CHAIN)]
    # To this node: replies to connections the node made (the router reaching an instance),
    # nothing else. A host's packets always carry its own address (rp_filter on its link):
    # anything else arriving on a host's link is refused too.
    for cidr in cidrs:
        filter_rules += [
            f"-A {INPUT_CHAIN} -s {cidr} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            f"-A {INPUT_CHAIN} -s {cidr} {_REFUSE_INPUT}",
        ]
    filter_rules.append(f"-A {INPUT_CHAIN} -i {LINK_PREFIX}+ {_REFUSE_INPUT}")
    for cidr in cidrs:
        filter_rules += [
            f"-A {FORWARD_CHAIN} -s {cidr} -j {POLICY_CHAIN}",
            f"-A {FORWARD_CHAIN} -d {cidr} -j {POLICY_CHAIN}",
        ]
    filter_rules.append(f"-A {FORWARD_CHAIN} -i {LINK_PREFIX}+ {_REFUSE_FORWARD}")
    # Through this node: replies; a job's own hosts to each other; with outside access, the
    # world, except other jobs, the job's peers' nodes (their Ray services) and link-local.
    filter_rules.append(f"-A {POLICY_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    filter_rules += [f"-A {POLICY_CHAIN} -s {subnet} -d {subnet} -j ACCEPT" for subnet in subnets]
    filter_rules += [f"-A {POLICY_CHAIN} -d {cidr} {_REFUSE_FORWARD}" for cidr in cidrs]
    filter_rules += [f"-A {POLICY_CHAIN} -d {node}/32 {_REFUSE_FORWARD}" for node in nodes]
    filter_rules.append(f"-A {POLICY_CHAIN} -d {_LINK_LOCAL} {_REFUSE_FORWARD}")
    filter_rules += [f"-A {POLICY_CHAIN} -s {subnet} -j ACCEPT" for subnet, _ in outside]
    filter_rules.append(f"-A {POLICY_CHAIN} {_REFUSE_FORWARD}")
    nat_rules = [f":{NAT_CHAIN} - [0:0]"] + [
        f"-A {NAT_CHAIN} -s {subnet} ! -d {cidr} -j MASQUERADE" for subnet, cidr in outside
    ]
    return "\n".join(["*filter", *filter_rules, "COMMIT", "*nat", *nat_rules, "COMMIT", ""])


def remove_rules() -> None:
    """Take dockyard's chains, and the jumps to them, out of the machine's rules: in one
    transaction, made from what is there (a crash between a check and an insert may have left a
    jump twice)."""
    if shutil.which("iptables") is None:
        return  # nothing can have been made
    ours = {target for _, _, target in JUMPS} | {POLICY_CHAIN}
    transaction = []
    for table in ("filter", "nat"):
        listing = run_output(["iptables", "-w", "-t", table, "-S"])
        rules = [words for line in listing if (words := line.split())]
        chains = [words[1] for words in rules if words[0] == "-N" and words[1] in ours]
        jumps = [
            " ".join(["-D", *words[1:]])
            for words in rules
            if words[0] == "-A" and words[1] not in ours and words[-2:] in _jumps_to(ours)
        ]
        if chains or jumps:
            # Flushed before any is deleted: one of ours jumps to another.
            transaction += [f"*{table}", *jumps, *(f"-F {chain}" for chain in chains)]
            transaction += [*(f"-X {chain}" for chain in chains), "COMMIT"]
    if transaction:
        run(["iptables-restore", "-w", "--noflush"], stdin="\n".join([*transaction, ""]))


def _jumps_to(chains: set[str]) -> list[list[str]]:
    return [["-j", chain] for chain in chains]


def _sync_routes(live: Sequence[NetworkRecord], cidrs: set[str]) -> None:
    # The hosts range is unreachable but for its hosts' own routes: a packet to an address of it
    # with no host here (a peer not up yet) is refused, not sent out of the node's default route
    # with a hosts-range source (Calico's blackhole route of a block, likewise).
    ranges_wanted = {record.hosts_cidr for record in live}
    for line in run_output(
        ["ip", "-4", "-o", "route", "show", "proto", ROUTE_PROTOCOL, "type", "unreachable"]
    ):
        cidr = line.split()[1]
        if cidr not in ranges_wanted and cidr in cidrs:
            run(["ip", "route", "del", "unreachable", cidr, "proto", ROUTE_PROTOCOL], check=False)
    for cidr in ranges_wanted:
        run(["ip", "route", "replace", "unreachable", cidr, "proto", ROUTE_PROTOCOL])
    # Each host here by its own link; each peer elsewhere via its node. A peer that has a link
    # here is routed by it whatever a caller said of its node: a route via a node would take the
    # place of the link's (same prefix, same table) and cut the host off.
    present = set(links_made())
    wanted = {r.address: ("dev", r.link) for r in live if r.link in present}
    for record in live:
        for peer, node in record.peer_routes.items():
            wanted.setdefault(peer, ("via", node))
    ranges = [ipaddress.IPv4Network(cidr) for cidr in cidrs]
    made = host_routes_made()
    for destination, how in made.items():
        if wanted.get(destination) != how and any(
            ipaddress.IPv4Address(destination) in network for network in ranges
        ):
            run(["ip", "route", "del", f"{destination}/32", "proto", ROUTE_PROTOCOL], check=False)
    for destination, (kind, target) in wanted.items():
        if made.get(destination) == (kind, target):
            continue
        route = ["ip", "route", "replace", f"{destination}/32", kind, target]
        scope = ["scope", "link"] if kind == "dev" else []
        message = run([*route, *scope, "proto", ROUTE_PROTOCOL], check=False)
        if message and kind == "via":
            raise SandboxError(
                f"cannot route host {destination} via its node {target}: {message}. Hosts of a "
                "cluster reach each other through their nodes' addresses, which must be on one "
                "network segment (no router between nodes)"
            )
        if message:
            raise SandboxError(f"cannot route host {destination} to its link {target}: {message}")


def host_routes_made() -> dict[str, tuple[str, str]]:
    """The /32 routes dockyard made on this machine: host address -> ("dev", its link) for a
    host here, ("via", its node's IP) for a peer elsewhere."""
    routes = {}
    for line in run_output(["ip", "-4", "-o", "route", "show", "proto", ROUTE_PROTOCOL]):
        words = line.split()
        if words[0][:1].isdigit():  # not the range's `unreachable` route
            kind = "via" if "via" in words else "dev"
            routes[words[0].removesuffix("/32")] = (kind, words[words.index(kind) + 1])
    return routes


def links_made() -> list[str]:
    """The node ends of dockyard's veth pairs on this machine."""
    listing = run_output(["ip", "-o", "link", "show", "type", "veth"])
    names = (line.split(":")[1].strip().split("@")[0] for line in listing)
    return [name for name in names if LINK_NAME.match(name)]


def delete_link(link: str) -> None:
    """Delete a veth pair by its node end (its peer goes with it), if it is still there."""
    if LINK_NAME.match(link):
        run(["ip", "link", "del", link], check=False)


def run(argv: list[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run an iproute2 or iptables command; its error message ("" when it succeeded), or a
    SandboxError saying what failed when `check`."""
    _require(argv[0])
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return ""
    message = done.stderr.strip() or f"exit status {done.returncode}"
    if check:
        raise SandboxError(f"{' '.join(argv[:6])} failed: {message}")
    return message


def _require(program: str) -> None:
    if shutil.which(program) is None:
        package = {"ip": "iproute2", "nsenter": "util-linux"}.get(program, "iptables")
        raise SandboxError(
            f"{program} is not installed (apt-get install {package}): routed host networks need it"
        )


def run_output(argv: list[str]) -> list[str]:
    """The lines an iproute2 listing prints (none when it fails: nothing to list)."""
    _require(argv[0])
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout.splitlines()


def local_networks() -> list[ipaddress.IPv4Network]:
    """What this machine takes as its own (its local routing table): every interface address and
    all of 127.0.0.0/8, where several Ray nodes of one machine may have their node IPs."""
    listing = run_output(["ip", "-4", "-o", "route", "show", "table", "local", "type", "local"])
    return [ipaddress.IPv4Network(line.split()[1]) for line in listing]


def is_local(address: str, local: Sequence[ipaddress.IPv4Network]) -> bool:
    return any(ipaddress.IPv4Address(address) in network for network in local)


def remote_peers(
    peer_nodes: Mapping[str, str], local: Sequence[ipaddress.IPv4Network]
) -> dict[str, str]:
    """The peers that run on other machines: a peer whose node is this machine is routed here
    already (its own network's link route)."""
    return {peer: node for peer, node in peer_nodes.items() if not is_local(node, local)}
