"""Support for the pyinfra deploy files under `roles/`: the same operations as the phases.

`provisioner create cluster` is the usual way in; the roles let an operator who knows pyinfra
converge one role by hand with the same code:

    PROVISIONER_SPEC=inventories/lab/cluster.yaml \
        pyinfra inventories/pyinfra_inventory.py roles/etcd.py

The inventory module turns the cluster spec into pyinfra hosts and groups (one group per role)
with the cluster's pinned host keys; a role file builds the phase context from the same spec
and adds the phase's operations for the host pyinfra is running it on. Roles converge steady
state only: bootstrapping or joining etcd members needs the whole cluster in view, which is the
`etcd` phase's job.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from provisioner.engine.session import pyinfra_host_data
from provisioner.errors import InvalidInputError
from provisioner.phases.context import ClusterContext
from provisioner.spec import ClusterSpec, Host, load_cluster
from provisioner.state import ClusterState
from provisioner.workflow import Printer

SPEC_ENV = "PROVISIONER_SPEC"
DEFAULT_SPEC = "inventories/lab/cluster.yaml"


def spec_path() -> str:
    return os.environ.get(SPEC_ENV, DEFAULT_SPEC)


def load_spec() -> ClusterSpec:
    return load_cluster(spec_path())


def inventory_groups(spec: ClusterSpec) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """pyinfra inventory groups by role: `etcd`, `control_plane`, `worker`, and `all_hosts`."""
    known_hosts = ClusterState.for_cluster(spec.name).known_hosts
    if not known_hosts.exists():
        raise InvalidInputError(
            f"no pinned host keys for cluster {spec.name!r} ({known_hosts}); run "
            f"`provisioner create cluster -f {spec_path()} --only preflight` first"
        )

    def entry(host: Host) -> tuple[str, dict[str, Any]]:
        return host.name, pyinfra_host_data(host, known_hosts)

    return {
        "all_hosts": [entry(h) for h in spec.hosts],
        "etcd": [entry(h) for h in spec.etcd_hosts],
        "control_plane": [entry(h) for h in spec.control_plane_hosts],
        "worker": [entry(h) for h in spec.hosts if "worker" in h.roles],
    }


class DirectOperations:
    """Stands in for an engine Session inside a deploy file: operations run as pyinfra calls them.

    Phases add operations with `session.op(host, description, operation, **arguments)`; in a
    deploy file pyinfra already knows the host, so the call becomes `operation(name=..., ...)`.
    """

    def op(self, host: Host, description: str, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return operation(*args, name=f"{host.name}: {description}", **kwargs)

    def put(self, host: Host, description: str, dest: str, content: str | bytes, *, mode: str,
            show: bool = True, user: str = "root", group: str = "root") -> Any:
        """As the engine Session's `put` (pyinfra shows its own diffs in a deploy)."""
        from pyinfra.operations import files

        data = content.encode() if isinstance(content, str) else content
        return self.op(host, description, files.put, src=io.BytesIO(data), dest=dest, mode=mode,
                       user=user, group=group)


def role_context() -> tuple[ClusterContext, Host]:
    """The phase context for the spec, and the spec's entry for the host pyinfra is on."""
    from pyinfra import host as current_host

    spec = load_spec()
    state = ClusterState.for_cluster(spec.name)
    ctx = ClusterContext(spec=spec, state=state, printer=Printer(quiet=True))
    me = next((h for h in spec.hosts if h.name == current_host.name), None)
    if me is None:
        raise InvalidInputError(f"pyinfra host {current_host.name!r} is not in {spec_path()}")
    return ctx, me
