"""runtime/daemon: containers as the API shows them: Docker-like inspect documents and list rows."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from ..container import caps, seccomp_profile
from ..container.api import ContainerState
from .state import ContainerRecord

ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """As Docker words it: "Less than a second", "5 seconds", "About a minute", "3 hours"."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds" if int(seconds) != 1 else "1 second"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    return f"{int(days / 7)} weeks"


def since(text: str | None) -> float:
    moment = parse_time(text)
    return (datetime.now(UTC) - moment).total_seconds() if moment else 0.0


def status_text(state: ContainerState) -> str:
    if state.status == "running":
        return f"Up {human_duration(since(state.started_at))}"
    if state.status == "exited":
        return (f"Exited ({state.exit_code if state.exit_code is not None else -1}) "
                f"{human_duration(since(state.finished_at))} ago")
    return "Created"


def _port_bindings(record: ContainerRecord) -> dict:
    bindings: dict[str, list] = {}
    for port in record.ports:
        bindings.setdefault(f"{port.container_port}/{port.protocol}", []).append(
            {"HostIp": port.host_ip or "0.0.0.0", "HostPort": str(port.host_port)})
    return bindings


def security_opt(record: ContainerRecord) -> list[str]:
    """What applied, in Docker's --security-opt words; a custom profile is shown whole (under
    "SeccompProfile" of inspect) and named "custom" here."""
    options = [f"seccomp={seccomp_profile.describe(record.seccomp)}"]
    if record.no_new_privileges:
        options.append("no-new-privileges")
    return options


def inspect(record: ContainerRecord, state: ContainerState, log_path: str,
            image_config: dict) -> dict:
    running = state.status == "running"
    warnings = [state.cgroup_warning] if state.cgroup_warning else []
    return {
        "Id": record.id,
        "Name": f"/{record.name}",
        "Created": record.created,
        "Path": record.args[0] if record.args else "",
        "Args": record.args[1:],
        "State": {
            "Status": state.status,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": bool(state.oom_killed),
            "Dead": False,
            "Pid": state.pid if running and state.pid else 0,
            "ExitCode": state.exit_code if state.exit_code is not None else 0,
            "Error": "",
            "StartedAt": state.started_at or ZERO_TIME,
            "FinishedAt": state.finished_at or ZERO_TIME,
        },
        "Image": record.image_id,
        "LogPath": log_path,
        "Config": {
            "Hostname": record.hostname,
            "User": record.user,
            "Env": record.env,
            "Cmd": record.cmd,
            "Entrypoint": record.entrypoint,
            "Image": record.image,
            "WorkingDir": record.workdir,
            "Labels": record.labels,
            "ExposedPorts": (image_config.get("config") or {}).get("ExposedPorts") or {},
            "Tty": record.tty, "OpenStdin": record.stdin_open, "StdinOnce": record.stdin_once,
        },
        "HostConfig": {
            "Memory": record.memory or 0,
            "NanoCpus": round((record.cpus or 0) * 1e9),
            "PidsLimit": record.pids or 0,
            "Binds": record.volumes,
            "NetworkMode": f"pod:{record.pod}" if record.pod else record.network,
            "PortBindings": _port_bindings(record),
            "AutoRemove": record.auto_remove,
            "ReadonlyRootfs": record.read_only,
            "UsernsMode": "private" if record.user_namespace else "host",
            "IdMappings": record.user_namespace,
            "Sysctls": record.sysctls,
            "ProcMount": "Unmasked" if record.unmasked_proc else "Default",
            "SecurityOpt": security_opt(record),
            # the capability set the process gets (Docker shows only an explicit one here)
            "Capabilities": [f"CAP_{name}" for name in (
                caps.DEFAULT_CAPABILITIES if record.capabilities is None
                else record.capabilities)],
        },
        "NetworkSettings": {
            "IPAddress": record.ip or "",
            "Ports": _port_bindings(record),
            "SandboxKey": record.netns or "",
        },
        "Mounts": [{"Type": "bind", "Source": volume.rsplit(":", 2)[0],
                    "Destination": volume.rsplit(":", 2)[1],
                    "RW": volume.rsplit(":", 2)[2] == "rw"} for volume in record.volumes],
        "Pod": record.pod,
        "SeccompProfile": record.seccomp if isinstance(record.seccomp, dict) else None,
        "Warnings": warnings,
    }


def list_row(record: ContainerRecord, state: ContainerState) -> dict:
    return {
        "Id": record.id,
        "Names": [record.name],
        "Image": record.image,
        "Command": shlex.join(record.args),
        "Created": record.created,
        "State": state.status,
        "Status": status_text(state),
        "Ports": ", ".join(port.describe() for port in record.ports),
        "Pod": record.pod,
        # for the kubelet's relist: one call gives every container's labels and last exit
        "Labels": record.labels,
        "ImageID": record.image_id,
        "ExitCode": state.exit_code,
        "OOMKilled": bool(state.oom_killed),
        "StartedAt": state.started_at,
        "FinishedAt": state.finished_at,
    }


def image_row(image) -> dict:
    return {"Id": image.id, "RepoTags": list(image.tags), "Digest": image.digest,
            "Created": image.created, "Size": image.size}


def image_inspect(image) -> dict:
    return {**image_row(image), "Config": image.config.get("config") or {},
            "Architecture": image.config.get("architecture"), "Os": image.config.get("os"),
            "RootFS": image.config.get("rootfs"),
            "Layers": [layer.digest for layer in image.layers]}
