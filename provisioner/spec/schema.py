"""The cerberus schemas of the cluster file and of the inventory file, as plain data.

Structure, types, allowed values and per-field formats live here; the named `check_with`
rules (`dns_label`, `address`, `cidr`, `data_dir`, ...) are implemented by
`provisioner.spec.validator.SpecValidator`. Checks that span several fields or touch the
file system (duplicates, roles, CIDR overlap, key files) are in `provisioner.spec.checks`.
"""

from __future__ import annotations

from provisioner.spec.model import (
    API_VERSION,
    DEFAULT_DNS_DOMAIN,
    DEFAULT_ETCD_CLIENT_PORT,
    DEFAULT_ETCD_DATA_DIR,
    DEFAULT_ETCD_PEER_PORT,
    DEFAULT_ETCD_SOURCE,
    DEFAULT_POD_CIDR,
    DEFAULT_REGISTRY_PORT,
    DEFAULT_SERVICE_CIDR,
    ROLES,
)

PORT = {"type": "integer", "min": 1, "max": 65535}

SSH = {
    "type": "dict",
    "nullable": True,
    "schema": {
        "user": {"type": "string", "empty": False},
        "port": PORT,
        "key": {"type": "string", "empty": False},
    },
}

HOST = {
    "type": "dict",
    "schema": {
        "name": {"type": "string", "required": True, "check_with": "dns_label"},
        "address": {"type": "string", "required": True, "check_with": "address"},
        "roles": {
            "type": "list",
            "required": True,
            "empty": False,
            "check_with": "unique_items",
            "schema": {"type": "string", "allowed": list(ROLES)},
        },
        "ssh": SSH,
    },
}

HOSTS = {"type": "list", "schema": HOST}
OPTIONAL_HOSTS = {**HOSTS, "nullable": True}

NETWORKING = {
    "type": "dict",
    "default": {},
    "schema": {
        "podCIDR": {"type": "string", "default": DEFAULT_POD_CIDR, "check_with": "cidr"},
        "serviceCIDR": {"type": "string", "default": DEFAULT_SERVICE_CIDR, "check_with": "cidr"},
        "dnsDomain": {"type": "string", "default": DEFAULT_DNS_DOMAIN, "check_with": "dns_name"},
    },
}

ETCD = {
    "type": "dict",
    "default": {},
    "schema": {
        "clientPort": {**PORT, "default": DEFAULT_ETCD_CLIENT_PORT},
        "peerPort": {**PORT, "default": DEFAULT_ETCD_PEER_PORT},
        "dataDir": {
            "type": "string",
            "default": DEFAULT_ETCD_DATA_DIR,
            "check_with": "data_dir",
        },
    },
}

ARTIFACTS = {
    "type": "dict",
    "default": {},
    "schema": {
        "etcd": {"type": "string", "default": DEFAULT_ETCD_SOURCE, "check_with": "etcd_source"},
        "wheelhouse": {"type": "string", "nullable": True, "empty": False, "default": None},
    },
}

REGISTRY = {
    "type": "dict",
    "default": {},
    "schema": {
        "enabled": {"type": "boolean", "default": True},
        "port": {**PORT, "default": DEFAULT_REGISTRY_PORT},
    },
}

CLUSTER = {
    "apiVersion": {"type": "string", "required": True, "allowed": [API_VERSION]},
    "kind": {"type": "string", "required": True, "allowed": ["Cluster"]},
    "metadata": {
        "type": "dict",
        "required": True,
        "schema": {"name": {"type": "string", "required": True, "check_with": "dns_label"}},
    },
    "spec": {
        "type": "dict",
        "required": True,
        "schema": {
            "inventory": {"type": "string", "empty": False},
            "ssh": SSH,
            "hosts": OPTIONAL_HOSTS,
            "networking": NETWORKING,
            "etcd": ETCD,
            "artifacts": ARTIFACTS,
            "registry": REGISTRY,
        },
    },
}

INVENTORY = {
    "apiVersion": {"type": "string", "required": True, "allowed": [API_VERSION]},
    "kind": {"type": "string", "required": True, "allowed": ["Inventory"]},
    "ssh": SSH,
    "hosts": {**HOSTS, "required": True},
}
