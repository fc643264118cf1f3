"""What to run: the dataclasses of the container contract (runtime README, "container").

The api writes a ContainerSpec as state_dir/config.json; the shim reads it back with from_dict.
"""

from dataclasses import asdict, dataclass, field

NAMESPACE_KINDS = ("mount", "pid", "uts", "ipc", "net")


@dataclass
class Mount:
    source: str            # host path (bind) or fs name (proc, tmpfs, ...)
    destination: str       # path inside the container
    type: str = "bind"
    options: list[str] = field(default_factory=list)   # ["ro"], ["rbind"], ["nosuid", "size=64m"]


@dataclass
class Resources:
    memory_bytes: int | None = None
    cpus: float | None = None         # 0.5 -> cfs quota 50000 / period 100000
    pids_limit: int | None = None
    # relative CPU weight as cgroup v1 cpu.shares (2..262144; v2 cpu.weight is derived from it,
    # cgroups.shares_to_weight): the kubelet's share of CPU from the container's request
    cpu_shares: int | None = None


@dataclass
class Process:
    args: list[str]
    env: list[str] = field(default_factory=list)   # "K=V"
    cwd: str = "/"
    user: str = "0:0"                 # "uid:gid", "uid", "name", "name:group"
    capabilities: list[str] | None = None   # None -> the default reduced set (as Docker's)
    no_new_privileges: bool = True
    # "runtime/default" (seccomp_default), "unconfined", or a profile object in the OCI/Docker
    # JSON format; compiled by the api (seccomp_profile) and loaded by the launcher before execve
    seccomp: str | dict = "runtime/default"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Process":
        return cls(**data)


def _default_namespaces() -> dict[str, str | None]:
    return {kind: None for kind in NAMESPACE_KINDS}


@dataclass
class ContainerSpec:
    id: str
    state_dir: str                    # containers/<id>/ ; the core owns the files it writes there
    lower_dirs: list[str]             # image layer dirs, bottom first
    process: Process
    hostname: str = ""
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    # kind -> None (new namespace) or a path to join; a missing kind shares the host's. The mount
    # namespace is always new (pivot_root needs one), whatever this says.
    namespaces: dict[str, str | None] = field(default_factory=_default_namespaces)
    readonly_rootfs: bool = False
    log_path: str | None = None       # the shim writes CRI-format log lines here, rotated by size
    log_max_bytes: int = 10 * 1024 * 1024
    cgroup_parent: str = "provisioner-runtime"
    # {"host_uid": N, "host_gid": N, "size": N}: a user namespace mapping the container's ids
    # 0..size-1 to those host ids (userns.py); None shares the host's
    user_namespace: dict | None = None
    # namespaced sysctls ("net.ipv4.ip_unprivileged_port_start": "0"), written in the
    # container's own namespaces before /proc/sys turns read-only
    sysctls: dict[str, str] = field(default_factory=dict)
    # Kubernetes' procMount: Unmasked: no masked or read-only /proc and /sys paths
    unmasked_proc: bool = False
    # the socket of the container's console process (console.py), for a container with a
    # stdin or a terminal; the init connects to it (consolelink.py)
    console_socket: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ContainerSpec":
        data = dict(data)
        data["process"] = Process.from_dict(data["process"])
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        data["resources"] = Resources(**data.get("resources", {}))
        return cls(**data)
