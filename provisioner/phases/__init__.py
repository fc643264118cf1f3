"""The phases of `create cluster` and `delete cluster`, one module per phase.

`CREATE_PHASES` is the workflow, in order; it fits on one screen on purpose. A phase module
declares what it owns on hosts (`owns=Owned(...)`: certificate rows, files, directories, units,
data directories) and how it plans; adding a component is its module plus one line here.
`delete cluster` runs `DELETE_PHASES`: each phase's clean-up in reverse order.
"""

from provisioner.phases import etcd, install, pki, preflight, verify
from provisioner.phases.delete import default_cleanup
from provisioner.workflow import Phase, cleanup_phases

CREATE_PHASES: list[Phase] = [
    preflight.PHASE,  # hosts are reachable and fit: OS, python3, systemd, ports, clock, disk
    pki.PHASE,  # certificates exist locally (pki/certs) and each host holds its share (pki/place)
    install.PHASE,  # this project runs on each host from /opt/provisioner/venv
    etcd.PHASE,  # every etcd host runs a member of one TLS-only etcd cluster
    verify.PHASE,  # smoke tests pass
]

DELETE_PHASES: list[Phase] = cleanup_phases(CREATE_PHASES, default_cleanup)

__all__ = ["CREATE_PHASES", "DELETE_PHASES"]
