"""runtime/daemon: the HTTP API (aiohttp) the CLI and the kubelet use, over a unix socket.

JSON in, JSON out; errors are {"message": ...} with a 4xx/5xx status. Streaming answers (build,
pull, push, load, logs, exec) are one JSON object per line; an error after the status line was
sent arrives as a last line {"error": ..., "status": ...}. See the runtime README for the routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator

from aiohttp import web

from ..build.context import ContextError
from ..build.dockerfile import DockerfileError
from ..container.errors import ContainerError
from ..images.errors import ImageError, ImageNotFound, InvalidReference
from ..net.errors import NetworkError, PortInUse
from . import interactive, views
from . import logs as logfiles
from .credentials import credentials_from
from .errors import BadRequest, DaemonError
from .service import RuntimeDaemon

log = logging.getLogger("provisioner.runtime.daemon")
routes = web.RouteTableDef()
DAEMON = web.AppKey("daemon", RuntimeDaemon)


# Exceptions the daemon answers for, most specific first: the first class an error is an instance
# of decides its status. Anything else is a 500 with its details in the daemon's log.
ERROR_STATUSES: tuple[tuple[type[BaseException], int], ...] = (
    (ImageNotFound, 404),
    (InvalidReference, 400),
    (ImageError, 400),            # includes BuildError and registry refusals
    (DockerfileError, 400),
    (ContextError, 400),          # the build context the client sent is unusable
    (PortInUse, 409),
    (NetworkError, 400),
    (ContainerError, 500),        # a known failure with a message worth showing as it is
)


def status_of(error: BaseException) -> tuple[int, str] | None:
    if isinstance(error, DaemonError):
        return error.status, error.message
    for cls, status in ERROR_STATUSES:
        if isinstance(error, cls):
            return status, getattr(error, "message", None) or str(error)
    return None


def _reply_for(request: web.Request, error: Exception) -> tuple[int, str]:
    """The status and message for a failed request; an unexpected error is logged in full."""
    known = status_of(error)
    if known is None:
        log.exception("%s %s failed", request.method, request.path)
        known = (500, f"internal error in the runtime daemon: {error}")
    return known


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        status, message = _reply_for(request, error)
        return web.json_response({"message": message}, status=status)


async def body_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


async def stream(request: web.Request, events: AsyncIterator[dict]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    try:
        try:
            async for event in events:
                await response.write(json.dumps(event).encode() + b"\n")
        except ConnectionResetError:
            raise
        except Exception as error:
            status, message = _reply_for(request, error)
            await response.write(json.dumps({"error": message, "status": status}).encode()
                                 + b"\n")
        await response.write_eof()
    except ConnectionResetError:
        # The client went away (a cancelled build, an interrupted logs -f): nobody to tell.
        log.info("%s %s: the client went away", request.method, request.path)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()       # its cleanup (a build's cancellation) runs now, not at GC
    return response


async def body_to_file(request: web.Request, directory: str, name: str) -> str:
    """Spool the request body to disk; file writes in a thread keep the loop serving others."""
    path = os.path.join(directory, name)
    out = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in request.content.iter_chunked(1 << 20):
            await asyncio.to_thread(out.write, chunk)
    finally:
        out.close()
    return path


def daemon_of(request: web.Request) -> RuntimeDaemon:
    return request.app[DAEMON]


# -- daemon and images ------------------------------------------------------------------

@routes.get("/v1/version")
async def version(request: web.Request) -> web.Response:
    return web.json_response(daemon_of(request).version())


@routes.get("/v1/images")
async def list_images(request: web.Request) -> web.Response:
    images = daemon_of(request).store.list()
    return web.json_response([views.image_row(image) for image in images])


@routes.post("/v1/images/build")
async def build(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    tags = [tag for tag in request.query.get("t", "").split(",") if tag]
    try:
        build_args = json.loads(request.query.get("buildargs") or "{}")
    except ValueError:
        raise BadRequest("buildargs must be a JSON object") from None
    workdir = daemon.images.temp_dir()
    try:
        context = await body_to_file(request, workdir, "context.tar")
        return await stream(request, daemon.images.build(
            context, tags, request.query.get("dockerfile") or "Dockerfile", build_args,
            request.query.get("nocache") == "1", lambda: _client_gone(request)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@routes.post("/v1/auth")
async def login(request: web.Request) -> web.Response:
    """{registry, username, password, insecure}: checked against the registry, then saved.
    The password is never logged nor returned."""
    body = await body_json(request)
    fields = [body.get(key) for key in ("registry", "username", "password")]
    if not all(isinstance(value, str) for value in fields[1:]) or \
            not isinstance(fields[0] or "", str):
        raise BadRequest("login needs a registry, a username and a password (strings)")
    host = await daemon_of(request).images.login(fields[0] or "", fields[1], fields[2],
                                                 bool(body.get("insecure")))
    return web.json_response({"registry": host, "status": "Login Succeeded"})


@routes.delete("/v1/auth/{registry}")
async def logout(request: web.Request) -> web.Response:
    host, removed = daemon_of(request).images.logout(request.match_info["registry"])
    return web.json_response({"registry": host, "removed": removed})


@routes.post("/v1/images/pull")
async def pull(request: web.Request) -> web.StreamResponse:
    body = await body_json(request)
    if not body.get("ref"):
        raise BadRequest("pull needs a ref")
    # "auth": Docker's auth config for this pull only (the kubelet's imagePullSecrets)
    credentials = credentials_from(body["auth"], "auth") if body.get("auth") else None
    return await stream(request, daemon_of(request).images.pull(
        body["ref"], bool(body.get("insecure")), credentials))


@routes.post("/v1/images/push")
async def push(request: web.Request) -> web.StreamResponse:
    body = await body_json(request)
    if not body.get("ref"):
        raise BadRequest("push needs a ref")
    daemon_of(request).store.resolve(body["ref"])
    return await stream(request, daemon_of(request).images.push(body["ref"],
                                                                bool(body.get("insecure"))))


@routes.post("/v1/images/load")
async def load(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    workdir = daemon.images.temp_dir()
    try:
        path = await body_to_file(request, workdir, "load.tar")
        loaded = await asyncio.to_thread(daemon.images.load, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = "".join(json.dumps({"progress": "Loaded image: " + (", ".join(image["tags"])
                                                               or image["id"])}) + "\n"
                    for image in loaded)
    lines += json.dumps({"result": loaded}) + "\n"
    return web.Response(text=lines, content_type="application/x-ndjson")


@routes.post("/v1/images/tag")
async def tag(request: web.Request) -> web.Response:
    body = await body_json(request)
    if not body.get("source") or not body.get("target"):
        raise BadRequest("tag needs a source and a target")
    daemon_of(request).images.tag(body["source"], body["target"])
    return web.json_response({})


@routes.post("/v1/images/bootstrap")
async def bootstrap(request: web.Request) -> web.Response:
    images = await asyncio.to_thread(daemon_of(request).images.bootstrap)
    return web.json_response(images)


@routes.get("/v1/images/{ref:.+}/save")
async def save(request: web.Request) -> web.StreamResponse:
    return await send_image_archive(request, daemon_of(request), [request.match_info["ref"]])


async def send_image_archive(request: web.Request, daemon: RuntimeDaemon,
                             refs: list[str]) -> web.StreamResponse:
    """Stream an OCI archive of `refs` (the native API and Docker's `images/get` both use it)."""
    path = await asyncio.to_thread(daemon.images.save, refs)
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        source = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(source.read, 1 << 20):
                await response.write(chunk)
        finally:
            source.close()
        await response.write_eof()
        return response
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


@routes.get("/v1/images/{ref:.+}")
async def inspect_image(request: web.Request) -> web.Response:
    image = daemon_of(request).store.resolve(request.match_info["ref"])
    return web.json_response(views.image_inspect(image))


@routes.delete("/v1/images/{ref:.+}")
async def remove_image(request: web.Request) -> web.Response:
    deleted = daemon_of(request).images.remove(request.match_info["ref"])
    return web.json_response({"deleted": deleted})


# -- containers ---------------------------------------------------------------------------

@routes.post("/v1/containers")
async def create_container(request: web.Request) -> web.Response:
    record = await daemon_of(request).containers.create(await body_json(request))
    return web.json_response({"id": record.id, "name": record.name}, status=201)


@routes.get("/v1/containers")
async def list_containers(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    show_all = request.query.get("all") in ("1", "true")
    rows = []
    for record in sorted(containers.records.values(), key=lambda r: r.created, reverse=True):
        state = containers.status(record)
        if show_all or state.status == "running":
            rows.append(views.list_row(record, state))
    return web.json_response(rows)


@routes.get("/v1/containers/{id}")
async def inspect_container(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    record = daemon.containers.find(request.match_info["id"])
    try:
        image_config = daemon.store.resolve(record.image_id).config
    except ImageError:
        image_config = {}
    return web.json_response(views.inspect(record, daemon.containers.status(record),
                                           daemon.containers.log_path(record), image_config))


@routes.post("/v1/containers/{id}/start")
async def start_container(request: web.Request) -> web.Response:
    state = await daemon_of(request).containers.start(request.match_info["id"])
    return web.json_response({"status": state.status, "pid": state.pid,
                              "warnings": [state.cgroup_warning] if state.cgroup_warning else []})


@routes.post("/v1/containers/{id}/stop")
async def stop_container(request: web.Request) -> web.Response:
    try:
        grace = float(request.query.get("t", 10))
    except ValueError:
        raise BadRequest("t must be a number of seconds") from None
    state = await daemon_of(request).containers.stop(request.match_info["id"], grace)
    return web.json_response({"status": state.status, "exit_code": state.exit_code})


@routes.post("/v1/containers/{id}/kill")
async def kill_container(request: web.Request) -> web.Response:
    await daemon_of(request).containers.kill(request.match_info["id"],
                                             request.query.get("signal", "KILL"))
    return web.json_response({})


@routes.post("/v1/containers/{id}/wait")
async def wait_container(request: web.Request) -> web.Response:
    state = await daemon_of(request).containers.wait(request.match_info["id"])
    return web.json_response({"exit_code": state.exit_code, "oom_killed": state.oom_killed,
                              "status": state.status})


@routes.delete("/v1/containers/{id}")
async def remove_container(request: web.Request) -> web.Response:
    await daemon_of(request).containers.remove(request.match_info["id"],
                                               request.query.get("force") in ("1", "true"))
    return web.json_response({})


@routes.get("/v1/containers/{id}/logs")
async def container_logs(request: web.Request) -> web.StreamResponse:
    containers = daemon_of(request).containers
    record = containers.find(request.match_info["id"])
    tail_text = request.query.get("tail")
    try:
        tail = int(tail_text) if tail_text not in (None, "", "all") else None
    except ValueError:
        raise BadRequest(f"tail must be a number of lines, not {tail_text!r}") from None
    path = containers.log_path(record)

    async def entries() -> AsyncIterator[dict]:
        if request.query.get("follow") in ("1", "true"):
            source = logfiles.follow(path, lambda: record.id in containers.records
                                     and containers.is_running(record), tail)
            async for entry in source:
                yield _log_event(entry)
        else:
            for entry in logfiles.read_all(path, tail):
                yield _log_event(entry)

    return await stream(request, entries())


def _log_event(entry: logfiles.LogEntry) -> dict:
    return {"time": entry.time, "stream": entry.stream,
            "data": entry.data.decode("utf-8", "surrogateescape")}


@routes.post("/v1/containers/{id}/exec")
async def exec_in_container(request: web.Request) -> web.StreamResponse:
    """JSON lines of output; or, asked with `Upgrade: tcp`, an interactive stream of frames
    (stdin, a TTY, resize: daemon/interactive.py, iostream.py)."""
    containers = daemon_of(request).containers
    body = await body_json(request)
    if interactive.wants_upgrade(request):
        return await interactive.serve_hijacked(
            request, lambda: containers.exec_interactive(request.match_info["id"], body))
    events = containers.exec(request.match_info["id"], body)
    first = await anext(events)      # a container that is not there or not running: plain error
    return await stream(request, _prepend(first, events))


@routes.post("/v1/containers/{id}/attach")
async def attach_to_container(request: web.Request) -> web.StreamResponse:
    """The container's own stdin and terminal over an upgraded connection (Upgrade: tcp):
    iostream frames both ways, its exit code last (daemon/interactive.py)."""
    if not interactive.wants_upgrade(request):
        raise BadRequest("attach needs an upgraded connection (Connection: Upgrade, "
                         "Upgrade: tcp)")
    body = await body_json(request)
    return await interactive.serve_attach(request, daemon_of(request).containers,
                                          request.match_info["id"], bool(body.get("logs")))


async def _prepend(first: dict, rest: AsyncIterator[dict]) -> AsyncIterator[dict]:
    yield first
    async for event in rest:
        yield event


# -- pods ---------------------------------------------------------------------------------

@routes.post("/v1/pods")
async def create_pod(request: web.Request) -> web.Response:
    pods = daemon_of(request).pods
    pod = await pods.create(await body_json(request))
    return web.json_response(pods.view(pod), status=201)


@routes.get("/v1/pods")
async def list_pods(request: web.Request) -> web.Response:
    pods = daemon_of(request).pods
    return web.json_response([pods.view(pod) for pod in pods.records.values()])


@routes.get("/v1/pods/{id}")
async def inspect_pod(request: web.Request) -> web.Response:
    pods = daemon_of(request).pods
    return web.json_response(pods.view(pods.find(request.match_info["id"])))


@routes.delete("/v1/pods/{id}")
async def remove_pod(request: web.Request) -> web.Response:
    await daemon_of(request).pods.delete(request.match_info["id"])
    return web.json_response({})


def make_app(daemon: RuntimeDaemon) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=1 << 40)
    app[DAEMON] = daemon
    app.add_routes(routes)
    return app


__all__ = ["make_app"]
