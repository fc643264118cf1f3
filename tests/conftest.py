"""Helpers every suite shares: a free port for a process the test starts, a DevCluster on such ports."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_KINDS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
_handed_out: set[int] = set()


def _ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def free_port(*protocols: str, address: str = "127.0.0.1") -> int:
    """A port free on `address` for each of `protocols` (TCP if none), outside the kernel's
    ephemeral range: a port from bind(0) is in that range, and any outgoing connection can take
    it between this probe and the bind of the process under test. Never the same port twice in
    one session (two ports asked for one process must differ)."""
    ephemeral = _ephemeral_range()
    kinds = [_KINDS[p] for p in protocols or ("tcp",)]
    # from 20000: clear of the components' default ports (10248-10259, 6443, 2379-2380, ...)
    for candidate in random.sample(range(20000, 65536), 5000):
        if candidate in ephemeral or candidate in _handed_out:
            continue
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind((address, candidate))
        except OSError:
            continue
        _handed_out.add(candidate)
        return candidate
    raise AssertionError("no free port outside the ephemeral range")


def dev_cluster(root: Path, **options):
    """A DevCluster whose etcd and API server listen on ports from free_port (its own defaults
    come from bind(0), in the ephemeral range; an API server restarted on its port is then open to
    a client's reconnect taking that port, even by connecting to itself)."""
    from provisioner.dev import DevCluster

    return DevCluster(root, **{"etcd_port": free_port(), "api_port": free_port(), **options})
