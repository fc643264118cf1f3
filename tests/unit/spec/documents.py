"""Cluster and inventory documents the spec tests start from and change."""

from __future__ import annotations

import copy
from typing import Any

API = "provisioner.dev/v1alpha1"

MINIMAL: dict[str, Any] = {
    "apiVersion": API,
    "kind": "Cluster",
    "metadata": {"name": "lab"},
    "spec": {
        "ssh": {"key": "id_test"},
        "hosts": [{"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]}],
    },
}


def minimal() -> dict[str, Any]:
    """A fresh copy of the smallest valid cluster document (key `id_test` next to it)."""
    return copy.deepcopy(MINIMAL)


def host(name: str, address: str, *roles: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "address": address, "roles": list(roles), **more}


def inventory(hosts: list[dict], **top: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Inventory", **top, "hosts": hosts}
