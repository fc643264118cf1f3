"""libvirt daemons: started only when nothing runs them, stopped only when this lab started them
and no VM is left (daemon processes and virsh faked at the process boundary)."""

from __future__ import annotations

import signal

import pytest

from provisioner.errors import ProvisionerError
from provisioner.lab import libvirt


@pytest.fixture
def daemons(monkeypatch, tmp_path):
    """Pid files that point at fake pids; records signals and commands instead of sending."""
    state = {"running": {}, "commands": [], "killed": [], "domains": [], "answering": False}
    pid_files = {name: tmp_path / f"{name}.pid" for name in libvirt.DAEMONS}
    monkeypatch.setattr(libvirt, "DAEMONS", pid_files)
    monkeypatch.setattr(libvirt, "SOCKET", tmp_path / "libvirt-sock")
    monkeypatch.setattr(libvirt, "DAEMON_START_TIMEOUT", 0.0)
    monkeypatch.setattr(libvirt, "_systemd_is_init", lambda: False)
    monkeypatch.setattr(libvirt, "_pid", lambda path: state["running"].get(path.stem))
    monkeypatch.setattr(libvirt, "answering", lambda: state["answering"])
    monkeypatch.setattr(libvirt, "domains", lambda: state["domains"])

    def run(command, intent):
        state["commands"].append(command)
        state["running"][command[0]] = 1000 + len(state["running"])
        if command[0] == "libvirtd":
            (tmp_path / "libvirt-sock").touch()
            state["answering"] = True

    monkeypatch.setattr(libvirt, "_run", run)
    monkeypatch.setattr(libvirt.os, "kill", lambda pid, sig: state["killed"].append((pid, sig)))
    return state


def test_daemons_are_started_directly_without_a_service_manager(daemons):
    assert libvirt.ensure_daemons() == ["virtlogd", "libvirtd"]
    assert daemons["commands"] == [["virtlogd", "-d"], ["libvirtd", "-d"]]


def test_a_running_libvirt_is_left_alone(daemons, tmp_path):
    (tmp_path / "libvirt-sock").touch()
    daemons["answering"] = True
    assert libvirt.ensure_daemons() == []
    assert daemons["commands"] == []


def test_a_libvirtd_that_never_answers_is_one_clear_error(daemons, monkeypatch):
    monkeypatch.setattr(libvirt, "_run", lambda command, intent: daemons["commands"].append(
        command))
    with pytest.raises(ProvisionerError, match="libvirtd did not answer"):
        libvirt.ensure_daemons()


def test_daemons_the_lab_started_stop_when_no_vm_is_left(daemons):
    libvirt.ensure_daemons()
    assert libvirt.stop_daemons(["virtlogd", "libvirtd"]) == ["libvirtd", "virtlogd"]
    assert [sig for _, sig in daemons["killed"]] == [signal.SIGTERM, signal.SIGTERM]


def test_daemons_keep_running_while_any_vm_exists_or_when_others_started_them(daemons):
    libvirt.ensure_daemons()
    daemons["domains"] = ["someone-elses-vm"]
    assert libvirt.stop_daemons(["virtlogd", "libvirtd"]) == []
    daemons["domains"] = []
    assert libvirt.stop_daemons([]) == []
    assert daemons["killed"] == []
