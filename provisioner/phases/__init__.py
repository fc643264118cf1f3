"""The phases of `create cluster` and `delete cluster`, one module per phase.

`CREATE_PHASES` is the workflow, in order; it fits on one screen on purpose.
"""

from provisioner.phases import etcd, install, pki, preflight, verify
from provisioner.workflow import Phase

CREATE_PHASES: list[Phase] = [
    preflight.PHASE,  # hosts are reachable and fit: OS, python3, systemd, ports, clock, disk
    pki.PHASE,  # certificates exist locally and each host holds its share
    install.PHASE,  # this project runs on each host from /opt/provisioner/venv
    etcd.PHASE,  # every etcd host runs a member of one TLS-only etcd cluster
    verify.PHASE,  # smoke tests pass
]

__all__ = ["CREATE_PHASES"]
