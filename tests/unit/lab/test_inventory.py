"""Roles layout and the inventory file the lab writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner.lab import inventory
from provisioner.lab.lab import LabHost


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (1, [["control-plane", "etcd", "worker"]]),
        (2, [["control-plane", "etcd"], ["worker"]]),
        (3, [["control-plane", "etcd"], ["etcd", "worker"], ["etcd", "worker"]]),
        (5, [["control-plane", "etcd"], ["etcd", "worker"], ["etcd", "worker"], ["worker"],
             ["worker"]]),
    ],
    ids=["one-node-does-everything", "two-nodes-split", "three-etcd-quorum", "extra-workers"],
)
def test_roles_for_node_count(nodes, expected):
    assert inventory.roles_for(nodes) == expected


def _hosts() -> list[LabHost]:
    return [
        LabHost("lab-1", "10.213.0.11", ("control-plane", "etcd")),
        LabHost("lab-2", "10.213.0.12", ("etcd", "worker")),
    ]


def test_render_matches_documented_format(tmp_path: Path):
    text = inventory.render(_hosts(), tmp_path / "id_ed25519")
    assert text == (
        "apiVersion: provisioner.dev/v1alpha1\n"
        "kind: Inventory\n"
        f"ssh: {{user: root, port: 22, key: {tmp_path}/id_ed25519}}\n"
        "hosts:\n"
        "  - {name: lab-1, address: 10.213.0.11, roles: [control-plane, etcd]}\n"
        "  - {name: lab-2, address: 10.213.0.12, roles: [etcd, worker]}\n"
    )


def test_rendered_inventory_is_valid_yaml(tmp_path: Path):
    data = yaml.safe_load(inventory.render(_hosts(), tmp_path / "k"))
    assert data["ssh"] == {"user": "root", "port": 22, "key": f"{tmp_path}/k"}
    assert data["hosts"][1] == {"name": "lab-2", "address": "10.213.0.12",
                                "roles": ["etcd", "worker"]}


def test_per_host_ssh_overrides_are_rendered(tmp_path: Path):
    text = inventory.render(_hosts(), tmp_path / "k", host_ssh={"lab-2": {"port": 2200}})
    data = yaml.safe_load(text)
    assert "ssh" not in data["hosts"][0]
    assert data["hosts"][1]["ssh"] == {"port": 2200}


def test_write_creates_parents_then_reports_no_change(tmp_path: Path):
    path = tmp_path / "inventories" / "lab" / "hosts.yaml"
    assert inventory.write(path, _hosts(), tmp_path / "k") is True
    assert inventory.write(path, _hosts(), tmp_path / "k") is False
    assert inventory.write(path, _hosts()[:1], tmp_path / "k") is True
    assert "lab-2" not in path.read_text()
