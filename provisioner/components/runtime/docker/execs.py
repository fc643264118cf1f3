"""runtime/docker: exec instances (create, start over a hijacked connection, inspect).

Docker creates an exec first (`POST /containers/{id}/exec` -> an id), starts it later
(`POST /exec/{id}/start`, whose answer is the process's output, multiplexed unless Tty) and
reports its exit code through `GET /exec/{id}/json`. Instances live in the daemon's memory, as
Docker's do; the process itself runs through the daemon's ContainerService.exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from aiohttp import web

from ..daemon.errors import DaemonError
from .containers import body_json, record_of
from .errors import DockerError
from .frames import frame, hijack, stdin_of
from .routing import EXECS, daemon_of, json_response, route


def _exec_of(request: web.Request) -> dict:
    found = request.app[EXECS].get(request.match_info["id"])
    if found is None:
        raise DockerError(404, f"No such exec instance: {request.match_info['id']}")
    return found


@route("POST", "/containers/{id}/exec")
async def create(request: web.Request) -> web.Response:
    record = record_of(request)
    body = await body_json(request)
    command = body.get("Cmd")
    if not command:
        raise DockerError(400, "No exec command specified")
    if not daemon_of(request).containers.is_running(record):
        raise DockerError(409, f"Container {record.id} is not running")
    exec_id = secrets.token_hex(32)
    request.app[EXECS][exec_id] = {
        "ID": exec_id, "ContainerID": record.id, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
        "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False,
        "ProcessConfig": {"entrypoint": command[0], "arguments": command[1:],
                          "tty": bool(body.get("Tty")), "privileged": bool(body.get("Privileged")),
                          "user": body.get("User") or ""},
        "_request": {"cmd": command, "env": body.get("Env") or [],
                     "workdir": body.get("WorkingDir") or None, "user": body.get("User") or None},
        "_size": _console_size(body.get("ConsoleSize")),
    }
    return json_response({"Id": exec_id}, status=201)


async def _run(request: web.Request, instance: dict, output) -> None:
    """Run the exec; `output(stream, data)` gets its output; the exit code lands in the instance."""
    instance["Running"] = True
    try:
        events = daemon_of(request).containers.exec(instance["ContainerID"], instance["_request"])
        async for event in events:
            if "data" in event:
                await output(event["stream"], event["data"].encode("utf-8", "surrogateescape"))
            elif "exit_code" in event:
                instance["ExitCode"] = event["exit_code"]
    except DaemonError as error:
        instance["ExitCode"] = 126
        await output("stderr", f"{error.message}\n".encode())
    finally:
        instance["Running"] = False


@route("POST", "/exec/{id}/start")
async def start(request: web.Request) -> web.StreamResponse:
    instance = _exec_of(request)
    body = await body_json(request)
    if instance["Running"] or instance["ExitCode"] is not None:
        raise DockerError(409, f"exec {instance['ID']} has already run")
    if body.get("Detach"):
        async def discard(_stream: str, _data: bytes) -> None:
            return None
        asyncio.get_running_loop().create_task(_run(request, instance, discard))
        return web.Response(status=200)
    tty = bool(body.get("Tty", instance["ProcessConfig"]["tty"]))
    if instance["OpenStdin"] or tty:
        return await _start_interactive(request, instance, tty)
    response = await hijack(request, tty)
    wanted = {"stdout": instance["OpenStdout"] or not instance["OpenStderr"],
              "stderr": instance["OpenStderr"] or not instance["OpenStdout"]}

    async def send(stream: str, data: bytes) -> None:
        if wanted[stream]:
            await response.write(data if tty else frame(stream, data))

    with contextlib.suppress(ConnectionResetError):
        await _run(request, instance, send)
        await response.write_eof()
    return response


@route("GET", "/exec/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    instance = _exec_of(request)
    return json_response({key: value for key, value in instance.items()
                              if not key.startswith("_")})


async def _start_interactive(request: web.Request, instance: dict,
                             tty: bool) -> web.StreamResponse:
    """stdin (the client's raw bytes, its half-close the end) and/or a terminal (raw output;
    resized through /exec/{id}/resize)."""
    instance["Running"] = True
    body = {**instance["_request"], "stdin": instance["OpenStdin"], "tty": tty,
            "size": instance["_size"]}
    try:
        session = await daemon_of(request).containers.exec_interactive(instance["ContainerID"],
                                                                       body)
    except DaemonError as error:
        instance["Running"] = False
        raise DockerError(error.status if error.status < 500 else 500, error.message) from None
    instance["_session"] = session
    response = await hijack(request, tty)
    feeder = None
    if instance["OpenStdin"]:
        feeder = asyncio.get_running_loop().create_task(_feed(session, stdin_of(request)))
    wanted = {"stdout": instance["OpenStdout"] or tty, "stderr": instance["OpenStderr"]}
    try:
        with contextlib.suppress(ConnectionResetError):
            async for stream, data in session.outputs():
                if wanted[stream]:
                    await response.write(data if tty else frame(stream, data))
        try:
            instance["ExitCode"] = await session.wait()
        except DaemonError as error:
            instance["ExitCode"] = 126
            with contextlib.suppress(ConnectionResetError):
                message = f"{error.message}\n".encode()
                await response.write(message if tty else frame("stderr", message))
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    finally:
        instance["Running"] = False
        instance.pop("_session", None)
        if feeder is not None:
            feeder.cancel()
    return response


async def _feed(session, stdin: asyncio.Queue) -> None:
    while (data := await stdin.get()) is not None:
        await session.write_stdin(data)
    await session.close_stdin()


def _console_size(value) -> list[int] | None:
    """Docker's ConsoleSize: [height, width], as the daemon's exec takes it ([rows, cols])."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(n, int) and n > 0
                                                           for n in value):
        return [value[0], value[1]]
    return None


@route("POST", "/exec/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    instance = _exec_of(request)
    try:
        rows, cols = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise DockerError(400, "resize needs numeric h and w") from None
    session = instance.get("_session")
    if session is not None:
        session.resize(rows, cols)
    return web.Response(status=201)
