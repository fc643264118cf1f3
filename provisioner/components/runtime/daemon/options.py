"""runtime/daemon: parsing what a create request asks for (ports, volumes, sizes, env).

The CLI sends Docker's spellings (`8080:80`, `/host:/ctr:ro`, `64m`) and the daemon parses them
here, so every client gets the same checks and the same messages.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket

from ..container import caps, seccomp_profile
from .errors import BadRequest
from .state import PortMapping

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: int | str | None, what: str = "--memory") -> int | None:
    """`64m`, `1g`, `512k`, or plain bytes."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise BadRequest(f"invalid {what} value {value!r}: use a number with an optional unit "
                             "b, k, m or g (e.g. 64m)")
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise BadRequest(f"invalid {what} value {value!r}: must be more than zero")
    if what == "--memory" and size < 6 * (1 << 20):
        raise BadRequest(f"invalid --memory value {value!r}: the minimum is 6m")
    return size


def parse_cpus(value: float | str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid --cpus value {value!r}: use a number such as 0.5") from None
    available = os.cpu_count() or 1
    if not math.isfinite(cpus) or cpus < 0.01:
        raise BadRequest(f"invalid --cpus value {value!r}: the range is 0.01 to {available} "
                         f"(the CPUs this host has)")
    if cpus > available:
        raise BadRequest(f"invalid --cpus value {value!r}: this host has only {available} CPUs; "
                         f"the range is 0.01 to {available}")
    return cpus


def parse_cpu_shares(value: int | str | None) -> int | None:
    """Relative CPU weight as cgroup v1 cpu.shares (Docker's --cpu-shares), 2 to 262144."""
    if value is None or value == "":
        return None
    try:
        shares = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid --cpu-shares value {value!r}: use a whole number") from None
    if not 2 <= shares <= 262144:
        raise BadRequest(f"invalid --cpu-shares value {value!r}: the range is 2 to 262144")
    return shares


def parse_cgroup_parent(value: str | None) -> str:
    """A pod's cgroup parent: a path relative to the cgroup hierarchy root, without ".."."""
    if value is None or value == "":
        return ""
    text = value.strip().strip("/") if isinstance(value, str) else ""
    if not text or any(part in ("", ".", "..") for part in text.split("/")):
        raise BadRequest(f"invalid cgroup_parent {value!r}: give a path below the cgroup "
                         "hierarchy root such as kubepods/burstable/pod<uid>")
    return text


def parse_pids(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        pids = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid --pids-limit value {value!r}: use a whole number") from None
    if pids <= 0:
        raise BadRequest(f"invalid --pids-limit value {value!r}: must be more than zero")
    return pids


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


def parse_port(spec: str | dict) -> PortMapping:
    """`[host_ip:][host_port:]container_port[/proto]`, or a dict of PortMapping's fields.
    Without a host port a free one is chosen, as Docker does."""
    if isinstance(spec, dict):
        try:
            mapping = PortMapping(int(spec.get("host_port") or 0), int(spec["container_port"]),
                                  spec.get("protocol", "tcp"), spec.get("host_ip", ""))
        except (KeyError, TypeError, ValueError):
            raise BadRequest(f"invalid port mapping {spec!r}: needs container_port and "
                             "host_port numbers") from None
    else:
        text, _, protocol = str(spec).partition("/")
        parts = text.rsplit(":", 2)
        try:
            if len(parts) == 1:
                mapping = PortMapping(0, int(parts[0]), protocol or "tcp")
            elif len(parts) == 2:
                mapping = PortMapping(int(parts[0] or 0), int(parts[1]), protocol or "tcp")
            else:
                mapping = PortMapping(int(parts[1] or 0), int(parts[2]), protocol or "tcp",
                                      parts[0])
        except ValueError:
            raise BadRequest(f"invalid port mapping {spec!r}: use HOST_PORT:CONTAINER_PORT, "
                             "e.g. 8080:80") from None
    if mapping.protocol not in ("tcp", "udp"):
        raise BadRequest(f"invalid port mapping {spec!r}: protocol must be tcp or udp")
    for port in (mapping.host_port, mapping.container_port):
        if not 0 <= port <= 65535:
            raise BadRequest(f"invalid port mapping {spec!r}: {port} is not a port number")
    if mapping.container_port == 0:
        raise BadRequest(f"invalid port mapping {spec!r}: the container port is missing")
    if mapping.host_port == 0:
        mapping.host_port = _free_port()
    return mapping


def parse_ports(specs: list | None) -> list[PortMapping]:
    mappings = [parse_port(spec) for spec in as_list(specs, "ports")]
    seen: dict[tuple, str] = {}
    for mapping in mappings:
        key = (mapping.host_ip, mapping.host_port, mapping.protocol)
        if key in seen:
            raise BadRequest(f"host port {mapping.host_port}/{mapping.protocol} is published "
                             "twice in this request")
        seen[key] = mapping.describe()
    return mappings


def parse_volume(spec: str) -> tuple[str, str, bool]:
    """`/host:/container[:ro|rw]` -> (host, container, read_only); the host path must exist."""
    if not isinstance(spec, str):
        raise BadRequest(f"invalid volume {spec!r}: use \"/host/path:/container/path[:ro]\"")
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise BadRequest(f"invalid volume {spec!r}: use /host/path:/container/path[:ro]")
    source, destination = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise BadRequest(f"invalid volume {spec!r}: the mode must be ro or rw, not {mode!r}")
    if not os.path.isabs(source):
        raise BadRequest(f"invalid volume {spec!r}: named volumes are not supported; give an "
                         "absolute host path")
    if not os.path.isabs(destination):
        raise BadRequest(f"invalid volume {spec!r}: the container path must be absolute")
    if not os.path.exists(source):
        raise BadRequest(f"volume source {source} does not exist on this host: create it first "
                         f"(mkdir -p {source}) or fix the -v {spec} argument")
    return source, destination, mode == "ro"


def parse_env(values: list | dict | None) -> list[str]:
    if isinstance(values, dict):
        return [f"{key}={value}" for key, value in as_labels(values).items()]
    env = []
    for value in as_list(values, "env"):
        if not isinstance(value, str) or "=" not in value or value.startswith("="):
            raise BadRequest(f"invalid environment variable {value!r}: use KEY=VALUE")
        env.append(value)
    return env


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Image env, then the request's: a later KEY replaces an earlier one in place."""
    merged: dict[str, str] = {}
    for item in [*base, *overrides]:
        key, _, value = item.partition("=")
        merged[key] = value
    return [f"{key}={value}" for key, value in merged.items()]


def as_command(value: list | str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise BadRequest(f"invalid {what} {value!r}: must be a list of strings")
    return value


# Docker's rule for -h: an RFC 1123 host name, at most 64 characters (the kernel's limit).
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$")


def as_text(value, what: str, example: str) -> str | None:
    """An optional string field; anything else is the caller's mistake, named."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"invalid {what} {value!r}: must be a string such as {example}")
    return value


def as_hostname(value) -> str | None:
    hostname = as_text(value, "hostname", '"web-1"')
    if hostname is None:
        return None
    if len(hostname) > 64 or not _HOSTNAME.match(hostname):
        raise BadRequest(f"invalid hostname {hostname!r}: use at most 64 letters, digits, "
                         "dots and dashes (a valid host name)")
    return hostname


def as_user(value) -> str | None:
    user = as_text(value, "user", '"1000:1000" or "nobody"')
    if user is not None and not _USER.match(user):
        raise BadRequest(f"invalid user {user!r}: use NAME, UID, NAME:GROUP or UID:GID")
    return user


def as_workdir(value) -> str | None:
    workdir = as_text(value, "workdir", '"/app"')
    if workdir is not None and not os.path.isabs(workdir):
        raise BadRequest(f"invalid workdir {workdir!r}: the working directory must be an "
                         "absolute path such as /app")
    return workdir


def as_labels(value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) and isinstance(item, str)
                                              for key, item in value.items()):
        raise BadRequest(f"invalid labels {value!r}: must be an object of string keys to "
                         "string values")
    return dict(value)


def as_list(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"invalid {what} {value!r}: must be a list")
    return value


def _held_capabilities() -> list[str]:
    with open("/proc/self/status") as status:
        held = next(int(line.split()[1], 16) for line in status if line.startswith("CapPrm:"))
    return [name for number, name in enumerate(caps.CAPABILITIES) if held & (1 << number)]


def _capability_names(values, what: str) -> list[str]:
    names = []
    for value in as_list(values, what):
        key = value.upper().removeprefix("CAP_") if isinstance(value, str) else None
        if key is None or (key != "ALL" and key not in caps.CAP_NUMBERS):
            raise BadRequest(f"invalid {what} entry {value!r}: use a capability name such as "
                             "NET_ADMIN, or ALL")
        names.append(key)
    return names


def capabilities(cap_add, cap_drop, privileged: bool) -> list[str] | None:
    """The capability set from Docker's --cap-add/--cap-drop/--privileged (names with or without
    CAP_, ALL for every one); None: nothing asked, the default reduced set applies."""
    if not cap_add and not cap_drop and not privileged:
        return None
    if privileged:
        return _held_capabilities()     # every one this daemon holds (more cannot be granted)
    add = _capability_names(cap_add, "cap_add")
    drop = _capability_names(cap_drop, "cap_drop")
    current = [] if "ALL" in drop else [c for c in caps.DEFAULT_CAPABILITIES if c not in drop]
    for key in (caps.CAPABILITIES if "ALL" in add else add):
        if key not in current and key not in drop:
            current.append(key)
    return current


def seccomp(value, privileged: bool, capabilities: list[str] | None) -> str | dict:
    """The container's seccomp setting: "runtime/default" unless asked (unconfined when
    privileged, as Docker), "unconfined", a profile object (or its JSON text), or
    "localhost/<absolute path>" to a profile file on this host (read now, as the kubelet's
    Localhost profiles). The profile is compiled here, so a malformed one is refused at create."""
    if value is None or value == "":
        return seccomp_profile.UNCONFINED if privileged else seccomp_profile.RUNTIME_DEFAULT
    if isinstance(value, str) and value.startswith("localhost/"):
        value = _read_profile(value.removeprefix("localhost/"))
    elif isinstance(value, str) and value.lstrip().startswith("{"):
        value = _profile_json(value, "the seccomp field")
    try:
        seccomp_profile.compile_setting(value, capabilities)
    except seccomp_profile.ProfileError as exc:
        raise BadRequest(f"invalid seccomp: {exc}") from None
    return value


def _read_profile(path: str) -> dict:
    if not os.path.isabs(path):
        raise BadRequest(f"invalid seccomp localhost/{path}: the profile path must be absolute")
    try:
        with open(path) as source:
            text = source.read()
    except OSError as exc:
        raise BadRequest(f"cannot read seccomp profile {path}: {exc.strerror}") from None
    return _profile_json(text, path)


def _profile_json(text: str, where: str) -> dict:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"invalid seccomp profile in {where}: not JSON ({exc})") from None


# user namespaces: blocks of 65536 host ids (a full 16-bit id space per container or pod, as the
# kubelet allocates), from 2^20 up to 2^31, clear of the ids real users and /etc/subuid ranges get
USERNS_SIZE = 65536
USERNS_FIRST_BLOCK = 16
USERNS_BLOCKS = (1 << 31) // USERNS_SIZE


def user_namespace(value, taken: list[dict], pod_mapping: dict | None) -> dict | None:
    """`userns`: "host" (default) shares the host's ids; "private" maps the container's ids
    0..65535 to a free block of host ids (the pod's block when another container of its pod has
    one, so a pod's containers agree on file owners)."""
    if value in (None, "", "host"):
        return None
    if value != "private":
        raise BadRequest(f"invalid userns {value!r}: use \"host\" or \"private\"")
    if pod_mapping:
        return dict(pod_mapping)
    used = {mapping["host_uid"] for mapping in taken if mapping}
    for block in range(USERNS_FIRST_BLOCK, USERNS_BLOCKS):
        if block * USERNS_SIZE not in used:
            start = block * USERNS_SIZE
            return {"host_uid": start, "host_gid": start, "size": USERNS_SIZE}
    raise BadRequest("no free block of host ids left for a private user namespace")


# sysctls a container may set: only those the kernel keeps per namespace (as Docker's list);
# whether a pod may use the unsafe ones among them is the kubelet's policy
_NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                       "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                       "kernel.shm_rmid_forced", "kernel.domainname")
_NAMESPACED_PREFIXES = ("fs.mqueue.", "net.")


def sysctls(value, network: str) -> dict[str, str]:
    """`sysctls` {name: value}: names with dots or slashes; refused unless namespaced, and net.*
    with the host's network (it would change the host)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"invalid sysctls {value!r}: must be an object of names to values")
    checked = {}
    for raw_name, raw_value in value.items():
        name = str(raw_name).replace("/", ".")
        if not isinstance(raw_value, (str, int)) or isinstance(raw_value, bool):
            raise BadRequest(f"invalid sysctl {name}: the value must be a string or number")
        if not (name in _NAMESPACED_SYSCTLS or name.startswith(_NAMESPACED_PREFIXES)) \
                or ".." in name:
            raise BadRequest(f"invalid sysctl {name!r}: not namespaced, so it would change "
                             "the host; allowed: net.*, fs.mqueue.*, "
                             + ", ".join(_NAMESPACED_SYSCTLS))
        if name.startswith("net.") and network == "host":
            raise BadRequest(f"invalid sysctl {name!r}: with --network host it would change "
                             "the host's network")
        checked[name] = str(raw_value)
    return checked


def proc_mount(value) -> bool:
    """`proc_mount` as Kubernetes' procMount: "Default" (masked and read-only /proc paths) or
    "Unmasked"; True when unmasked."""
    if value in (None, "", "Default"):
        return False
    if value == "Unmasked":
        return True
    raise BadRequest(f"invalid proc_mount {value!r}: use \"Default\" or \"Unmasked\"")
