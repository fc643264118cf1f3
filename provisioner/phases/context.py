"""What every phase receives: the spec, the cluster's local state, and how to reach hosts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.engine.session import Session
from provisioner.spec import ClusterSpec, Host
from provisioner.state import ClusterState
from provisioner.workflow import Printer

# Where this project keeps its files on hosts; `delete cluster` removes exactly these.
REMOTE_ROOT = "/opt/provisioner"
REMOTE_VENV = f"{REMOTE_ROOT}/venv"
REMOTE_WHEELHOUSE = f"{REMOTE_ROOT}/wheelhouse"
REMOTE_PKI = "/etc/kubernetes/pki"
REMOTE_ETCD_CONFIG = "/etc/etcd"
ETCD_UNIT = "etcd.service"
ETCD_UNIT_PATH = f"/etc/systemd/system/{ETCD_UNIT}"


@dataclass
class ClusterContext:
    spec: ClusterSpec
    state: ClusterState
    printer: Printer
    dry_run: bool = False
    verbose: bool = False

    def session(self, hosts: Sequence[Host] | None = None) -> Session:
        return Session(
            list(hosts) if hosts is not None else list(self.spec.hosts),
            self.state.known_hosts,
            verbose=self.verbose,
        )
