"""runtime/docker: the Docker Engine API application: errors as Docker words them, ping,
version and info. The other modules add their routes to `routing.routes` on import.

Errors: a DockerError keeps its status and text; the daemon's own errors keep the status the
daemon's API gives them (daemon/app.py's table); anything else is a 500 logged in full.
"""

from __future__ import annotations

import logging
import os
import platform
import socket

from aiohttp import web

from ..daemon.app import status_of as daemon_status_of
from ..daemon.service import VERSION, RuntimeDaemon
from . import (  # noqa: F401 - their routes register on import
    archive,
    building,
    containers,
    events,
    execs,
    images,
    inspection,
    networks,
    pausing,
    transfer,
    volumes,
)
from .errors import DockerError
from .routing import (
    API_VERSION,
    DAEMON,
    EVENTS,
    EXECS,
    MIN_API_VERSION,
    NETWORKS,
    SUPERVISOR,
    VOLUMES,
    json_response,
    route,
    routes,
)
from .supervisor import Supervisor

log = logging.getLogger("provisioner.runtime.docker")
ENGINE_VERSION = f"{VERSION}-provisioner"


def status_of(error: BaseException) -> tuple[int, str] | None:
    """Docker's own errors, then whatever the native API answers for (one table, daemon/app)."""
    if isinstance(error, DockerError):
        return error.status, error.message
    return daemon_status_of(error)


def reply_for(request: web.Request, error: Exception) -> tuple[int, str]:
    known = status_of(error)
    if known is None:
        log.exception("docker API %s %s failed", request.method, request.path)
        known = (500, f"internal error in the runtime daemon: {error}")
    return known


@web.middleware
async def docker_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        status, message = reply_for(request, error)
        return json_response({"message": message}, status=status)


@web.middleware
async def engine_headers(request: web.Request, handler):
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("Api-Version", API_VERSION)
        response.headers.setdefault("Server", f"Docker/{ENGINE_VERSION} (linux)")
    return response


def _ping_headers() -> dict[str, str]:
    return {"Api-Version": API_VERSION, "Docker-Experimental": "false", "OSType": "linux",
            "Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache"}


@route("GET", "/_ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers=_ping_headers())


@route("HEAD", "/_ping")
async def ping_head(request: web.Request) -> web.Response:
    return web.Response(headers=_ping_headers())


@route("GET", "/version")
async def version(request: web.Request) -> web.Response:
    uname = platform.uname()
    return json_response({
        "Platform": {"Name": "provisioner-runtime"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                    "Os": "linux", "Arch": _arch(), "KernelVersion":
                                    uname.release}}],
        "Version": ENGINE_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": _arch(), "KernelVersion": uname.release, "BuildTime": ""})


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _mem_total() -> int:
    with open("/proc/meminfo") as source:
        for line in source:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


@route("GET", "/info")
async def info(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    service = daemon.containers
    states = [service.status(record).status for record in service.records.values()]
    cgroup_mode = daemon.cgroup_mode
    return json_response({
        "ID": daemon.config.root, "Name": socket.gethostname(),
        "Containers": len(states), "ContainersRunning": states.count("running"),
        "ContainersPaused": 0, "ContainersStopped": len(states) - states.count("running"),
        "Images": len(daemon.store.list()), "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "overlay"]],
        "DockerRootDir": daemon.config.root, "ServerVersion": ENGINE_VERSION,
        "OperatingSystem": _os_name(), "OSType": "linux", "OSVersion": "",
        "Architecture": platform.machine(), "KernelVersion": platform.release(),
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(),
        "CgroupDriver": "cgroupfs" if cgroup_mode != "none" else "none",
        "CgroupVersion": "2" if cgroup_mode == "v2" else "1",
        "MemoryLimit": cgroup_mode != "none", "CpuCfsQuota": cgroup_mode != "none",
        "PidsLimit": cgroup_mode != "none", "IPv4Forwarding": True,
        "LoggingDriver": "json-file", "DefaultRuntime": "provisioner-runtime",
        "Runtimes": {"provisioner-runtime": {"path": "provisioner-runtime"}},
        "Plugins": {"Volume": [], "Network": ["bridge", "host", "none"],
                    "Log": ["json-file"]},
        "RegistryConfig": {"Mirrors": list(getattr(daemon.config, "registry_mirrors", ())),
                           "IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": ""},
        "Labels": [], "SecurityOptions": [], "Warnings": [],
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""), "NoProxy": os.environ.get("NO_PROXY", ""),
    })


def _os_name() -> str:
    try:
        with open("/etc/os-release") as source:
            for line in source:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def make_docker_app(daemon: RuntimeDaemon) -> web.Application:
    app = web.Application(middlewares=[engine_headers, docker_errors], client_max_size=1 << 40)
    app[DAEMON] = daemon
    supervisor = Supervisor(daemon)
    app[SUPERVISOR] = supervisor
    app[EXECS] = {}
    app[VOLUMES] = volumes.VolumeStore(daemon.config.root)
    network_store = networks.NetworkStore(daemon.config.root, daemon.containers)
    app[NETWORKS] = network_store
    supervisor.before_start = network_store.prepare
    supervisor.after_start = network_store.refresh
    supervisor.after_remove = network_store.forget_container
    bus = events.EventBus()
    app[EVENTS] = bus
    supervisor.events = bus
    app.add_routes(routes)

    async def supervise(app: web.Application):
        await supervisor.open()
        yield
        supervisor.close()

    app.cleanup_ctx.append(supervise)
    return app
