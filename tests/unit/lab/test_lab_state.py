"""Lab naming, state layout, listing and the repo inventory path (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.errors import ProvisionerError
from provisioner.lab import Lab, list_labs
from provisioner.lab.base import default_state_root, repo_inventory_path


def _write_state(state_root: Path, lab_name: str, **state) -> None:
    directory = state_root / "labs" / lab_name
    directory.mkdir(parents=True)
    (directory / "lab.json").write_text(json.dumps(state))


@pytest.mark.parametrize("name", ["lab", "e2e", "my-lab-2"])
def test_valid_names(name, tmp_path):
    assert Lab(name, tmp_path).name == name


@pytest.mark.parametrize("name", ["", "Lab", "a_b", "-x", "a/b", "x" * 41])
def test_invalid_names_are_rejected(name, tmp_path):
    with pytest.raises(ProvisionerError, match="invalid lab name"):
        Lab(name, tmp_path)


def test_state_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISIONER_STATE_DIR", str(tmp_path))
    assert default_state_root() == tmp_path
    lab = Lab("lab")
    assert lab.dir == tmp_path / "labs" / "lab"
    assert lab.key_path == tmp_path / "labs" / "lab" / "id_ed25519"
    assert lab.inventory_path == tmp_path / "labs" / "lab" / "inventory.yaml"


def test_hosts_and_machines_follow_the_recorded_state(tmp_path):
    _write_state(tmp_path, "demo", name="demo", provider="nspawn", subnet_index=5, nodes=4,
                 rootfs="/var/cache/provisioner/lab/x")
    lab = Lab("demo", tmp_path)
    hosts = lab.hosts()
    assert [(h.name, h.address) for h in hosts] == [
        ("demo-1", "10.213.5.11"), ("demo-2", "10.213.5.12"),
        ("demo-3", "10.213.5.13"), ("demo-4", "10.213.5.14")]
    assert hosts[3].roles == ("worker",)
    machine = lab.machines()[0]
    assert machine.bridge == "plab5" and machine.gateway == "10.213.5.1"
    assert machine.host_dir == tmp_path / "labs" / "demo" / "hosts" / "demo-1"
    assert machine.log_path == tmp_path / "labs" / "demo" / "demo-1.log"
    assert lab.subnet() == "10.213.5.0/24"
    assert lab.status() == "stopped"  # nothing runs for it
    assert lab.node_count() == 4


def test_status_of_an_unknown_lab_is_absent(tmp_path):
    lab = Lab("nothing", tmp_path)
    assert lab.status() == "absent"
    assert lab.hosts() == []
    assert lab.subnet() == "-"


def test_down_of_an_unknown_lab_says_so(tmp_path):
    assert Lab("nothing", tmp_path).down() is False


def test_list_labs_includes_both_providers(tmp_path):
    _write_state(tmp_path, "a", name="a", provider="nspawn", subnet_index=0, nodes=3,
                 rootfs="/x")
    _write_state(tmp_path, "vagrant", name="vagrant", provider="vagrant", root="/repo", nodes=3)
    (tmp_path / "labs" / "not-a-lab").mkdir()
    labs = list_labs(tmp_path)
    assert [(lab.name, lab.provider) for lab in labs] == [("a", "nspawn"),
                                                          ("vagrant", "vagrant")]
    assert list_labs(tmp_path / "empty") == []


def test_repo_inventory_path_only_for_the_default_lab(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert repo_inventory_path("lab", "lab", nested) == tmp_path / "inventories/lab/hosts.yaml"
    assert repo_inventory_path("vagrant", "vagrant", nested) == (
        tmp_path / "inventories/vagrant/hosts.yaml")
    assert repo_inventory_path("e2e", "lab", nested) is None


def test_repo_inventory_path_without_a_repo(tmp_path):
    assert repo_inventory_path("lab", "lab", tmp_path) is None


def test_an_nspawn_up_of_the_vagrant_lab_is_refused(tmp_path):
    _write_state(tmp_path, "vagrant", name="vagrant", provider="vagrant", root="/r", nodes=3)
    with pytest.raises(ProvisionerError, match="--provider vagrant"):
        Lab("vagrant", tmp_path)._ensure_state(Lab("vagrant", tmp_path).load(), 3, Path("/x"))


class _FakeMachine:
    def __init__(self, tmp_path: Path, running: bool):
        self.name = "demo-2"
        self.address = "10.213.9.12"
        self.log_path = tmp_path / "demo-2.log"
        self.log_path.write_text("boot line 1\nboot line 2\n")
        self.running = running

    def is_running(self) -> bool:
        return self.running


def test_boot_timeout_names_the_host_and_its_log(tmp_path, monkeypatch):
    import provisioner.lab.lab as lab_module

    monkeypatch.setattr(lab_module, "BOOT_TIMEOUT", 0.0)
    monkeypatch.setattr(lab_module, "ssh_banner", lambda address: False)
    machine = _FakeMachine(tmp_path, running=True)
    with pytest.raises(ProvisionerError) as caught:
        Lab("demo", tmp_path)._wait_for_ssh([machine], [machine])
    assert "demo-2 (10.213.9.12) did not answer SSH" in caught.value.message
    assert str(machine.log_path) in caught.value.message
    assert "boot line 2" in caught.value.output


def test_a_host_dying_while_booting_is_reported_at_once(tmp_path, monkeypatch):
    import provisioner.lab.lab as lab_module

    monkeypatch.setattr(lab_module, "ssh_banner", lambda address: False)
    machine = _FakeMachine(tmp_path, running=False)
    with pytest.raises(ProvisionerError, match="demo-2 stopped while booting"):
        Lab("demo", tmp_path)._wait_for_ssh([machine], [machine])


def test_hosts_answering_ssh_end_the_wait(tmp_path, monkeypatch):
    import provisioner.lab.lab as lab_module

    monkeypatch.setattr(lab_module, "ssh_banner", lambda address: True)
    Lab("demo", tmp_path)._wait_for_ssh([_FakeMachine(tmp_path, running=True)], [])
