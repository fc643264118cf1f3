"""The bridge network a daemon gives its containers (``runtime.net.Network``).

Ties the parts together: ``links`` (bridge, veth), ``netns`` (namespace handles), ``ipam``
(addresses), ``firewall`` (NAT, forwarding, DNAT) and ``ports`` (checks). Each container's
endpoint (address, veth, netns path, published ports) is saved as
``<state_dir>/<bridge>/endpoints/<id>.json`` next to the IPAM directory, so a restarted daemon
re-adopts its containers with ``Network.load``. ``release`` does not depend on that file: it
derives the veth name, scans the DNAT chain for the container's tag and asks IPAM by owner, so it
also cleans up after a crash that lost or never wrote the endpoint.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass, field

from .. import paths
from . import links, netns
from .errors import NetworkError
from .firewall import BridgeFirewall, DnatRule, forget_connections
from .ipam import HostLocalIPAM
from .ports import PortMapping, check_ports_free

DEFAULT_BRIDGE = "prt0"
DEFAULT_SUBNET = "10.88.0.0/16"
DEFAULT_STATE_DIR = os.path.join(paths.DEFAULT_ROOT, "network")
HOST_NETWORK = "host"

_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def uses_host_network(mode: str | None) -> bool:
    """True for ``--network host``: the container shares the host's namespace, nothing to set up."""
    return mode == HOST_NETWORK


def net_namespace_entry(mode: str | None, netns_path: str | None = None) -> dict[str, str | None]:
    """The ``net`` part of ContainerSpec.namespaces: host -> absent key (share the host's)."""
    if uses_host_network(mode):
        return {}
    if netns_path is None:
        raise NetworkError(f"network mode {mode!r} needs a network namespace path")
    return {"net": netns_path}


@dataclass
class Attachment:
    ip: str
    mac: str
    gateway: str
    prefixlen: int
    host_veth: str


@dataclass
class Endpoint:
    container_id: str
    netns_path: str
    attachment: Attachment | None = None
    ports: list[PortMapping] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "container_id": self.container_id,
            "netns_path": self.netns_path,
            "attachment": asdict(self.attachment) if self.attachment else None,
            "ports": [port.to_dict() for port in self.ports],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Endpoint:
        attached = data.get("attachment")
        return cls(
            container_id=data["container_id"],
            netns_path=data["netns_path"],
            attachment=Attachment(**attached) if attached else None,
            ports=[PortMapping.from_dict(port) for port in data.get("ports", [])],
        )

    @property
    def netns_alive(self) -> bool:
        return netns.is_handle(self.netns_path)


class Network:
    def __init__(
        self,
        bridge: str = DEFAULT_BRIDGE,
        subnet: str = DEFAULT_SUBNET,
        state_dir: str = DEFAULT_STATE_DIR,
        netns_dir: str | None = None,
    ):
        if not bridge or len(bridge) > links.IFNAMSIZ or "/" in bridge or " " in bridge:
            raise NetworkError(
                f"bridge name {bridge!r} is not a valid interface name (1-15 characters)"
            )
        try:
            self.subnet = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise NetworkError(f"network subnet {subnet!r} is not an IPv4 network: {exc}") from None
        self.bridge = bridge
        self.gateway = self.subnet.network_address + 1
        self.directory = os.path.join(state_dir, bridge)
        self.endpoints_dir = os.path.join(self.directory, "endpoints")
        self.netns_dir = netns_dir or paths.netns_dir()
        self.ipam = HostLocalIPAM(os.path.join(self.directory, "ipam"), self.subnet)
        self.firewall = BridgeFirewall(bridge, str(self.subnet))
        self._bridge_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._mtu: int | None = None

    # -- daemon start ------------------------------------------------------------------------

    @classmethod
    def load(cls, **options) -> Network:
        """A Network for a (re)starting daemon: bridge and rules ensured, live endpoints' port
        rules put back if missing (e.g. after someone flushed iptables); see ``endpoints``."""
        network = cls(**options)
        network.ensure_bridge()
        for endpoint in network.endpoints().values():
            if endpoint.attachment and endpoint.ports and endpoint.netns_alive:
                wanted = network._dnat_rules(endpoint.container_id, endpoint.attachment.ip,
                                             endpoint.ports)
                if network.firewall.dnat_rule_count(endpoint.container_id) != len(wanted):
                    network.firewall.remove_dnat(endpoint.container_id)
                    network.firewall.add_dnat(wanted)
        return network

    def endpoints(self) -> dict[str, Endpoint]:
        """Saved endpoints by container id; ``netns_alive`` False means release it."""
        found = {}
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(self.endpoints_dir)):
                if name.endswith(".json"):
                    with open(os.path.join(self.endpoints_dir, name)) as f:
                        endpoint = Endpoint.from_dict(json.load(f))
                    found[endpoint.container_id] = endpoint
        return found

    # -- the contract ------------------------------------------------------------------------

    def ensure_bridge(self) -> None:
        """Bridge up with the gateway address, ip_forward on, NAT and forwarding rules present."""
        with self._bridge_lock:
            self._mtu = links.ensure_bridge_link(self.bridge, self.gateway, self.subnet.prefixlen)
            links.write_sysctl("net.ipv4.ip_forward", "1")
            links.write_sysctl(f"net.ipv4.conf.{self.bridge}.route_localnet", "1")
            self.firewall.ensure()
            os.makedirs(self.endpoints_dir, mode=0o700, exist_ok=True)

    def create_netns(self, container_id: str) -> str:
        """A new network namespace with lo up, pinned at <netns_dir>/<id>; returns that path."""
        self._check_id(container_id)
        path = os.path.join(self.netns_dir, container_id)
        if os.path.exists(path):
            raise NetworkError(
                f"network namespace {path} already exists for container {container_id}; "
                "release the container's network first"
            )
        netns.create_handle(path)
        self._save(Endpoint(container_id, path))
        return path

    def attach(self, container_id: str, netns_path: str) -> Attachment:
        """Put the netns on the bridge: veth, eth0 with an IPAM address, default route."""
        self._check_id(container_id)
        if self._mtu is None:
            self.ensure_bridge()
        endpoint = self._load(container_id) or Endpoint(container_id, netns_path)
        if endpoint.attachment is not None:
            raise NetworkError(
                f"container {container_id} is already attached to {self.bridge} "
                f"as {endpoint.attachment.ip}; release it first"
            )
        if not netns.is_handle(netns_path):
            raise NetworkError(
                f"network namespace {netns_path} of container {container_id} does not exist"
            )
        host_veth = links.host_veth_name(self.bridge, container_id)
        links.delete_link(host_veth)  # a leftover of a crash between attach and saving the endpoint
        address = self.ipam.allocate(container_id)
        try:
            mac = links.create_veth(links.VethSpec(
                host_name=host_veth, bridge=self.bridge, netns_path=netns_path, address=address,
                prefixlen=self.subnet.prefixlen, gateway=self.gateway, mtu=self._mtu or 1500,
            ))
            endpoint.netns_path = netns_path
            endpoint.attachment = Attachment(str(address), mac, str(self.gateway),
                                             self.subnet.prefixlen, host_veth)
            self._save(endpoint)
        except BaseException as exc:
            links.delete_link(host_veth)
            self.ipam.release(container_id)
            if isinstance(exc, NetworkError):
                raise
            raise NetworkError(
                f"cannot attach container {container_id} to bridge {self.bridge}: {exc}"
            ) from exc
        return endpoint.attachment

    def publish(self, container_id: str, ip: str, ports: list[PortMapping]) -> None:
        """DNAT each host port to ip:container_port; all or nothing, PortInUse names the port."""
        self._check_id(container_id)
        if not ports:
            return
        with self._publish_lock:  # the free-port check and the add must not interleave
            check_ports_free(container_id, ports)
            self.firewall.add_dnat(self._dnat_rules(container_id, ip, ports))
            endpoint = self._load(container_id) or Endpoint(
                container_id, os.path.join(self.netns_dir, container_id))
            endpoint.ports = [*endpoint.ports, *ports]
            self._save(endpoint)

    def release(self, container_id: str) -> None:
        """Remove port rules, veth, address and netns handle; fine to call for anything, twice."""
        self._check_id(container_id)
        endpoint = self._load(container_id)
        address = self.ipam.allocations().get(container_id)
        self.firewall.remove_dnat(container_id)
        links.delete_link(links.host_veth_name(self.bridge, container_id))
        if address:
            forget_connections(address)
        self.ipam.release(container_id)
        handles = {os.path.join(self.netns_dir, container_id)}
        if endpoint is not None and os.path.dirname(endpoint.netns_path) == self.netns_dir:
            handles.add(endpoint.netns_path)  # only handles we made; never someone else's mount
        for handle in handles:
            netns.remove_handle(handle)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._endpoint_file(container_id))

    def teardown_all(self) -> None:
        """Remove every endpoint, the bridge, our chains and state (uninstall, tests)."""
        for container_id in self.endpoints():
            self.release(container_id)
        for port in links.bridge_ports(self.bridge):
            links.delete_link(port)
        links.delete_link(self.bridge)
        self.firewall.teardown()
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(self.netns_dir)  # only if empty: other networks' handles may share it
        self._mtu = None

    # -- helpers -----------------------------------------------------------------------------

    def _dnat_rules(self, container_id: str, ip: str, ports: list[PortMapping]) -> list[DnatRule]:
        return [DnatRule(container_id, p.protocol, p.host_ip, p.host_port, ip, p.container_port)
                for p in ports]

    @staticmethod
    def _check_id(container_id: str) -> None:
        if not isinstance(container_id, str) or not _VALID_ID.match(container_id):
            raise NetworkError(
                f"container id {container_id!r} cannot name a network namespace: use letters, "
                "digits, '_', '.', '-' (at most 128)"
            )

    def _endpoint_file(self, container_id: str) -> str:
        return os.path.join(self.endpoints_dir, f"{container_id}.json")

    def _load(self, container_id: str) -> Endpoint | None:
        try:
            with open(self._endpoint_file(container_id)) as f:
                return Endpoint.from_dict(json.load(f))
        except FileNotFoundError:
            return None

    def _save(self, endpoint: Endpoint) -> None:
        os.makedirs(self.endpoints_dir, mode=0o700, exist_ok=True)
        path = self._endpoint_file(endpoint.container_id)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w") as f:
            json.dump(endpoint.to_dict(), f)
        os.replace(tmp, path)
