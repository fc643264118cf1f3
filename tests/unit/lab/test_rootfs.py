"""The cached lab root: keying, atomic build, what the root must (not) carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import ProvisionerError
from provisioner.lab import rootfs


def test_cache_key_is_stable_and_depends_on_suite_and_packages():
    assert rootfs.cache_key() == rootfs.cache_key()
    assert rootfs.cache_key("trixie") != rootfs.cache_key()
    assert rootfs.cache_key(package_list=rootfs.PACKAGES + ("curl",)) != rootfs.cache_key()
    # Order of the package list does not matter.
    assert rootfs.cache_key(package_list=tuple(reversed(rootfs.PACKAGES))) == rootfs.cache_key()


def test_extra_packages_from_the_environment_get_their_own_cache(monkeypatch):
    plain = rootfs.cache_key()
    monkeypatch.setenv("PROVISIONER_LAB_EXTRA_PACKAGES", "etcd-server, curl systemd")
    assert rootfs.packages()[-2:] == ("etcd-server", "curl")
    assert rootfs.packages().count("systemd") == 1
    assert rootfs.cache_key() != plain


def test_required_packages_are_in_the_root():
    required = {"systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
                "iproute2", "iptables", "procps", "kmod", "ca-certificates"}
    assert required <= set(rootfs.PACKAGES)


def _fake_debootstrap(target: Path, **_options) -> None:
    (target / "etc/ssh").mkdir(parents=True)
    (target / "etc/ssh/ssh_host_ed25519_key").write_text("shared secret")
    (target / "etc/ssh/ssh_host_ed25519_key.pub").write_text("shared")
    (target / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (target / "var/lib/dbus").mkdir(parents=True)
    (target / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    (target / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")


def test_build_is_renamed_into_place_and_strips_per_host_state(tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs, "_debootstrap", _fake_debootstrap)
    messages: list[str] = []
    root = rootfs.ensure_rootfs(tmp_path, progress=messages.append)
    assert root == rootfs.rootfs_path(tmp_path)
    assert list(tmp_path.glob(".build-*")) == []
    assert list((root / "etc/ssh").glob("ssh_host_*")) == []
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "var/lib/dbus/machine-id").is_symlink()
    assert "ssh-keygen -A" in (root / "etc/systemd/system/ssh.service.d/hostkeys.conf").read_text()
    assert (root / "etc/systemd/system/sysinit.target.wants/provisioner-lab-cgroups.service"
            ).is_symlink()
    assert (root / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
            ).is_symlink()
    assert any("debootstrap" in m for m in messages)


def test_a_complete_cache_is_reused_without_building(tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs, "_debootstrap", _fake_debootstrap)
    first = rootfs.ensure_rootfs(tmp_path)

    def must_not_run(target: Path, **_options) -> None:
        raise AssertionError("rebuilt a complete cache")

    monkeypatch.setattr(rootfs, "_debootstrap", must_not_run)
    assert rootfs.ensure_rootfs(tmp_path) == first


def test_a_failed_build_leaves_no_half_cache(tmp_path, monkeypatch):
    def failing(target: Path, **_options) -> None:
        (target / "etc").mkdir(parents=True)
        raise ProvisionerError("debootstrap failed")

    monkeypatch.setattr(rootfs, "_debootstrap", failing)
    with pytest.raises(ProvisionerError):
        rootfs.ensure_rootfs(tmp_path)
    assert not rootfs.rootfs_path(tmp_path).exists()
    assert list(tmp_path.glob(".build-*")) == []


def test_leftovers_of_a_killed_build_are_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs, "_debootstrap", _fake_debootstrap)
    (tmp_path / ".build-old-123").mkdir()
    incomplete = rootfs.rootfs_path(tmp_path)
    incomplete.mkdir()  # no completion marker: not a usable cache
    root = rootfs.ensure_rootfs(tmp_path)
    assert (root / ".provisioner-complete").is_file()
    assert not (tmp_path / ".build-old-123").exists()


def test_missing_debootstrap_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs.shutil, "which", lambda name: None)
    with pytest.raises(ProvisionerError, match="debootstrap is not installed"):
        rootfs._debootstrap(tmp_path / "x")


def test_debootstrap_uses_the_mirror_given(tmp_path, monkeypatch):
    ran: list[list[str]] = []

    class Done:
        returncode, stdout, stderr = 0, "", ""

    monkeypatch.setattr(rootfs.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    monkeypatch.setattr(rootfs.subprocess, "run", lambda command, **_: ran.append(command) or Done)
    rootfs._debootstrap(tmp_path / "x", mirror="http://mirror.example/debian/")
    assert ran[0][-3:] == ["bookworm", str(tmp_path / "x"), "http://mirror.example/debian"]
