"""The Vagrant box's pure parts: cache key, MBR, bootloader config, acceleration choice."""

from __future__ import annotations

import struct

import pytest

from provisioner.lab import box, libvirt, rootfs


def test_the_box_is_keyed_by_the_lab_root_and_its_own_recipe(monkeypatch):
    key = box.cache_key()
    assert set(rootfs.PACKAGES) | set(box.VM_PACKAGES) == set(box.packages())
    monkeypatch.setattr(box, "RECIPE_VERSION", box.RECIPE_VERSION + 1)
    assert box.cache_key() != key
    monkeypatch.undo()
    monkeypatch.setenv("PROVISIONER_LAB_EXTRA_PACKAGES", "curl")
    assert box.cache_key() != key


def test_the_mbr_has_one_bootable_linux_partition_from_one_mib_to_the_end():
    disk = 8 << 30
    sector = box.mbr(b"\xeb" * 440, disk)
    assert len(sector) == 512 and sector[:440] == b"\xeb" * 440 and sector[510:] == b"\x55\xaa"
    status, kind, first, count = struct.unpack("<B3xB3xII", sector[446:462])
    assert (status, kind, first * 512) == (0x80, 0x83, 1 << 20)
    assert (first + count) * 512 == disk
    assert sector[462:510] == b"\0" * 48  # no other partitions


def test_the_bootloader_boots_the_root_by_uuid_with_a_serial_console():
    text = box.extlinux_conf("vmlinuz-6.1", "initrd.img-6.1", "1234-abcd")
    assert "LINUX /boot/vmlinuz-6.1" in text and "INITRD /boot/initrd.img-6.1" in text
    assert "root=UUID=1234-abcd" in text and "console=ttyS0" in text
    assert "no_timer_check" in text  # an emulated boot on a busy machine must not panic


@pytest.mark.parametrize("flags, kvm, driver, model", [
    ({"vmx", "sse2"}, True, "kvm", ""),
    ({"svm"}, True, "kvm", ""),
    ({"hypervisor", "sse2"}, True, "qemu", "qemu64"),  # /dev/kvm without hardware support
    ({"vmx"}, False, "qemu", "qemu64"),                # no usable /dev/kvm
])
def test_kvm_only_where_the_cpu_offers_virtualization(flags, kvm, driver, model):
    chosen = libvirt.choose_acceleration(flags, kvm)
    assert (chosen.driver, chosen.cpu_model) == (driver, model)


def test_cpu_flags_are_read_from_cpuinfo():
    assert libvirt.cpu_flags("processor\t: 0\nflags\t\t: fpu vmx sse2\n") == {"fpu", "vmx", "sse2"}
    assert libvirt.cpu_flags("") == set()
