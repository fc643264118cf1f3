"""runtime/daemon: what the daemon remembers about each container and pod, on disk.

The daemon keeps no state only in memory: every container has `containers/<id>/record.json`
(name, image, the request it was created from, its network attachment) next to the files the core
writes (`state.json`, ...), and every pod has `pods/<id>.json`. A restarted daemon rebuilds its
tables from these files; the status of a container always comes from the core's own state files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

RECORD_FILE = "record.json"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def write_json_atomically(path: str, data: dict) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a record."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        json.dump(data, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


@dataclass
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def describe(self) -> str:
        host = self.host_ip or "0.0.0.0"
        return f"{host}:{self.host_port}->{self.container_port}/{self.protocol}"


class _Record:
    """Saved as JSON: unknown keys from newer daemons are ignored, ports come back typed."""

    @classmethod
    def from_dict(cls, data: dict):
        known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        values = {key: value for key, value in data.items() if key in known}
        values["ports"] = [PortMapping(**port) for port in values.get("ports", [])]
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class ContainerRecord(_Record):
    id: str
    name: str
    image: str                      # the reference as the user gave it
    image_id: str
    created: str
    args: list[str]                 # entrypoint + cmd, resolved against the image
    env: list[str]
    workdir: str
    user: str
    hostname: str
    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None
    ports: list[PortMapping] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)   # "host:container[:ro]"
    network: str = "bridge"         # "bridge" | "host" | "none" | "pod"
    auto_remove: bool = False
    pod: str | None = None
    ip: str | None = None
    netns: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    started_once: bool = False
    # the kubelet's securityContext: None keeps the default reduced capability set
    capabilities: list[str] | None = None
    read_only: bool = False
    no_new_privileges: bool = True
    # "runtime/default", "unconfined" or a profile object (container.seccomp_profile)
    seccomp: str | dict = "runtime/default"
    # {"host_uid", "host_gid", "size"} for a private user namespace (userns: "private")
    user_namespace: dict | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    unmasked_proc: bool = False
    # relative CPU weight as v1 cpu.shares (the kubelet's, from the container's CPU request)
    cpu_shares: int | None = None
    # its own stdin and terminal, held by its console (container/console.py) for attach
    tty: bool = False
    stdin_open: bool = False
    stdin_once: bool = False



@dataclass
class PodRecord(_Record):
    id: str
    name: str
    namespace: str
    uid: str
    hostname: str
    host_network: bool
    created: str
    pause_container: str | None = None
    netns: str | None = None
    ip: str | None = None
    ports: list[PortMapping] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    # where its containers' cgroups go (relative to the hierarchy root; the kubelet's
    # kubepods/.../pod<uid>); "" puts them under the daemon's --cgroup-parent
    cgroup_parent: str = ""



class StateDirectory:
    """The daemon's files under its root: one directory per container, one file per pod."""

    def __init__(self, root: str):
        self.root = root
        self.containers_dir = os.path.join(root, "containers")
        self.pods_dir = os.path.join(root, "pods")
        os.makedirs(self.containers_dir, exist_ok=True)
        os.makedirs(self.pods_dir, exist_ok=True)

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.containers_dir, container_id)

    def save_container(self, record: ContainerRecord) -> None:
        directory = self.container_dir(record.id)
        os.makedirs(directory, exist_ok=True)
        write_json_atomically(os.path.join(directory, RECORD_FILE), record.to_dict())

    def load_containers(self) -> list[ContainerRecord]:
        """Every container with a readable record; directories without one were never finished."""
        records = []
        for entry in sorted(os.listdir(self.containers_dir)):
            path = os.path.join(self.containers_dir, entry, RECORD_FILE)
            try:
                with open(path) as source:
                    records.append(ContainerRecord.from_dict(json.load(source)))
            except (OSError, ValueError, TypeError):
                continue
        return records

    def save_pod(self, record: PodRecord) -> None:
        write_json_atomically(os.path.join(self.pods_dir, f"{record.id}.json"), record.to_dict())

    def load_pods(self) -> list[PodRecord]:
        records = []
        for entry in sorted(os.listdir(self.pods_dir)):
            if not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.pods_dir, entry)) as source:
                    records.append(PodRecord.from_dict(json.load(source)))
            except (OSError, ValueError, TypeError):
                continue
        return records

    def remove_pod(self, pod_id: str) -> None:
        try:
            os.unlink(os.path.join(self.pods_dir, f"{pod_id}.json"))
        except FileNotFoundError:
            pass
