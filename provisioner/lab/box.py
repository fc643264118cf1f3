"""The Vagrant box this project builds itself: Debian bookworm on a bootable qcow2 disk.

Place: the bottom layer of the Vagrant lab, as rootfs.py is of the nspawn lab. `ensure_box()`
returns the registered box name, building and `vagrant box add`-ing it when missing. The root is
debootstrapped exactly like the nspawn root (rootfs.py: same packages, same per-host stripping:
no SSH host keys, no machine id) plus what a VM needs: a kernel, an fstab, systemd-networkd
with DHCP on every NIC (Vagrant then configures the private network through networkd: with
ifupdown it leaves a failed `ifup@eth1` and a degraded guest), and a `vagrant` user with
passwordless sudo and Vagrant's insecure public key, which Vagrant swaps for a key of its own
per machine on first boot.

The disk: an MBR with one bootable partition at 1 MiB, ext4 filled from the root with
`mkfs.ext4 -d`, and extlinux as the bootloader. The partition is reached through a loop device
at its offset, not through the loop device's partitions: kernels without MSDOS partition
support never show those. Cached under the lab cache, keyed by its inputs, built in a temporary
directory and renamed into place when complete (as rootfs.py does).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.lab import rootfs

BOX_NAME = "provisioner/bookworm"
# The cloud kernel: virtio drivers built in, fewer modules, a faster boot under emulation.
VM_PACKAGES = ("linux-image-cloud-amd64",)
DISK_GIB = 8
PARTITION_START = 1 << 20  # bytes; 2048 sectors, as partitioning tools align
SECTOR = 512
MBR_CODE = Path("/usr/lib/EXTLINUX/mbr.bin")
INSECURE_KEY_DIRS = (Path("/usr/share/rubygems-integration/all/gems"), Path("/usr/share/vagrant"),
                     Path("/opt/vagrant/embedded/gems"))
# Bump when _finish_vm() or the disk layout changes, so cached boxes are rebuilt.
RECIPE_VERSION = 2
TOOLS = {"losetup": "mount", "mkfs.ext4": "e2fsprogs", "extlinux": "extlinux",
         "qemu-img": "qemu-utils", "mount": "mount"}

Progress = Callable[[str], None]


def packages() -> tuple[str, ...]:
    return tuple(dict.fromkeys((*rootfs.packages(), *VM_PACKAGES)))


def cache_key() -> str:
    text = "\n".join([rootfs.cache_key(package_list=packages()), f"box={RECIPE_VERSION}"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def box_path(cache_dir: Path = rootfs.CACHE_DIR) -> Path:
    return cache_dir / f"vagrant-box-{cache_key()}" / "provisioner-bookworm.box"


def mbr(code: bytes, disk_bytes: int) -> bytes:
    """A classic MBR: boot code, one bootable Linux partition from 1 MiB to the end."""
    first = PARTITION_START // SECTOR
    count = disk_bytes // SECTOR - first
    # Status 0x80 (bootable), CHS fields saturated (LBA is what counts), type 0x83 (Linux).
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", first, count)
    return code[:440].ljust(446, b"\0") + entry + b"\0" * 48 + b"\x55\xaa"


def extlinux_conf(kernel: str, initrd: str, uuid: str) -> str:
    # console=ttyS0: the serial console libvirt writes to the lab's console log.
    # no_timer_check: under emulation on a busy machine the kernel's IO-APIC timer check can
    # time out and panic ("IO-APIC + timer doesn't work"); cloud images skip it the same way.
    return (
        "DEFAULT debian\nTIMEOUT 0\nPROMPT 0\n\n"
        f"LABEL debian\n  LINUX /boot/{kernel}\n  INITRD /boot/{initrd}\n"
        f"  APPEND root=UUID={uuid} ro console=tty0 console=ttyS0,115200 net.ifnames=0 no_timer_check\n"
    )


def ensure_box(progress: Progress = lambda _m: None, mirror: str | None = None,
               cache_dir: Path = rootfs.CACHE_DIR) -> str:
    """Build the box if its inputs changed, register it with Vagrant; return the box name."""
    path = build_box(progress, mirror, cache_dir)
    marker = path.parent / "registered"
    if marker.exists() and _box_listed():
        return BOX_NAME
    progress(f"vagrant box add {BOX_NAME} ({path})")
    _run(["vagrant", "box", "add", "--force", "--name", BOX_NAME, str(path)],
         f"registering the box {BOX_NAME} with `vagrant box add`")
    # Any other cached box's registration is now stale.
    for other in cache_dir.glob("vagrant-box-*/registered"):
        other.unlink()
    marker.write_text(cache_key() + "\n")
    return BOX_NAME


def build_box(progress: Progress = lambda _m: None, mirror: str | None = None,
              cache_dir: Path = rootfs.CACHE_DIR) -> Path:
    final = box_path(cache_dir)
    if final.is_file():
        return final
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise ProvisionerError(f"building the Vagrant box needs {', '.join(missing)}; "
                               "run `bash scripts/install-deps.sh`")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".box.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_file():
            return final
        for stale in cache_dir.glob(".box-build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        building = cache_dir / f".box-build-{os.getpid()}"
        progress(f"building the Vagrant box {final.parent.name} (first run only, a few minutes)")
        started = time.monotonic()
        try:
            root = building / "root"
            root.mkdir(parents=True)
            rootfs._debootstrap(root, mirror=mirror, package_list=packages())
            rootfs.finish_root(root)
            _finish_vm(root)
            image = building / "box.img"
            _make_disk(root, building / "disk.raw", image)
            shutil.rmtree(root)
            _pack(image, building / final.name)
            final.parent.mkdir(exist_ok=True)
            os.replace(building / final.name, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        progress(f"Vagrant box built in {time.monotonic() - started:.0f}s: {final}")
    return final


def insecure_public_key() -> str:
    for base in INSECURE_KEY_DIRS:
        for found in sorted(base.glob("vagrant-*/keys/vagrant.pub")) + [base / "keys/vagrant.pub"]:
            if found.is_file():
                return found.read_text().strip()
    raise ProvisionerError("Vagrant's insecure public key (keys/vagrant.pub) was not found; "
                           "is the vagrant package installed? (`bash scripts/install-deps.sh`)")


def _finish_vm(root: Path) -> None:
    """What a VM needs beyond the shared lab root."""
    _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "vagrant"],
         "creating the vagrant user in the box")
    sudoers = root / "etc/sudoers.d/vagrant"
    sudoers.write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    ssh_dir = root / "home/vagrant/.ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(insecure_public_key() + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    _run(["chroot", str(root), "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"],
         "handing ~vagrant/.ssh to the vagrant user")
    # Every NIC asks for DHCP unless Vagrant writes a static file for it (50-vagrant-*.network
    # sorts first); the management network's DHCP is how vagrant-libvirt finds the VM.
    (root / "etc/systemd/network/99-dhcp.network").write_text(
        "[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")


def _make_disk(root: Path, raw: Path, image: Path) -> None:
    size = DISK_GIB << 30
    with open(raw, "wb") as disk:
        disk.truncate(size)
        disk.write(mbr(MBR_CODE.read_bytes(), size))
    with _loop(raw, PARTITION_START, size - PARTITION_START) as device:
        _run(["mkfs.ext4", "-q", "-L", "root", "-O", "^64bit,^metadata_csum,^orphan_file",
              "-d", str(root), device], "making the box's root filesystem")
        uuid = _run(["blkid", "-s", "UUID", "-o", "value", device], "reading its UUID").strip()
        with tempfile.TemporaryDirectory(prefix="provisioner-box-") as mnt:
            _run(["mount", device, mnt], "mounting the box's root filesystem")
            try:
                boot = Path(mnt) / "boot"
                kernel = sorted(p.name for p in boot.glob("vmlinuz-*"))[-1]
                initrd = sorted(p.name for p in boot.glob("initrd.img-*"))[-1]
                (Path(mnt) / "etc/fstab").write_text(
                    f"UUID={uuid} / ext4 errors=remount-ro 0 1\n")
                (boot / "extlinux").mkdir(exist_ok=True)
                (boot / "extlinux/extlinux.conf").write_text(extlinux_conf(kernel, initrd, uuid))
                _run(["extlinux", "--install", str(boot / "extlinux")],
                     "installing the extlinux bootloader")
            finally:
                _run(["umount", mnt], "unmounting the box's root filesystem")
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(image)],
         "converting the disk to qcow2")
    raw.unlink()


@contextmanager
def _loop(path: Path, offset: int, size: int) -> Iterator[str]:
    device = _run(["losetup", "--find", "--show", "--offset", str(offset), "--sizelimit",
                   str(size), str(path)], "attaching a loop device to the box disk").strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], capture_output=True)


def _pack(image: Path, target: Path) -> None:
    """A libvirt box: metadata.json and box.img in a tar archive."""
    metadata = target.parent / "metadata.json"
    metadata.write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                    "virtual_size": DISK_GIB}) + "\n")
    with tarfile.open(target, "w") as archive:
        archive.add(metadata, "metadata.json")
        archive.add(image, "box.img")


def _box_listed() -> bool:
    result = subprocess.run(["vagrant", "box", "list"], capture_output=True, text=True)
    return any(line.split()[:1] == [BOX_NAME] and "libvirt" in line
               for line in result.stdout.splitlines())


def _run(command: list[str], intent: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionerError(f"{intent} failed (exit {result.returncode})",
                               command=" ".join(command),
                               output=(result.stdout + result.stderr)[-4000:])
    return result.stdout


def main() -> None:
    """Build and register the Vagrant box (`make box`)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--mirror", help="Debian mirror (default: this machine's apt sources)")
    args = parser.parse_args()
    try:
        print(ensure_box(lambda message: print(f"[box] {message}", flush=True), args.mirror))
    except ProvisionerError as exc:
        raise SystemExit(f"ERROR: {exc.message}" + (f"\n{exc.output}" if exc.output else ""))

