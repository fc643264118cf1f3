"""Linux capabilities by name, the default reduced set, and dropping to a set before exec.

The default set is Docker's minus CAP_MKNOD: a second line behind the device allowlist (v1's
devices cgroup, v2's eBPF device program, see cgroups.create), so a container cannot even make
a node for a host block device in its /dev tmpfs.
"""

from . import syscalls

CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
CAP_NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}

DEFAULT_CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def mask_of(names: list[str]) -> int:
    """A bit mask from names such as "NET_ADMIN" or "CAP_NET_ADMIN" (ValueError on unknown)."""
    mask = 0
    for name in names:
        key = name.upper().removeprefix("CAP_")
        if key not in CAP_NUMBERS:
            raise ValueError(f"unknown capability {name!r}")
        mask |= 1 << CAP_NUMBERS[key]
    return mask


def drop_bounding_set(keep: int) -> None:
    """Drop every capability not in `keep` from the bounding set (needs CAP_SETPCAP: call first)."""
    for number in range(_last_cap() + 1):
        if not keep & (1 << number):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number)


def apply(keep: int, ambient: bool) -> None:
    """Set effective/permitted (and inheritable/ambient when `ambient`) to exactly `keep`.

    Ambient capabilities are what let a non-root user keep capabilities across execve; Docker
    gives a non-root user none by default, so the launcher asks for them only when the process
    names its capabilities explicitly.
    """
    inheritable = keep if ambient else 0
    syscalls.capset(keep, keep, inheritable)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    if ambient:
        for number in range(_last_cap() + 1):
            if keep & (1 << number):
                syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, number)
