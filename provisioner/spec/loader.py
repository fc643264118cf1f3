"""Loading a cluster file: read, merge the inventory, validate everything, build the model.

`validate_cluster` collects every problem of the cluster file and its inventory in one
pass (schema first, then cross-field and file-system checks); `load_cluster` raises one
`SpecError` listing them all, or returns the typed `ClusterSpec`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from provisioner.spec import checks
from provisioner.spec.files import read_mapping
from provisioner.spec.hosts import HostEntry, SSHLayer, entries_from, resolve_path, ssh_layer
from provisioner.spec.model import (
    Artifacts,
    ClusterSpec,
    EtcdSettings,
    Host,
    Networking,
    RegistrySettings,
    SSHSettings,
)
from provisioner.spec.paths import PATH_ECHO_LIMIT, local_path_problem
from provisioner.spec.problems import Origin, Problem, SpecError, capped, in_reading_order
from provisioner.spec.schema import CLUSTER, INVENTORY
from provisioner.spec.validator import validate_document

CLUSTER_TOP = "apiVersion, kind, metadata and spec"
INVENTORY_TOP = "apiVersion, kind and hosts"


def mapping(doc: Any, key: str) -> dict:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def load_inventory(
    name: str, base: Path, cluster_ssh: SSHLayer
) -> tuple[list[HostEntry] | None, list[Problem]]:
    """Host entries of the inventory named by spec.inventory (None if it cannot be read)."""
    path = resolve_path(name, base)
    problem = local_path_problem(path, "file", shown=capped(name, PATH_ECHO_LIMIT))
    if problem:
        return None, [Problem("spec.inventory", problem)]
    origin = Origin(f"inventory {name}")
    # spec.inventory may name any file by mistake (a key, /etc/shadow): until the file says
    # it is an inventory, problems name it and what was expected, never its contents.
    doc, problems = read_mapping(path, origin.field(), INVENTORY_TOP, echo=False)
    if doc is None:
        return None, problems
    if doc.get("kind") != "Inventory":
        return None, [Problem(origin.field(), "is not an inventory file: expected a YAML "
                                              "mapping with kind: Inventory, apiVersion and "
                                              "hosts")]
    doc, problems = validate_document(doc, INVENTORY, origin)
    if not isinstance(doc.get("hosts"), list):
        return None, problems
    file_ssh = ssh_layer(doc, origin, ("ssh",), path.parent)
    entries = entries_from(doc.get("hosts"), origin, ("hosts",), path.parent, file_ssh,
                           cluster_ssh)
    return entries, problems


def validate_cluster(path: str | Path) -> tuple[ClusterSpec | None, list[Problem], list[Problem]]:
    """(the spec or None, every error, every warning) for the cluster file at `path`."""
    display = str(path)
    source = Path(os.path.abspath(Path(path).expanduser()))
    doc, errors = read_mapping(source, display, CLUSTER_TOP)
    if doc is None:
        return None, errors, []
    doc, errors = validate_document(doc, CLUSTER, Origin())
    spec = mapping(doc, "spec")
    base = source.parent
    cluster_ssh = ssh_layer(doc, Origin(), ("spec", "ssh"), base)
    entries = entries_from(spec.get("hosts"), Origin(), ("spec", "hosts"), base, cluster_ssh,
                           cluster_ssh)
    # host counts only mean something when every list of hosts could be read
    hosts_known = isinstance(doc.get("spec"), dict) and isinstance(spec.get("hosts"), list | None)
    if isinstance(spec.get("inventory"), str) and spec["inventory"]:
        more, problems = load_inventory(spec["inventory"], base, cluster_ssh)
        errors += problems
        hosts_known = hosts_known and more is not None
        entries += more or []
    errors += checks.duplicates(entries)
    if hosts_known:
        errors += checks.roles(entries)
    warnings = checks.roles_warnings(entries)
    errors += checks.networks(spec.get("networking"))
    errors += checks.etcd_ports(spec.get("etcd"))
    errors += checks.key_files(entries)
    errors += checks.wheelhouse(spec.get("artifacts"), base)
    errors = in_reading_order(errors)
    if errors:
        return None, errors, warnings
    return build(doc, source, entries, warnings), [], warnings


def load_cluster(path: str | Path) -> ClusterSpec:
    """The typed spec of the cluster file at `path`; SpecError listing every problem."""
    spec, errors, warnings = validate_cluster(path)
    if errors or spec is None:
        raise SpecError(path, errors, warnings)
    return spec


def build_host(entry: HostEntry) -> Host:
    user, port, key = (entry.ssh(setting) for setting in ("user", "port", "key"))
    assert user is not None and port is not None and key is not None  # validated
    return Host(
        name=entry.get("name"),
        address=entry.get("address"),
        roles=tuple(entry.get("roles")),
        ssh=SSHSettings(user=user.value, port=port.value, key=key.value),
    )


def build(doc: dict, source: Path, entries: list[HostEntry], warnings: list[Problem]
          ) -> ClusterSpec:
    """The model of a document that passed every check (schema defaults already applied)."""
    spec = doc["spec"]
    networking, etcd, artifacts = spec["networking"], spec["etcd"], spec["artifacts"]
    wheelhouse = artifacts.get("wheelhouse")
    return ClusterSpec(
        name=doc["metadata"]["name"],
        source=source,
        hosts=tuple(build_host(entry) for entry in entries),
        networking=Networking(
            pod_cidr=ipaddress.ip_network(networking["podCIDR"]),
            service_cidr=ipaddress.ip_network(networking["serviceCIDR"]),
            dns_domain=networking["dnsDomain"],
        ),
        etcd=EtcdSettings(
            client_port=etcd["clientPort"],
            peer_port=etcd["peerPort"],
            data_dir=etcd["dataDir"],
        ),
        artifacts=Artifacts(
            etcd=artifacts["etcd"],
            wheelhouse=resolve_path(wheelhouse, source.parent) if wheelhouse else None,
        ),
        warnings=tuple(warnings),
        registry=RegistrySettings(enabled=spec["registry"]["enabled"],
                                  port=spec["registry"]["port"]),
    )
