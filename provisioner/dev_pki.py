"""The PKI of `provisioner dev apiserver|cluster`: the cluster's own certificate table, issued
for one loopback host.

A development cluster is a one-host cluster whose host plays every role at 127.0.0.1, so its
credentials are the rows the create workflow's phases declare (provisioner.phases.owned), issued
by the same code (provisioner.pki.cluster) into the same layout as a real cluster's local state:
`ca`, `etcd/ca`, `etcd/server-<node>`, `apiserver`, `apiserver-etcd-client`,
`apiserver-kubelet-client`, `front-proxy-ca`, `front-proxy-client`, `sa`, `admin`,
`controller-manager`, `scheduler`, `kubelet-client-<node>`, `kubelet-serving-<node>`. Nothing
here lists a certificate of its own.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from provisioner.pki.table import Row
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

LOOPBACK = "127.0.0.1"
DEV_SERVICE_CIDR = "10.96.0.0/16"
DEV_POD_CIDR = "10.244.0.0/16"


def dev_spec(node_name: str, root: Path) -> ClusterSpec:
    """The one-host cluster a development cluster is: every role, on loopback."""
    host = Host(name=node_name, address=LOOPBACK, roles=("control-plane", "etcd", "worker"),
                ssh=SSHSettings(user="root", port=22, key=root / "unused-ssh-key"))
    networking = Networking(pod_cidr=ipaddress.ip_network(DEV_POD_CIDR),
                            service_cidr=ipaddress.ip_network(DEV_SERVICE_CIDR))
    return ClusterSpec(name="dev", source=root / "dev", hosts=(host,), networking=networking,
                       etcd=EtcdSettings(), artifacts=Artifacts())


def certificate_rows() -> tuple[Row, ...]:
    """The create workflow's certificate table."""
    from provisioner.phases import CREATE_PHASES
    from provisioner.phases.owned import ownership

    return ownership(CREATE_PHASES).certificates


@dataclass(frozen=True)
class DevPKI:
    """Where each credential of a development cluster is, by the table's names."""

    directory: Path
    node_name: str

    def crt(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    @property
    def etcd_server(self) -> str:
        return f"etcd/server-{self.node_name}"

    @property
    def kubelet_client(self) -> str:
        return f"kubelet-client-{self.node_name}"

    @property
    def kubelet_serving(self) -> str:
        return f"kubelet-serving-{self.node_name}"

    def issue(self, spec: ClusterSpec) -> list[str]:
        """Issue every row of the table for `spec` that is missing; the names issued."""
        from provisioner.pki.cluster import ensure_certificates

        return ensure_certificates(self.directory, certificate_rows(), spec)
