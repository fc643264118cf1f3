"""Fields of a running cluster that cannot change in place, checked before anything is touched.

The spec a cluster was made from is in `kube-system/provisioner-config` (`upload-config`). When
the cluster answers, `preflight` compares the new spec with it: a changed pod or service range,
DNS domain or etcd port would break every node and Service already made, so it is refused with
the field's path and what to do instead. A cluster that does not answer yet has nothing to
protect.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml

from provisioner.errors import InvalidInputError
from provisioner.kube.apiclient import ApiError
from provisioner.phases.context import ClusterContext
from provisioner.phases.upload_config import CONFIG_NAME, spec_document
from provisioner.spec import ClusterSpec

# (field path as the spec spells it, how to read it from an uploaded spec document)
IMMUTABLE: tuple[tuple[str, Callable[[dict], object]], ...] = (
    ("spec.networking.podCIDR", lambda d: d["spec"]["networking"]["podCIDR"]),
    ("spec.networking.serviceCIDR", lambda d: d["spec"]["networking"]["serviceCIDR"]),
    ("spec.networking.dnsDomain", lambda d: d["spec"]["networking"]["dnsDomain"]),
    ("spec.etcd.clientPort", lambda d: d["spec"]["etcd"]["clientPort"]),
    ("spec.etcd.peerPort", lambda d: d["spec"]["etcd"]["peerPort"]),
)


def changed_fields(uploaded: dict, spec: ClusterSpec) -> list[tuple[str, object, object]]:
    """(path, running value, new value) for each immutable field the new spec changes."""
    wanted = yaml.safe_load(spec_document(spec))
    changes = []
    for path, read in IMMUTABLE:
        try:
            before = read(uploaded)
        except (KeyError, TypeError):
            continue
        if before != read(wanted):
            changes.append((path, before, read(wanted)))
    return changes


def uploaded_spec(ctx: ClusterContext) -> dict | None:
    """The spec the running cluster was made from, or None when there is no answer."""
    from provisioner.phases.kubeconfig import admin_client

    if not ctx.spec.control_plane_hosts or not (ctx.state.pki_dir / "admin.crt").exists():
        return None
    try:
        found = admin_client(ctx, timeout=5).get(
            f"/api/v1/namespaces/kube-system/configmaps/{CONFIG_NAME}")
    except (ApiError, OSError):
        return None
    if not found:
        return None
    try:
        return yaml.safe_load((found.get("data") or {}).get("ClusterConfiguration", "")) or None
    except yaml.YAMLError:
        return None


def check_immutable(ctx: ClusterContext) -> None:
    uploaded = uploaded_spec(ctx)
    changes = changed_fields(uploaded, ctx.spec) if uploaded else []
    if changes:
        lines = [f"{path}: the running cluster has {before}, the spec says {after}"
                 for path, before, after in changes]
        raise InvalidInputError(
            f"{ctx.spec.source}: fields that cannot change on a running cluster were changed "
            "(nothing was touched):\n  " + "\n  ".join(lines) + "\n  Put the old values back, "
            "or delete the cluster (`provisioner delete cluster -f ...`) and create it anew.")
