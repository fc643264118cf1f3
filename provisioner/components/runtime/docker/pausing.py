"""runtime/docker: pause and unpause: the container's cgroup is frozen (v1 `freezer.state`,
v2 `cgroup.freeze`), as Docker does. Whether a container is paused is kept with its Docker
settings; stopping, killing or removing a paused container thaws it first (a frozen process
does not act on its signals).
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from ..container.api import state as core_state
from .containers import record_of, supervisor_of
from .errors import DockerError
from .routing import daemon_of, emit, route

SETTLE_SECONDS = 5.0


def _freezer(cgroups: dict | None) -> tuple[str, str, str, str] | None:
    """(file, frozen value, thawed value, what reading it says when frozen)."""
    paths = (cgroups or {}).get("paths", {})
    if (cgroups or {}).get("mode") == "v2" and paths.get("unified"):
        return os.path.join(paths["unified"], "cgroup.freeze"), "1", "0", "1"
    if paths.get("freezer"):
        return os.path.join(paths["freezer"], "freezer.state"), "FROZEN", "THAWED", "FROZEN"
    return None


async def set_frozen(directory: str, frozen: bool) -> None:
    freezer = _freezer(core_state(directory).cgroups)
    if freezer is None:
        raise DockerError(500, "this container has no freezer cgroup: pausing needs the "
                               "freezer controller (cgroup v1) or cgroup v2")
    path, frozen_value, thawed_value, reads_frozen = freezer
    with open(path, "w") as out:
        out.write(frozen_value if frozen else thawed_value)
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while frozen and asyncio.get_running_loop().time() < deadline:
        with open(path) as source:
            if source.read().strip() == reads_frozen:
                return
        await asyncio.sleep(0.02)


async def thaw_if_paused(request: web.Request, record) -> None:
    supervisor = supervisor_of(request)
    if supervisor.settings(record.id).get("paused"):
        await set_frozen(daemon_of(request).containers.directory(record), False)
        supervisor.update(record.id, paused=False)


@route("POST", "/containers/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    if not containers.is_running(record):
        raise DockerError(409, f"Container {record.id} is not running")
    supervisor = supervisor_of(request)
    if supervisor.settings(record.id).get("paused"):
        raise DockerError(409, f"Container {record.id} is already paused")
    await set_frozen(containers.directory(record), True)
    supervisor.update(record.id, paused=True)
    emit(request, "container", "pause", record.id, name=record.name)
    return web.Response(status=204)


@route("POST", "/containers/{id}/unpause")
async def unpause(request: web.Request) -> web.Response:
    record = record_of(request)
    if not supervisor_of(request).settings(record.id).get("paused"):
        raise DockerError(409, f"Container {record.id} is not paused")
    await thaw_if_paused(request, record)
    emit(request, "container", "unpause", record.id, name=record.name)
    return web.Response(status=204)
