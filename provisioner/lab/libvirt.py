"""The libvirt side of the Vagrant lab: daemons, /dev/kvm, acceleration, pools and networks.

Place: vagrant.py calls this before `vagrant up` and after `vagrant destroy`; vagrant-libvirt
does the rest. Facts it encodes:
- Without systemd as PID 1 nothing starts libvirt: `virtlogd -d` and `libvirtd -d` are started
  directly (and stopped on `lab down` when this lab started them and no VM is left).
- With no udev, /dev/kvm is 0600 root:root; libvirt then re-probes QEMU on every call (a define
  takes 30-50 s). The usual udev rule's result (group kvm, 0660) fixes it.
- /dev/kvm existing does not mean hardware virtualization: inside some hypervisors it is a
  paravirtual device a stock kernel cannot boot on. KVM is used only when the CPU shows vmx or
  svm; otherwise QEMU emulates (libvirt driver `qemu`, CPU model `qemu64`).
"""

from __future__ import annotations

import grp
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError

URI = "qemu:///system"
KVM_DEVICE = Path("/dev/kvm")
SOCKET = Path("/run/libvirt/libvirt-sock")
# Daemon name -> its pid file when started with -d (as root).
DAEMONS = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
DAEMON_START_TIMEOUT = 30.0
REQUIRED = {"vagrant": "vagrant", "virsh": "libvirt-clients", "libvirtd": "libvirt-daemon-system",
            "qemu-system-x86_64": "qemu-system-x86"}


@dataclass(frozen=True)
class Acceleration:
    driver: str     # libvirt domain type: kvm or qemu
    cpu_mode: str   # host-passthrough with KVM, custom with emulation
    cpu_model: str  # "" with host-passthrough

    def describe(self) -> str:
        return "KVM" if self.driver == "kvm" else f"QEMU emulation (CPU {self.cpu_model})"


def choose_acceleration(cpu_flags: set[str], kvm_usable: bool) -> Acceleration:
    """KVM only where the CPU really offers hardware virtualization to this machine."""
    if kvm_usable and cpu_flags & {"vmx", "svm"}:
        return Acceleration("kvm", "host-passthrough", "")
    return Acceleration("qemu", "custom", "qemu64")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def probe_acceleration() -> Acceleration:
    kvm_usable = KVM_DEVICE.exists() and os.access(KVM_DEVICE, os.R_OK | os.W_OK)
    return choose_acceleration(cpu_flags(Path("/proc/cpuinfo").read_text()), kvm_usable)


def check_installed() -> None:
    missing = sorted({pkg for tool, pkg in REQUIRED.items()
                      if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()})
    if missing:
        raise ProvisionerError(f"the Vagrant lab needs {', '.join(missing)} "
                               "(and vagrant-libvirt); run `bash scripts/install-deps.sh`")


def fix_kvm_permissions() -> bool:
    """Give /dev/kvm the group and mode udev would; True when it changed anything."""
    if not KVM_DEVICE.exists():
        return False
    try:
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return False
    status = KVM_DEVICE.stat()
    if status.st_gid == kvm_gid and status.st_mode & 0o660 == 0o660:
        return False
    os.chown(KVM_DEVICE, 0, kvm_gid)
    os.chmod(KVM_DEVICE, 0o660)
    return True


def _systemd_is_init() -> bool:
    return Path("/run/systemd/system").is_dir()


def answering() -> bool:
    return subprocess.run(["virsh", "-c", URI, "uri"], capture_output=True,
                          timeout=60).returncode == 0


def ensure_daemons() -> list[str]:
    """Make libvirt answer; return the daemons this call started (to stop them later)."""
    if SOCKET.exists() and answering():
        return []
    if _systemd_is_init():
        _run(["systemctl", "start", "virtlogd", "libvirtd"], "starting libvirt with systemctl")
        return []
    started = []
    for daemon, pid_file in DAEMONS.items():
        if _pid(pid_file) is None:
            _run([daemon, "-d"], f"starting {daemon}")
            started.append(daemon)
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while not (SOCKET.exists() and answering()):
        if time.monotonic() > deadline:
            raise ProvisionerError(f"libvirtd did not answer on {SOCKET} within "
                                   f"{DAEMON_START_TIMEOUT:.0f}s; see /var/log/libvirt/")
        time.sleep(0.5)
    return started


def stop_daemons(names: list[str]) -> list[str]:
    """Stop daemons a lab started, unless VMs (any lab's, anyone's) still run; return stopped."""
    if not names or domains():
        return []
    stopped = []
    for daemon in ("libvirtd", "virtlogd"):  # libvirtd first: it logs through virtlogd
        pid = _pid(DAEMONS[daemon]) if daemon in names else None
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            stopped.append(daemon)
    return stopped


def domains() -> list[str]:
    result = subprocess.run(["virsh", "-c", URI, "list", "--all", "--name"], capture_output=True,
                            text=True, timeout=60)
    return [line for line in result.stdout.split() if line]


def domain_state(name: str) -> str:
    """libvirt's state of a domain (`running`, `shut off`...), `absent` when undefined."""
    result = subprocess.run(["virsh", "-c", URI, "domstate", name], capture_output=True,
                            text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else "absent"


def ensure_pool(name: str, path: Path) -> None:
    """A directory storage pool of the lab's own (vagrant-libvirt only creates `default`)."""
    if _virsh_ok("pool-info", name):
        if not _virsh_ok("pool-start", name) and "running" not in _virsh("pool-info", name):
            raise ProvisionerError(f"the libvirt storage pool {name} exists but does not start")
        return
    path.mkdir(parents=True, exist_ok=True)
    _run(["virsh", "-c", URI, "pool-define-as", name, "dir", "--target", str(path)],
         f"defining the libvirt storage pool {name}")
    _run(["virsh", "-c", URI, "pool-start", name], f"starting the libvirt storage pool {name}")


def remove_pool(name: str, path: Path) -> bool:
    """Delete a pool's volumes, the pool and its directory; True if there was one."""
    existed = _virsh_ok("pool-info", name)
    if existed:
        _virsh_ok("pool-start", name)  # volumes can only be listed and deleted in a running pool
        for volume in _virsh("vol-list", name, "--name").split():
            _virsh_ok("vol-delete", volume, "--pool", name)
        _virsh_ok("pool-destroy", name)
        _virsh_ok("pool-undefine", name)
    if path.is_dir():
        shutil.rmtree(path)
        existed = True
    return existed


def remove_network(name: str) -> bool:
    if not _virsh_ok("net-info", name):
        return False
    _virsh_ok("net-destroy", name)
    _virsh_ok("net-undefine", name)
    return True


def _virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                          timeout=120).stdout


def _virsh_ok(*args: str) -> bool:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True,
                          timeout=120).returncode == 0


def _pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _run(command: list[str], intent: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ProvisionerError(f"{intent} failed (exit {result.returncode})",
                               command=" ".join(command), output=result.stdout + result.stderr)
