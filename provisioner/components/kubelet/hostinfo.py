"""kubelet: what the host is (CPUs, memory, disk, PIDs, kernel, IDs, addresses) for the Node.

Pure reads of /proc, /sys and /etc; the pressure numbers feed the node conditions and eviction.
"""

from __future__ import annotations

import os
import platform
import socket


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as source:
            return source.read().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def disk(path: str) -> tuple[int, int, int, int]:
    """(total bytes, available bytes, inodes, free inodes) of the filesystem holding path."""
    os.makedirs(path, exist_ok=True)
    stat = os.statvfs(path)
    return (stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize, stat.f_files,
            stat.f_favail)


def pid_max() -> int:
    return int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)


def running_pids() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


def capacity(root_dir: str, max_pods: int) -> dict[str, str]:
    total_disk = disk(root_dir)[0]
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{meminfo().get('MemTotal', 0) // 1024}Ki",
            "pods": str(max_pods), "ephemeral-storage": f"{total_disk // 1024}Ki",
            "hugepages-2Mi": "0", "hugepages-1Gi": "0"}


def allocatable(capacity_: dict[str, str], eviction_memory: int) -> dict[str, str]:
    """Capacity less the hard eviction threshold for memory, as kubelet computes it without
    system/kube reservations."""
    out = dict(capacity_)
    memory = int(capacity_["memory"].removesuffix("Ki")) * 1024 - eviction_memory
    out["memory"] = f"{max(memory, 0) // 1024}Ki"
    return out


def node_info(runtime_version: str) -> dict[str, str]:
    uname = platform.uname()
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.partition("=")[2].strip('"')
    from provisioner import __version__ as version
    return {"machineID": _read("/etc/machine-id"),
            "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": uname.release, "osImage": os_image,
            "containerRuntimeVersion": f"provisioner-runtime://{runtime_version}",
            "kubeletVersion": f"v1.37.0-provisioner.{version}",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": _arch(uname.machine)}


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def default_ip() -> str:
    """The source address of the default route (no packet is sent), or loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def hostname() -> str:
    return socket.gethostname().lower()


def standard_labels(node_name: str) -> dict[str, str]:
    arch = _arch(platform.machine())
    return {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch}
