"""The lab provider protocol: every provider implements it, labs reopen with the provider that
made them, and the CLI dispatches through the table without naming providers."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.errors import ProvisionerError
from provisioner.lab import PROVIDERS, Lab, LabHost, LabProvider, list_labs, open_lab
from provisioner.lab import cli as lab_cli
from provisioner.lab.vagrant import VagrantLab

PROTOCOL_METHODS = ("up", "down", "hosts", "status", "node_count", "subnet", "load")


def _write_state(state_root: Path, name: str, **state) -> None:
    directory = state_root / "labs" / name
    directory.mkdir(parents=True)
    (directory / "lab.json").write_text(json.dumps({"name": name, **state}))


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_implements_the_protocol(provider, tmp_path):
    cls = PROVIDERS[provider]
    assert cls.provider == provider
    for method in PROTOCOL_METHODS:
        wanted = inspect.signature(getattr(LabProvider, method))
        have = inspect.signature(getattr(cls, method))
        assert list(have.parameters) == list(wanted.parameters), f"{provider}.{method}"
    lab = cls(cls.default_name, state_root=tmp_path)
    assert isinstance(lab.inventory_path, Path)
    assert (lab.status(), lab.hosts(), lab.node_count(), lab.down()) == ("absent", [], 0, False)


def test_a_lab_reopens_with_the_provider_its_state_records(tmp_path):
    _write_state(tmp_path, "mine", provider="vagrant", nodes=1, subnet_index=4)
    _write_state(tmp_path, "old", nodes=1, subnet_index=5, rootfs="/x")  # before providers
    assert type(open_lab("mine", state_root=tmp_path)) is VagrantLab
    assert type(open_lab("old", state_root=tmp_path)) is Lab
    assert type(open_lab("new", state_root=tmp_path)) is Lab
    assert type(open_lab("new", "vagrant", state_root=tmp_path)) is VagrantLab


def test_without_a_name_each_provider_has_its_own_default_lab(tmp_path):
    assert open_lab(state_root=tmp_path).name == "lab"
    assert open_lab(provider="vagrant", state_root=tmp_path).name == "vagrant"


def test_asking_another_provider_for_an_existing_lab_is_refused(tmp_path):
    _write_state(tmp_path, "mine", provider="vagrant", nodes=1)
    with pytest.raises(ProvisionerError, match="lab mine is a vagrant lab; use `--provider "
                                               "vagrant`"):
        open_lab("mine", "nspawn", state_root=tmp_path)


def test_a_lab_of_an_unknown_provider_is_a_clear_error(tmp_path):
    _write_state(tmp_path, "odd", provider="hyperv")
    with pytest.raises(ProvisionerError, match="provider 'hyperv'"):
        open_lab("odd", state_root=tmp_path)
    assert list_labs(tmp_path) == []


def test_list_labs_opens_each_lab_with_its_provider(tmp_path):
    _write_state(tmp_path, "a", provider="nspawn", subnet_index=0, nodes=3, rootfs="/x")
    _write_state(tmp_path, "b", provider="vagrant", subnet_index=1, nodes=2)
    (tmp_path / "labs" / "not-a-lab").mkdir()
    assert [(lab.name, lab.provider, lab.node_count(), lab.subnet())
            for lab in list_labs(tmp_path)] == [("a", "nspawn", 3, "10.213.0.0/24"),
                                               ("b", "vagrant", 2, "10.213.1.0/24")]


class RecordingProvider:
    """A provider the CLI has never heard of: if `lab up/down/list` work with it, the CLI
    does not branch on provider names."""

    provider = "recording"
    default_name = "rec"
    log: list[tuple] = []

    def __init__(self, name, state_root=None, progress=None):
        self.name, self.dir, self.changes = name, Path(state_root) / "labs" / name, []

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    def load(self):
        return None

    def up(self, nodes, mirror=None):
        self.log.append(("up", self.name, nodes, mirror))
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lab.json").write_text(json.dumps({"provider": self.provider}))
        self.changes = ["made"]
        return [LabHost(f"{self.name}-1", "192.0.2.1", ("etcd",), user="u", key=Path("/k"))]

    def down(self):
        self.log.append(("down", self.name))
        return True

    def hosts(self):
        return []

    def status(self):
        return "running"

    def node_count(self):
        return 1

    def subnet(self):
        return "192.0.2.0/24"


def test_the_cli_drives_any_provider_in_the_table(tmp_path, monkeypatch):
    monkeypatch.setitem(PROVIDERS, RecordingProvider.provider, RecordingProvider)
    monkeypatch.setenv("PROVISIONER_STATE_DIR", str(tmp_path))
    RecordingProvider.log = []
    runner = CliRunner()
    result = runner.invoke(lab_cli.lab, ["up", "--provider", "recording", "--nodes", "2",
                                         "--mirror", "http://mirror.test/debian"])
    assert result.exit_code == 0, result.output
    assert "[lab] rec-1  u@192.0.2.1  [etcd]" in result.output
    listing = runner.invoke(lab_cli.lab, ["list"])
    assert "rec   recording  1      running  192.0.2.0/24" in listing.output
    assert runner.invoke(lab_cli.lab, ["down", "--name", "rec"]).exit_code == 0
    assert RecordingProvider.log == [("up", "rec", 2, "http://mirror.test/debian"),
                                     ("down", "rec")]


def test_an_unknown_provider_on_the_command_line_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISIONER_STATE_DIR", str(tmp_path))
    with pytest.raises(ProvisionerError, match="unknown lab provider 'virtualbox': use nspawn "
                                               "or vagrant"):
        open_lab(None, "virtualbox", state_root=tmp_path)


def test_lab_up_without_nodes_keeps_an_existing_labs_size(tmp_path, monkeypatch):
    monkeypatch.setitem(PROVIDERS, RecordingProvider.provider, RecordingProvider)
    monkeypatch.setenv("PROVISIONER_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(RecordingProvider, "node_count", lambda self: 0)
    RecordingProvider.log = []
    runner = CliRunner()
    assert runner.invoke(lab_cli.lab, ["up", "--provider", "recording"]).exit_code == 0
    monkeypatch.setattr(RecordingProvider, "node_count", lambda self: 1)  # it now has one host
    assert runner.invoke(lab_cli.lab, ["up", "--name", "rec"]).exit_code == 0
    assert RecordingProvider.log == [("up", "rec", 3, None), ("up", "rec", 1, None)]
