"""runtime/docker: looking into running containers: `top` (its processes) and `stats` (its
cgroup's CPU, memory and pids figures in Docker's stats document), and the prune routes.

Processes are those sharing the container's pid namespace (read from /proc). Stats read the
container's cgroup files (v1 or v2, the paths the core recorded in its state); a stream sends one
document a second, as Docker does; `stream=false` waits for one interval so `precpu_stats`
holds the sample before.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime

from aiohttp import web

from ..container.api import state as core_state
from ..daemon.errors import DaemonError
from ..images.errors import ImageError
from .containers import flag, record_of, supervisor_of
from .errors import DockerError
from .routing import daemon_of, json_response, route

STATS_INTERVAL_SECONDS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _running_state(request: web.Request):
    containers = daemon_of(request).containers
    record = record_of(request)
    state = containers.status(record)
    if state.status != "running" or not state.pid:
        raise DockerError(409, f"Container {record.id} is not running")
    return record, state


def _namespace_members(init_pid: int) -> list[int]:
    try:
        namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    members.append(int(entry))
            except OSError:
                continue
    return sorted(members)


def _process_row(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/status") as source:
            fields = dict(line.split(":", 1) for line in source if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as source:
            command = source.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    uid = fields.get("Uid", "0").split()[0]
    return [uid, str(pid), fields.get("PPid", "0").strip(),
            command or f"[{fields.get('Name', '').strip()}]"]


@route("GET", "/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    _, state = _running_state(request)
    rows = [row for row in map(_process_row, _namespace_members(state.pid)) if row]
    return json_response({"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": rows})


def _read_int(directory: str | None, name: str) -> int | None:
    if not directory:
        return None
    try:
        with open(os.path.join(directory, name)) as source:
            text = source.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _system_cpu_ns() -> int:
    with open("/proc/stat") as source:
        fields = source.readline().split()[1:8]
    return sum(int(value) for value in fields) * 1_000_000_000 // CLOCK_TICKS


def _host_memory() -> int:
    with open("/proc/meminfo") as source:
        for line in source:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _sample(cgroups: dict | None) -> dict:
    paths = (cgroups or {}).get("paths", {})
    unified = paths.get("unified")
    if unified:
        usage = None
        try:
            with open(os.path.join(unified, "cpu.stat")) as source:
                for line in source:
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        usage = int(value) * 1000
        except OSError:
            pass
        memory = _read_int(unified, "memory.current")
        limit = _read_int(unified, "memory.max")
        pids = _read_int(unified, "pids.current")
    else:
        usage = _read_int(paths.get("cpuacct") or paths.get("cpu"), "cpuacct.usage")
        memory = _read_int(paths.get("memory"), "memory.usage_in_bytes")
        limit = _read_int(paths.get("memory"), "memory.limit_in_bytes")
        pids = _read_int(paths.get("pids"), "pids.current")
    host_memory = _host_memory()
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": usage or 0, "usage_in_kernelmode": 0,
                                    "usage_in_usermode": 0},
                      "system_cpu_usage": _system_cpu_ns(), "online_cpus": os.cpu_count() or 1,
                      "throttling_data": {"periods": 0, "throttled_periods": 0,
                                          "throttled_time": 0}},
        "memory_stats": {"usage": memory or 0,
                         "limit": limit if limit and limit < host_memory else host_memory,
                         "stats": {}},
        "pids_stats": {"current": pids or 0},
    }


def _document(record, sample: dict, previous: dict) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"read": now, "preread": now, "id": record.id, "name": "/" + record.name,
            "num_procs": 0, "blkio_stats": {}, "storage_stats": {}, "networks": {},
            **sample, "precpu_stats": previous["cpu_stats"]}


@route("GET", "/containers/{id}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    record, state = _running_state(request)
    directory = daemon_of(request).containers.directory(record)

    def sample() -> dict:
        return _sample(core_state(directory).cgroups)

    previous = await asyncio.to_thread(sample)
    if not flag(request, "stream", True):
        if not flag(request, "one-shot"):
            await asyncio.sleep(STATS_INTERVAL_SECONDS)
        current = await asyncio.to_thread(sample)
        return json_response(_document(record, current, previous))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    containers = daemon_of(request).containers
    try:
        while record.id in containers.records and containers.is_running(record):
            await asyncio.sleep(STATS_INTERVAL_SECONDS)
            current = await asyncio.to_thread(sample)
            await response.write(json.dumps(_document(record, current, previous)).encode()
                                 + b"\n")
            previous = current
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


# -- prune ----------------------------------------------------------------------------------

@route("POST", "/containers/prune")
async def prune_containers(request: web.Request) -> web.Response:
    """Every stopped container the Docker API shows (the kubelet's pod members are not)."""
    containers = daemon_of(request).containers
    deleted = []
    for record in list(containers.records.values()):
        if record.pod or containers.is_running(record):
            continue
        try:
            await containers.remove(record.id)
        except DaemonError:
            continue
        supervisor_of(request).forget(record.id)
        deleted.append(record.id)
    return json_response({"ContainersDeleted": deleted, "SpaceReclaimed": 0})


@route("POST", "/images/prune")
async def prune_images(request: web.Request) -> web.Response:
    """Untagged images, or (dangling=false) every image no container uses."""
    try:
        filters = json.loads(request.query.get("filters") or "{}")
    except ValueError:
        raise DockerError(400, "invalid filters: not JSON") from None
    dangling = filters.get("dangling") or ["true"]
    only_dangling = list(dangling)[0] not in ("false", "0")
    daemon = daemon_of(request)
    in_use = set(daemon.images.images_in_use())
    deleted, reclaimed = [], 0
    for image in daemon.store.list():
        if image.id in in_use or (only_dangling and image.tags):
            continue
        try:
            lines = daemon.store.remove(image.id)
        except ImageError:
            continue
        reclaimed += image.size
        for line in lines:
            kind, _, what = line.partition(": ")
            deleted.append({kind: what})
    return json_response({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed})
