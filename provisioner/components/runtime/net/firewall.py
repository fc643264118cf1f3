"""iptables rules for one bridge network (``runtime.net``).

All rules live in chains of our own, named after the bridge, so one network's teardown is a flush
and delete of its chains plus removal of the jumps to them, and two networks (the default ``prt0``
and a test bridge) never touch each other's rules:

- nat ``PRT-<bridge>-POST`` (from POSTROUTING): outbound NAT for the subnet leaving by any other
  interface; MASQUERADE of loopback-sourced traffic into the bridge (published ports reached as
  ``127.0.0.1:PORT``, see ``ports``); MASQUERADE of DNATed traffic from the subnet back into the
  bridge (hairpin: a container reaching itself or a neighbour through a published host port must
  see replies come back through the host, where conntrack undoes the DNAT).
- nat ``PRT-<bridge>-DNAT`` (from PREROUTING and OUTPUT, for local destinations): one DNAT rule per
  published port, tagged ``-m comment --comment container=<id>`` so release finds them by scanning.
- filter ``PRT-<bridge>-FWD`` (first in FORWARD, since hosts may default to DROP): replies and
  published (DNATed) connections into the bridge, and anything leaving it.
- raw ``PRT-<bridge>-RAW`` (first in PREROUTING): drops packets from the bridge addressed to
  127.0.0.0/8. ``route_localnet`` (needed for loopback publishing) also switches off the
  kernel's martian check on the bridge, so without this a container writing raw frames could
  reach host services bound to 127.0.0.1 (CVE-2020-8558). raw PREROUTING runs before nat, and
  replies to published-port connections still carry the gateway address there (conntrack
  undoes the MASQUERADE later), so publishing is unaffected; the host's own loopback clients
  come through OUTPUT, not through the bridge.

There is no maintained Python library for iptables, so this drives the ``iptables`` binaries; the
per-container rules go in one ``iptables-restore --noflush`` transaction so they land all or none.

``BridgeIsolation`` keeps groups of containers on one bridge apart (Docker's user-defined
networks, which share the daemon's bridge): ebtables ``PRT-<bridge>-ISO`` (from the bridge
FORWARD chain) lets a member's port talk to the ports of members of its groups and drops the
rest of its forwarded frames, both ways. Bridged frames never pass iptables without
br_netfilter, so this filters at layer 2 by port (host veth name), whatever the protocol
(ARP, IPv4, IPv6) or addresses; the host and the outside go through the bridge device, not
FORWARD, and stay reachable. A published port reached from another container through the
host is the exception: with br_netfilter its DNATed frames are bridged straight to the
target's port, so mangle ``PRT-<bridge>-PUB`` (from PREROUTING) marks them (bit
``PUBLISHED_MARK``: frames to a local address, and every frame of a DNATed connection) and the
isolation chain lets marked frames pass, as Docker lets any container reach published ports.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from pyroute2 import Conntrack
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from .errors import NetworkError


def _run(
    args: list[str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise NetworkError(f"{args[0]} is not installed; install the iptables package") from exc
    if check and done.returncode != 0:
        raise NetworkError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def iptables(table: str, *rule: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["iptables", "-w", "-t", table, *rule], check=check)


def restore(table: str, lines: list[str]) -> None:
    """Apply rule lines (``-A ...``/``-D ...``) to a table in one transaction."""
    if lines:
        transaction = "\n".join([f"*{table}", *lines, "COMMIT", ""])
        _run(["iptables-restore", "-w", "--noflush"], stdin=transaction)


@dataclass(frozen=True)
class DnatRule:
    container_id: str
    protocol: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int

    def spec(self) -> list[str]:
        match_ip = [] if self.host_ip == "0.0.0.0" else ["-d", f"{self.host_ip}/32"]
        return [
            *match_ip, "-p", self.protocol, "-m", self.protocol, "--dport", str(self.host_port),
            "-m", "comment", "--comment", f"container={self.container_id}",
            "-j", "DNAT", "--to-destination", f"{self.container_ip}:{self.container_port}",
        ]


class BridgeFirewall:
    def __init__(self, bridge: str, subnet: str):
        self.bridge = bridge
        self.subnet = subnet
        self.post_chain = f"PRT-{bridge}-POST"
        self.dnat_chain = f"PRT-{bridge}-DNAT"
        self.forward_chain = f"PRT-{bridge}-FWD"
        self.raw_chain = f"PRT-{bridge}-RAW"

    def _base_rules(self) -> list[tuple[str, str, list[str], bool]]:
        """(table, chain, rule, insert-first) for every static rule, jumps included."""
        br, post, fwd, raw = self.bridge, self.post_chain, self.forward_chain, self.raw_chain
        local_dst = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat_chain]
        return [
            ("nat", post, ["-s", self.subnet, "!", "-o", br, "-j", "MASQUERADE"], False),
            ("nat", post, ["-s", "127.0.0.0/8", "-o", br, "-j", "MASQUERADE"], False),
            ("nat", post, ["-s", self.subnet, "-o", br, "-m", "conntrack", "--ctstate", "DNAT",
                           "-j", "MASQUERADE"], False),
            ("filter", fwd, ["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                             "-j", "ACCEPT"], False),
            ("filter", fwd, ["-o", br, "-m", "conntrack", "--ctstate", "DNAT",
                             "-j", "ACCEPT"], False),
            ("filter", fwd, ["-i", br, "-j", "ACCEPT"], False),
            ("raw", raw, ["-i", br, "-d", "127.0.0.0/8", "-j", "DROP"], False),
            ("nat", "POSTROUTING", ["-j", post], False),
            ("nat", "PREROUTING", local_dst, False),
            ("nat", "OUTPUT", local_dst, False),
            ("filter", "FORWARD", ["-j", fwd], True),
            ("raw", "PREROUTING", ["-j", raw], True),
        ]

    def _chains(self) -> list[tuple[str, str]]:
        return [("nat", self.post_chain), ("nat", self.dnat_chain), ("filter", self.forward_chain),
                ("raw", self.raw_chain)]

    def ensure(self) -> None:
        """Create the chains and static rules that are missing; present ones are left alone."""
        for table, chain in self._chains():
            if iptables(table, "-n", "-L", chain, check=False).returncode != 0:
                iptables(table, "-N", chain)
        for table, chain, rule, first in self._base_rules():
            if iptables(table, "-C", chain, *rule, check=False).returncode != 0:
                iptables(table, *(["-I", chain, "1"] if first else ["-A", chain]), *rule)

    def teardown(self) -> None:
        """Remove the jumps to our chains, then the chains; absent pieces are fine."""
        BridgeIsolation(self.bridge).teardown()
        for table, chain, rule, _ in self._base_rules():
            if chain in {"POSTROUTING", "PREROUTING", "OUTPUT", "FORWARD"}:
                while iptables(table, "-C", chain, *rule, check=False).returncode == 0:
                    iptables(table, "-D", chain, *rule)
        for table, chain in self._chains():
            if iptables(table, "-n", "-L", chain, check=False).returncode == 0:
                iptables(table, "-F", chain)
                iptables(table, "-X", chain)

    def add_dnat(self, rules: list[DnatRule]) -> None:
        restore("nat", [" ".join(["-A", self.dnat_chain, *rule.spec()]) for rule in rules])

    def remove_dnat(self, container_id: str) -> None:
        """Delete every DNAT rule tagged with the container, found by scanning the chain
        (the endpoint state may be lost)."""
        restore("nat", ["-D" + line[2:] for line in self._dnat_lines_of(container_id)])

    def dnat_rule_count(self, container_id: str) -> int:
        return len(self._dnat_lines_of(container_id))

    def _dnat_lines_of(self, container_id: str) -> list[str]:
        listed = iptables("nat", "-S", self.dnat_chain, check=False)
        if listed.returncode != 0:
            return []  # chain gone: nothing of the container's is left
        return [line for line in listed.stdout.splitlines()
                if line.startswith("-A ") and _owner(shlex.split(line)) == container_id]


def forget_connections(container_ip: str) -> None:
    """Drop conntrack entries answered by a released container's address.

    Otherwise a UDP client that keeps sending to a published port (DNS, syslog) stays pinned by
    its conntrack entry to the old address after the port is published again elsewhere.
    """
    try:
        with Conntrack() as tracker:
            for entry in list(tracker.dump_entries(tuple_reply=NFCTAttrTuple(saddr=container_ip))):
                try:
                    tracker.delete(entry)
                except NetlinkError:
                    pass  # expired meanwhile
    except (NetlinkError, OSError):
        pass  # no conntrack in this kernel: nothing is tracked, nothing to forget


def published_ports() -> list[tuple[str, str, int, str]]:
    """(protocol, host ip, host port, owning container) for DNAT rules of every runtime network."""
    listed = _run(["iptables-save", "-t", "nat"], check=False)
    found = []
    for line in listed.stdout.splitlines():
        words = shlex.split(line)
        if len(words) < 2 or words[0] != "-A" or not (
            words[1].startswith("PRT-") and words[1].endswith("-DNAT")
        ):
            continue
        proto = _after(words, "-p")
        port = _after(words, "--dport")
        if proto and port and port.isdigit():
            host_ip = (_after(words, "-d") or "0.0.0.0/0").split("/")[0]
            found.append((proto, host_ip, int(port), _owner(words) or "?"))
    return found


def _owner(words: list[str]) -> str | None:
    """The container id of a rule's ``container=<id>`` comment (iptables-nft quotes it)."""
    comment = _after(words, "--comment")
    if comment and comment.startswith("container="):
        return comment.removeprefix("container=")
    return None


def _after(words: list[str], flag: str) -> str | None:
    try:
        return words[words.index(flag) + 1]
    except (ValueError, IndexError):
        return None


PUBLISHED_MARK = "0x40000"   # clear of kube-proxy's 0x4000 and the network agent's 0x8000


class BridgeIsolation:
    """Isolation between groups of a bridge's ports (``ebtables-nft``, from the iptables
    package): ``apply`` rewrites the chain in one ``ebtables-restore --noflush`` transaction."""

    def __init__(self, bridge: str):
        self.bridge = bridge
        self.chain = f"PRT-{bridge}-ISO"
        self.mark_chain = f"PRT-{bridge}-PUB"

    def _mark_rules(self) -> list[tuple[str, list[str]]]:
        mark = ["-j", "MARK", "--or-mark", PUBLISHED_MARK]
        return [(self.mark_chain, ["-m", "addrtype", "--dst-type", "LOCAL", *mark]),
                (self.mark_chain, ["-m", "conntrack", "--ctstate", "DNAT", *mark]),
                ("PREROUTING", ["-i", self.bridge, "-j", self.mark_chain])]

    def rules(self, groups: dict[str, set[str]]) -> list[str]:
        """``groups``: host veth name -> the groups its container is in. Ports in no group
        are not listed and not isolated from each other (the daemon's plain bridge)."""
        ports = sorted(port for port, member_of in groups.items() if member_of)
        allowed = [f"-A {self.chain} -i {port} -o {peer} -j RETURN"
                   for port in ports for peer in ports
                   if peer != port and groups[port] & groups[peer]]
        dropped = [f"-A {self.chain} {flag} {port} -j DROP" for port in ports
                   for flag in ("-i", "-o")]
        published = [f"-A {self.chain} --mark {PUBLISHED_MARK}/{PUBLISHED_MARK} -j RETURN"]
        return published + allowed + dropped

    def apply(self, groups: dict[str, set[str]]) -> None:
        if iptables("mangle", "-n", "-L", self.mark_chain, check=False).returncode != 0:
            iptables("mangle", "-N", self.mark_chain)
        for chain, rule in self._mark_rules():
            if iptables("mangle", "-C", chain, *rule, check=False).returncode != 0:
                iptables("mangle", "-A", chain, *rule)
        lines = ["*filter", f":{self.chain} RETURN", *self.rules(groups), "COMMIT", ""]
        _run(["ebtables-nft-restore", "--noflush"], stdin="\n".join(lines))
        if f"-j {self.chain}" not in self._forward_rules():
            _run(["ebtables-nft", "-t", "filter", "-I", "FORWARD", "1", "-j", self.chain])

    def teardown(self) -> None:
        """The jumps and the chains; absent pieces (or an absent ebtables) are fine."""
        try:
            while f"-j {self.chain}" in self._forward_rules():
                _run(["ebtables-nft", "-t", "filter", "-D", "FORWARD", "-j", self.chain])
            for flag in ("-F", "-X"):
                _run(["ebtables-nft", "-t", "filter", flag, self.chain], check=False)
        except NetworkError:
            pass      # without ebtables no isolation chain was ever made
        jump = self._mark_rules()[-1][1]
        while iptables("mangle", "-C", "PREROUTING", *jump, check=False).returncode == 0:
            iptables("mangle", "-D", "PREROUTING", *jump)
        for flag in ("-F", "-X"):
            iptables("mangle", flag, self.mark_chain, check=False)

    def installed_rules(self) -> list[str]:
        listed = _run(["ebtables-nft", "-t", "filter", "-L", self.chain], check=False)
        return [line for line in listed.stdout.splitlines() if line.startswith("-")]

    @staticmethod
    def _forward_rules() -> list[str]:
        listed = _run(["ebtables-nft", "-t", "filter", "-L", "FORWARD"], check=False)
        return [line.strip() for line in listed.stdout.splitlines()]
