"""runtime/docker: the route table of the Docker API; each route also answers under `/v1.NN`.

Docker clients put the API version they negotiated in front of every path (`/v1.43/containers/
json`); the daemon answers the same whatever version in its supported range is asked.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..daemon.service import RuntimeDaemon
from .errors import DockerError

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
routes = web.RouteTableDef()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _checked(handler):
    async def checked(request: web.Request) -> web.StreamResponse:
        asked = request.match_info.get("api_version")
        if asked is not None:
            try:
                wanted = _version_tuple(asked)
            except ValueError:
                raise DockerError(400, f"invalid API version {asked!r} in the path") from None
            if wanted < _version_tuple(MIN_API_VERSION):
                raise DockerError(400, f"client version {asked} is too old. Minimum supported "
                                       f"API version is {MIN_API_VERSION}, please upgrade your "
                                       "client to a newer version")
            if wanted > _version_tuple(API_VERSION):
                raise DockerError(400, f"client version {asked} is too new. Maximum supported "
                                       f"API version is {API_VERSION}")
        return await handler(request)
    return checked


def route(method: str, path: str):
    """Register `handler` for `path` and `/v{api_version}path`."""
    def register(handler):
        checked = _checked(handler)
        routes.route(method, path)(checked)
        routes.route(method, "/v{api_version:[0-9]+\\.[0-9]+}" + path)(checked)
        return handler
    return register


def daemon_of(request: web.Request) -> RuntimeDaemon:
    return request.app[DAEMON]


DAEMON = web.AppKey("docker-api-daemon", RuntimeDaemon)
SUPERVISOR: web.AppKey = web.AppKey("docker-api-supervisor", object)
EXECS: web.AppKey = web.AppKey("docker-api-execs", dict)


def json_response(data, status: int = 200) -> web.Response:
    """JSON with Docker's bare content type (the docker CLI reads error bodies only then)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json"})
EVENTS: web.AppKey = web.AppKey("docker-api-events", object)


def emit(request: web.Request, kind: str, action: str, actor_id: str, **attributes) -> None:
    request.app[EVENTS].emit(kind, action, actor_id, attributes)
VOLUMES: web.AppKey = web.AppKey("docker-api-volumes", object)
NETWORKS: web.AppKey = web.AppKey("docker-api-networks", object)
