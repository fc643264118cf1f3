"""Lab hosts keep their SSH host keys and subnet across `lab down` / `lab up`."""

from __future__ import annotations

import stat

from provisioner.lab import hostkeys
from provisioner.lab.machine import Machine
from provisioner.lab.network import pick_subnet_index


def test_keys_are_generated_once_and_then_reused(tmp_path):
    first = hostkeys.ensure(tmp_path, "lab", "lab-1")
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert sorted(before) == sorted(f"ssh_host_{t}_key{s}" for t in hostkeys.KEY_TYPES
                                    for s in ("", ".pub"))
    again = hostkeys.ensure(tmp_path, "lab", "lab-1")
    assert {p.name: p.read_bytes() for p in again.iterdir()} == before
    other = hostkeys.ensure(tmp_path, "lab", "lab-2")
    assert (other / "ssh_host_ed25519_key.pub").read_bytes() != before["ssh_host_ed25519_key.pub"]
    assert stat.S_IMODE(first.stat().st_mode) == 0o700


def test_a_half_written_pair_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setattr(hostkeys, "KEY_TYPES", ("ed25519",))  # RSA keys take seconds to make
    directory = hostkeys.ensure(tmp_path, "lab", "lab-1")
    (directory / "ssh_host_ed25519_key.pub").unlink()
    hostkeys.ensure(tmp_path, "lab", "lab-1")
    assert (directory / "ssh_host_ed25519_key.pub").is_file()


def test_an_nspawn_host_boots_with_the_kept_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(hostkeys, "KEY_TYPES", ("ed25519",))
    keys = hostkeys.ensure(tmp_path / "state", "lab", "lab-1")
    machine = Machine("lab", "lab-1", "10.213.9.11", "10.213.9.1", "plab9", tmp_path / "host",
                      tmp_path / "rootfs", tmp_path / "lab-1.log")
    machine.prepare("ssh-ed25519 AAAA test", keys)
    etc_ssh = machine.upper / "etc" / "ssh"
    for key_type in hostkeys.KEY_TYPES:
        private = etc_ssh / f"ssh_host_{key_type}_key"
        assert private.read_bytes() == (keys / private.name).read_bytes()
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert stat.S_IMODE(private.with_suffix(".pub").stat().st_mode) == 0o644


def test_a_lab_gets_its_old_subnet_back_when_it_is_free(tmp_path):
    assert hostkeys.last_subnet(tmp_path, "lab") is None
    hostkeys.remember_subnet(tmp_path, "lab", 7)
    assert hostkeys.last_subnet(tmp_path, "lab") == 7
    assert pick_subnet_index([0, 1], [], preferred=7) == 7
    assert pick_subnet_index([0, 7], [], preferred=7) == 1
    assert pick_subnet_index([0], ["10.213.7.1/24"], preferred=7) == 1
