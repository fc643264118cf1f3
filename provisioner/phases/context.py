"""What every phase receives: the spec, the cluster's local state, the workflow, how to reach hosts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from provisioner.engine.session import Session
from provisioner.spec import ClusterSpec, Host
from provisioner.state import ClusterState
from provisioner.workflow import Phase, Printer


def _create_workflow() -> list[Phase]:
    from provisioner.phases import CREATE_PHASES  # the package imports every phase module

    return CREATE_PHASES


@dataclass
class ClusterContext:
    spec: ClusterSpec
    state: ClusterState
    printer: Printer
    verbose: bool = False
    # The create workflow whose declarations say what is owned on hosts (delete reads it too).
    workflow: Sequence[Phase] = field(default_factory=_create_workflow)
    # API clients by (endpoint, credentials, timeout), kept for the run so their connections are
    # reused across phases (provisioner.phases.kubeconfig.admin_client)
    api_clients: dict = field(default_factory=dict, repr=False, compare=False)

    def session(self, hosts: Sequence[Host] | None = None) -> Session:
        return Session(
            list(hosts) if hosts is not None else list(self.spec.hosts),
            self.state.known_hosts,
            verbose=self.verbose,
        )

    @property
    def owned(self):
        """Everything the workflow's phases own (provisioner.phases.owned.Owned)."""
        from provisioner.phases.owned import ownership

        return ownership(self.workflow)
