"""The cached Debian root every local lab host boots from.

Place: the bottom layer of the local lab. `ensure_rootfs()` returns the path of a debootstrapped
Debian root under /var/cache/provisioner/lab/, building it on first use. Hosts never write to it:
each host mounts it read-only as the lower layer of its own overlay (see machine.py), so the root
must hold nothing host-specific (no SSH host keys, no machine id, no hostname, no address).

The cache is keyed by a hash of the suite, the package list and the post-install recipe version,
so changing any of them builds a new root instead of silently reusing a stale one. A root is built
in a temporary directory next to its final place and renamed into place only when complete, so an
interrupted debootstrap never leaves a half cache behind; a file lock keeps two concurrent `lab up`
runs from building the same root twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from provisioner.errors import ProvisionerError
from provisioner.lab import sources

log = logging.getLogger(__name__)

SUITE = "bookworm"
CACHE_DIR = Path(os.environ.get("PROVISIONER_LAB_CACHE", "/var/cache/provisioner/lab"))

# What a lab host needs to act like a plain server the provisioner can take over: systemd as init,
# sshd, python3 (pyinfra facts, the project's venv), and the tools a container runtime shells out
# to. iputils-ping is for operators debugging the lab network.
PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-venv",
    "iproute2",
    "iptables",
    "procps",
    "kmod",
    "ca-certificates",
    "iputils-ping",
    "sudo",           # so tests and users can provision through a non-root SSH user
    "busybox-static",  # the container runtime's offline busybox image and pod sandboxes
)



def packages() -> tuple[str, ...]:
    """PACKAGES plus `$PROVISIONER_LAB_EXTRA_PACKAGES` (comma or space separated): lab hosts
    have no internet, so anything hosts must have from Debian goes into the cached root."""
    extra = os.environ.get("PROVISIONER_LAB_EXTRA_PACKAGES", "").replace(",", " ").split()
    return tuple(dict.fromkeys((*PACKAGES, *extra)))


# Bump when finish_root() changes what it writes, so existing caches are rebuilt.
RECIPE_VERSION = 4

# Debian's ssh.service runs `sshd -t` before starting, which fails without host keys. The cached
# root carries none (hosts must not share keys), so each host generates its own on first boot.
_SSH_HOSTKEYS_DROPIN = """\
# Written by provisioner lab: each lab host generates its own SSH host keys on first boot.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""


# nspawn mounts the cgroup v1 controllers read-only inside the container. It also gives the
# container its own cgroup namespace, so there the controllers' root is this host's own subtree on
# the operator machine (provisioner-lab/<lab>/<host>, see machine.py): making them writable lets a
# container runtime on the host create cgroups and set limits without exposing anything else.
# Without a cgroup namespace the root would be the operator's, so the script then does nothing.
_CGROUPS_SCRIPT = """\
#!/bin/sh
# Written by provisioner lab: make this lab host's cgroup v1 controllers writable.
set -eu
if grep -q ':/provisioner-lab/' /proc/1/cgroup; then
    echo "no cgroup namespace: leaving cgroup controllers read-only" >&2
    exit 0
fi
awk '$3 == "cgroup" && $4 !~ /name=/ {print $2}' /proc/self/mounts | while read -r target; do
    mount -o remount,bind,rw "$target"
done
"""

_CGROUPS_UNIT = """\
[Unit]
Description=Writable cgroup controllers for a container runtime (provisioner lab)
DefaultDependencies=no
ConditionVirtualization=container
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/provisioner-lab-cgroups

[Install]
WantedBy=sysinit.target
"""


def cache_key(suite: str = SUITE, package_list: tuple[str, ...] | None = None) -> str:
    """A short stable hash naming one root: same inputs, same cached root."""
    chosen = packages() if package_list is None else package_list
    text = "\n".join([suite, f"recipe={RECIPE_VERSION}", *sorted(chosen)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rootfs_path(cache_dir: Path = CACHE_DIR) -> Path:
    return cache_dir / f"{SUITE}-{cache_key()}"


def ensure_rootfs(
    cache_dir: Path = CACHE_DIR, progress: Callable[[str], None] = lambda _msg: None,
    mirror: str | None = None,
) -> Path:
    """Return the cached root, building it (debootstrap, ~1-2 minutes) when it is missing.

    `mirror` overrides the Debian mirror (see sources.py); it is not part of the cache key:
    every mirror serves the same packages."""
    final = rootfs_path(cache_dir)
    if _is_complete(final):
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `lab up` may be building the same root
        if _is_complete(final):
            return final
        _remove_stale_builds(cache_dir)
        building = cache_dir / f".build-{final.name}-{os.getpid()}"
        progress(f"building the lab root {final.name} with debootstrap (first run only)")
        started = time.monotonic()
        try:
            _debootstrap(building, mirror=mirror)
            finish_root(building)
            (building / ".provisioner-complete").write_text(cache_key() + "\n")
            if final.exists():  # an incomplete leftover from an older, killed run
                shutil.rmtree(final)
            os.rename(building, final)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        progress(f"lab root built in {time.monotonic() - started:.0f}s: {final}")
    return final


def _is_complete(root: Path) -> bool:
    return (root / ".provisioner-complete").is_file()


def _remove_stale_builds(cache_dir: Path) -> None:
    # Called under the lock: any .build-* directory belongs to a run that died mid-build.
    for stale in cache_dir.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _debootstrap(target: Path, mirror: str | None = None,
                 package_list: tuple[str, ...] | None = None) -> None:
    if shutil.which("debootstrap") is None:
        raise ProvisionerError(
            "debootstrap is not installed; run `bash scripts/install-deps.sh` (needs root)"
        )
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(package_list or packages())}",
        SUITE,
        str(target),
        sources.debian_mirror(SUITE, mirror),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionerError(
            f"building the lab root with debootstrap failed (exit {result.returncode})",
            command=" ".join(command),
            output=(result.stdout + result.stderr)[-4000:],
        )


def finish_root(root: Path) -> None:
    """Strip what must be per host and add what every host boots with."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    dropin = root / "etc/systemd/system/ssh.service.d/hostkeys.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(_SSH_HOSTKEYS_DROPIN)
    # An empty machine-id means "not set": each host gets its own written into its upper layer.
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    (root / "etc/hostname").write_text("localhost\n")
    script = root / "usr/local/sbin/provisioner-lab-cgroups"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(_CGROUPS_SCRIPT)
    script.chmod(0o755)
    (root / "etc/systemd/system/provisioner-lab-cgroups.service").write_text(_CGROUPS_UNIT)
    _symlink(
        root / "etc/systemd/system/sysinit.target.wants/provisioner-lab-cgroups.service",
        "/etc/systemd/system/provisioner-lab-cgroups.service",
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    # networkd brings up host0 with the address each host's upper layer configures.
    _symlink(wants / "systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service")
    _symlink(
        root / "etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
        "/lib/systemd/system/systemd-networkd.socket",
    )
    # Units that cannot work in a container without a console or with no internet only make
    # `systemctl is-system-running` report degraded: mask them.
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer",
                 "apt-daily-upgrade.timer", "getty@tty1.service"):
        _symlink(root / "etc/systemd/system" / unit, "/dev/null")
    # Lab hosts have no internet; an empty resolv.conf avoids slow DNS timeouts in sshd/sudo.
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("")
    apt_cache = root / "var/cache/apt/archives"
    for deb in apt_cache.glob("*.deb"):
        deb.unlink()


def _symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
