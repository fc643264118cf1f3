"""runtime/docker: Docker's shapes <-> the daemon's: a create body becomes the daemon's create
request (daemon/containers.py checks it), and a record with its state becomes Docker's inspect
document or `containers/json` row with the fields Docker's clients read.
"""

from __future__ import annotations

from datetime import datetime

from ..container.api import ContainerState
from ..daemon.state import ContainerRecord
from .errors import DockerError
from .supervisor import POLICIES

ZERO_TIME = "0001-01-01T00:00:00Z"
NETWORK_MODES = {"": "bridge", "default": "bridge", "bridge": "bridge", "host": "host",
                 "none": "none"}


def _port_list(port_bindings: dict | None) -> list[dict]:
    ports = []
    for key, bindings in (port_bindings or {}).items():
        number, _, protocol = str(key).partition("/")
        for binding in bindings or [{}]:
            binding = binding or {}
            ports.append({"container_port": int(number), "protocol": protocol or "tcp",
                          "host_port": int(binding.get("HostPort") or 0),
                          "host_ip": binding.get("HostIp") or ""})
    return ports


def _cpus(host: dict) -> float | None:
    if host.get("NanoCpus"):
        return host["NanoCpus"] / 1e9
    if host.get("CpuQuota") and host.get("CpuQuota") > 0:
        return host["CpuQuota"] / (host.get("CpuPeriod") or 100000)
    return None


def create_request(body: dict, name: str | None) -> tuple[dict, dict]:
    """(the daemon's create request, the Docker-only settings) from Docker's create body."""
    if not isinstance(body, dict):
        raise DockerError(400, "the container config must be a JSON object")
    host = body.get("HostConfig") or {}
    policy = host.get("RestartPolicy") or {}
    if (policy.get("Name") or "") not in POLICIES:
        raise DockerError(400, f"invalid restart policy {policy.get('Name')!r}: use no, always, "
                               "unless-stopped or on-failure")
    if policy.get("Name") in ("always", "unless-stopped") and host.get("AutoRemove"):
        raise DockerError(400, "can't create 'AutoRemove' container with restart policy")
    mode = host.get("NetworkMode") or ""
    if mode not in NETWORK_MODES:
        raise DockerError(400, f"network {mode} not found: this runtime has the networks "
                               "bridge, host and none")
    request = {
        "image": body.get("Image"), "name": name, "cmd": body.get("Cmd"),
        "entrypoint": body.get("Entrypoint") or None, "env": body.get("Env") or [],
        "workdir": body.get("WorkingDir") or None, "user": body.get("User") or None,
        "hostname": body.get("Hostname") or None, "labels": body.get("Labels") or {},
        "volumes": host.get("Binds") or [], "ports": _port_list(host.get("PortBindings")),
        "memory": host.get("Memory") or None, "cpus": _cpus(host),
        "pids": host.get("PidsLimit") if (host.get("PidsLimit") or 0) > 0 else None,
        "network": NETWORK_MODES[mode], "privileged": bool(host.get("Privileged")),
        "cap_add": host.get("CapAdd"), "cap_drop": host.get("CapDrop"),
        "read_only": bool(host.get("ReadonlyRootfs")),
        # the container's own stdin and terminal, held by its console (docker/attaching.py)
        "tty": bool(body.get("Tty")), "stdin_open": bool(body.get("OpenStdin")),
        "stdin_once": bool(body.get("StdinOnce")),
    }
    settings = {"restart_policy": {"Name": policy.get("Name") or "no",
                                   "MaximumRetryCount": int(policy.get("MaximumRetryCount")
                                                            or 0)},
                "auto_remove": bool(host.get("AutoRemove")), "tty": bool(body.get("Tty")),
                "open_stdin": bool(body.get("OpenStdin")),
                "exposed_ports": body.get("ExposedPorts") or {}}
    return request, settings


def unix_time(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _port_map(record: ContainerRecord) -> dict:
    ports: dict[str, list | None] = {}
    for mapping in record.ports:
        ports.setdefault(f"{mapping.container_port}/{mapping.protocol}", []).append(
            {"HostIp": mapping.host_ip or "0.0.0.0", "HostPort": str(mapping.host_port)})
    return ports


def _networks(record: ContainerRecord) -> dict:
    if record.network in ("host", "none"):
        return {record.network: {"IPAddress": "", "NetworkID": record.network}}
    if record.network == "bridge":
        return {"bridge": {"IPAddress": record.ip or "", "NetworkID": "bridge",
                           "IPPrefixLen": 0, "Gateway": "", "MacAddress": ""}}
    return {}


def _mounts(record: ContainerRecord) -> list[dict]:
    mounts = []
    for volume in record.volumes:
        source, destination, mode = volume.rsplit(":", 2)
        mounts.append({"Type": "bind", "Source": source, "Destination": destination,
                       "Mode": mode if mode == "ro" else "", "RW": mode != "ro",
                       "Propagation": "rprivate"})
    return mounts


def _binds(record: ContainerRecord) -> list[str]:
    return [volume if volume.endswith(":ro") else volume.rsplit(":", 1)[0]
            for volume in record.volumes]


def state_name(state: ContainerState) -> str:
    return state.status if state.status in ("created", "running", "exited") else "dead"


def inspect(record: ContainerRecord, state: ContainerState, settings: dict,
            log_path: str) -> dict:
    running = state.status == "running"
    return {
        "Id": record.id, "Created": record.created, "Path": record.args[0] if record.args else "",
        "Args": record.args[1:], "Name": "/" + record.name, "Image": record.image_id,
        "State": {"Status": state_name(state), "Running": running, "Paused": False,
                  "Restarting": False, "OOMKilled": bool(state.oom_killed), "Dead": False,
                  "Pid": state.pid if running and state.pid else 0,
                  "ExitCode": state.exit_code or 0, "Error": "",
                  "StartedAt": state.started_at or ZERO_TIME,
                  "FinishedAt": state.finished_at or ZERO_TIME},
        "RestartCount": settings["restart_count"], "LogPath": log_path,
        "Driver": "overlay", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "HostConfig": {
            "Binds": _binds(record), "PortBindings": _port_map(record),
            "RestartPolicy": settings["restart_policy"], "AutoRemove": settings["auto_remove"],
            "NetworkMode": "default" if record.network == "bridge" else record.network,
            "Memory": record.memory or 0, "NanoCpus": int((record.cpus or 0) * 1e9),
            "PidsLimit": record.pids or 0, "Privileged": False,
            "ReadonlyRootfs": record.read_only, "LogConfig": {"Type": "json-file",
                                                              "Config": {}}},
        "Config": {
            "Hostname": record.hostname, "User": record.user, "Env": record.env,
            "Cmd": record.cmd, "Entrypoint": record.entrypoint or None, "Image": record.image,
            "WorkingDir": record.workdir, "Labels": record.labels, "Tty": settings["tty"],
            "OpenStdin": settings["open_stdin"], "AttachStdin": False, "AttachStdout": True,
            "AttachStderr": True, "ExposedPorts": settings["exposed_ports"] or None,
            "Domainname": "", "StdinOnce": False},
        "NetworkSettings": {"IPAddress": record.ip or "", "Ports": _port_map(record),
                            "Networks": _networks(record), "Gateway": "", "MacAddress": "",
                            "SandboxKey": record.netns or ""},
        "Mounts": _mounts(record),
    }


def status_text(state: ContainerState) -> str:
    from ..daemon.views import status_text as daemon_status_text

    return daemon_status_text(state)


def list_row(record: ContainerRecord, state: ContainerState) -> dict:
    return {
        "Id": record.id, "Names": ["/" + record.name], "Image": record.image,
        "ImageID": record.image_id, "Command": " ".join(record.args),
        "Created": unix_time(record.created), "State": state_name(state),
        "Status": status_text(state), "Labels": record.labels,
        "Ports": [{"IP": mapping.host_ip or "0.0.0.0", "PrivatePort": mapping.container_port,
                   "PublicPort": mapping.host_port, "Type": mapping.protocol}
                  for mapping in record.ports],
        "HostConfig": {"NetworkMode": "default" if record.network == "bridge"
                       else record.network},
        "NetworkSettings": {"Networks": _networks(record)}, "Mounts": _mounts(record),
        "SizeRw": 0, "SizeRootFs": 0,
    }
