"""Published ports (``-p HOST:CONTAINER``) for the bridge network (``runtime.net``).

How a published port is reached:
- from other machines: DNAT in nat PREROUTING for local destinations;
- from the host itself, on any of its addresses including ``127.0.0.1``: DNAT in nat OUTPUT. A
  packet from 127.0.0.1 may only be routed out of the bridge with
  ``net.ipv4.conf.<bridge>.route_localnet=1``, and it is MASQUERADEd to the gateway address on its
  way into the bridge so the container can answer it.

We chose these kernel rules over a userland proxy for loopback because containers outlive the daemon
(it may restart or be upgraded while they run): kernel rules keep forwarding with the daemon gone,
where a proxy in the daemon would drop every loopback connection. They also cost no copy per byte
and keep the client's address visible to the container for non-loopback clients. The price,
route_localnet on the bridge only, is limited to that one interface.

Before publishing, each host port is checked: against our own rules (any runtime network's DNAT
chain) and by binding it (a host process listening there). A taken port raises ``PortInUse`` and
nothing is added.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from .errors import NetworkError, PortInUse
from .firewall import published_ports

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise NetworkError(f"port protocol {self.protocol!r} is not supported; use tcp or udp")
        for what, port in (("host", self.host_port), ("container", self.container_port)):
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise NetworkError(f"{what} port {port!r} is not a port number (1-65535)")
        try:
            ipaddress.IPv4Address(self.host_ip)
        except ValueError:
            raise NetworkError(
                f"host address {self.host_ip!r} in a port mapping is not an IPv4 address"
            ) from None

    @property
    def label(self) -> str:
        return f"{self.host_port}/{self.protocol}"

    def overlaps(self, protocol: str, host_ip: str, host_port: int) -> bool:
        """Whether a mapping of (protocol, host_ip, host_port) would catch the same packets."""
        if (self.protocol, self.host_port) != (protocol, host_port):
            return False
        return self.host_ip == host_ip or "0.0.0.0" in (self.host_ip, host_ip)

    def to_dict(self) -> dict:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, data: dict) -> PortMapping:
        return cls(host_port=int(data["host_port"]), container_port=int(data["container_port"]),
                   protocol=data.get("protocol", "tcp"), host_ip=data.get("host_ip", "0.0.0.0"))


def check_ports_free(container_id: str, ports: list[PortMapping]) -> None:
    """Raise PortInUse for the first requested port that is taken; checks everything first."""
    for index, mapping in enumerate(ports):
        for earlier in ports[:index]:
            if earlier.overlaps(mapping.protocol, mapping.host_ip, mapping.host_port):
                raise PortInUse(
                    f"port {mapping.label} is requested twice for container {container_id}; "
                    "publish each host port once"
                )
    published = published_ports()
    for mapping in ports:
        for protocol, host_ip, host_port, owner in published:
            if mapping.overlaps(protocol, host_ip, host_port):
                raise PortInUse(
                    f"port {mapping.label} is already in use on the host: container {owner} "
                    f"publishes it; choose another host port for container {container_id} "
                    "or remove that container"
                )
        _bind_test(container_id, mapping)


def _bind_test(container_id: str, mapping: PortMapping) -> None:
    kind = socket.SOCK_STREAM if mapping.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            # Lets the bind ignore TIME_WAIT leftovers; a listening socket still conflicts.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((mapping.host_ip, mapping.host_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {mapping.label} is already in use on the host "
                    f"({mapping.host_ip}:{mapping.host_port} is bound by another process); "
                    f"choose another host port for container {container_id} or stop that process"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise NetworkError(
                    f"cannot publish port {mapping.label} for container {container_id}: "
                    f"{mapping.host_ip} is not an address of this host"
                ) from None
            raise
