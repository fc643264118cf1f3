"""The pyinfra inventory and deploy support behind `roles/`: groups by role, pinned keys."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import yaml

from provisioner.errors import InvalidInputError
from provisioner.roles import DirectOperations, inventory_groups, load_spec
from tests.unit.spec.keys import write_private_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_private_key(tmp_path / "id_test")
    document = {
        "apiVersion": "provisioner.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "roles"},
        "spec": {
            "ssh": {"key": str(tmp_path / "id_test"), "user": "admin", "port": 2222},
            "hosts": [
                {"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]},
                {"name": "w1", "address": "10.0.0.21", "roles": ["worker"]},
            ],
        },
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("PROVISIONER_SPEC", str(path))
    monkeypatch.setenv("PROVISIONER_STATE_DIR", str(tmp_path / "state"))
    return path


def pin(tmp_path: Path) -> Path:
    known = tmp_path / "state" / "clusters" / "roles" / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text("10.0.0.11 ssh-ed25519 AAAA\n")
    return known


def test_groups_follow_roles_and_use_the_pinned_host_keys(spec_file, tmp_path):
    known = pin(tmp_path)
    groups = inventory_groups(load_spec())
    assert [name for name, _ in groups["all_hosts"]] == ["cp1", "w1"]
    assert [name for name, _ in groups["etcd"]] == ["cp1"]
    assert [name for name, _ in groups["control_plane"]] == ["cp1"]
    assert [name for name, _ in groups["worker"]] == ["w1"]
    _, data = groups["worker"][0]
    assert data["ssh_hostname"] == "10.0.0.21"
    assert (data["ssh_user"], data["ssh_port"]) == ("admin", 2222)
    assert data["ssh_known_hosts_file"] == str(known)
    assert data["ssh_strict_host_key_checking"] == "yes"


def test_inventory_module_exposes_the_groups_to_pyinfra(spec_file, tmp_path):
    pin(tmp_path)
    names = runpy.run_path(str(REPO / "inventories" / "pyinfra_inventory.py"))
    assert [name for name, _ in names["etcd"]] == ["cp1"]
    assert [name for name, _ in names["all_hosts"]] == ["cp1", "w1"]


def test_without_pinned_keys_the_inventory_says_which_command_to_run_first(spec_file):
    with pytest.raises(InvalidInputError, match="--only preflight"):
        inventory_groups(load_spec())


def test_direct_operations_name_the_host_and_pass_arguments_through(spec_file):
    host = load_spec().hosts[0]
    calls = []

    def operation(*args, **kwargs):
        calls.append((args, kwargs))
        return "meta"

    assert DirectOperations().op(host, "unit etcd.service", operation, path="/x", mode="644") == "meta"
    assert calls == [((), {"name": "cp1: unit etcd.service", "path": "/x", "mode": "644"})]


def test_direct_operations_put_a_file_with_its_content_and_mode(spec_file, monkeypatch):
    from pyinfra.operations import files

    host = load_spec().hosts[0]
    calls = []
    monkeypatch.setattr(files, "put", lambda **kwargs: calls.append(kwargs) or "meta")

    assert DirectOperations().put(host, "unit etcd.service", "/etc/x.service", "[Unit]\n",
                                  mode="644") == "meta"
    [call] = calls
    assert call["src"].read() == b"[Unit]\n"
    assert (call["name"], call["dest"], call["mode"], call["user"]) == (
        "cp1: unit etcd.service", "/etc/x.service", "644", "root")
