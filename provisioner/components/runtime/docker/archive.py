"""runtime/docker: `docker cp`: `GET/HEAD/PUT /containers/{id}/archive?path=...` on a running
container. The work runs in archive_helper.py, a process inside the container's mount namespace,
so paths resolve in the container; here its tar output is streamed out, or the request's tar is
fed to it. The path's stat goes in Docker's `X-Docker-Container-Path-Stat` header (base64 JSON).
"""

from __future__ import annotations

import asyncio
import base64
import sys

from aiohttp import web

from .containers import record_of
from .errors import DockerError
from .routing import daemon_of, route

HELPER = [sys.executable, "-m", "provisioner.components.runtime.docker.archive_helper"]
STAT_HEADER = "X-Docker-Container-Path-Stat"


def _target(request: web.Request) -> tuple[object, int, str]:
    record = record_of(request)
    path = request.query.get("path")
    if not path:
        raise DockerError(400, "path is required (the file or directory in the container)")
    state = daemon_of(request).containers.status(record)
    if state.status != "running" or not state.pid:
        raise DockerError(409, f"container {record.name} is not running: docker cp here works "
                               "on running containers")
    return record, state.pid, path if path.startswith("/") else "/" + path


async def _helper_failed(process, record, path: str) -> DockerError:
    message = (await process.stderr.read()).decode(errors="replace").strip()
    await process.wait()
    status = 404 if process.returncode == 2 else 400
    if status == 404:
        message = f"Could not find the file {path} in container {record.name}"
    return DockerError(status, message or f"cannot reach {path} in container {record.name}")


async def _stat(record, pid: int, path: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *HELPER, "stat", str(pid), path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise DockerError(404 if process.returncode == 2 else 400,
                          f"Could not find the file {path} in container {record.name}")
    return base64.b64encode(output.strip()).decode()


@route("HEAD", "/containers/{id}/archive")
async def stat_path(request: web.Request) -> web.Response:
    record, pid, path = _target(request)
    return web.Response(headers={STAT_HEADER: await _stat(record, pid, path)})


@route("GET", "/containers/{id}/archive")
async def get_archive(request: web.Request) -> web.StreamResponse:
    record, pid, path = _target(request)
    header = await _stat(record, pid, path)
    process = await asyncio.create_subprocess_exec(
        *HELPER, "get", str(pid), path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                           STAT_HEADER: header})
    await response.prepare(request)
    try:
        while chunk := await process.stdout.read(1 << 16):
            await response.write(chunk)
        await response.write_eof()
    finally:
        if process.returncode is None:
            try:
                process.kill()
            except ProcessLookupError:
                pass
        await process.wait()
    return response


@route("PUT", "/containers/{id}/archive")
async def put_archive(request: web.Request) -> web.Response:
    record, pid, path = _target(request)
    process = await asyncio.create_subprocess_exec(
        *HELPER, "put", str(pid), path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            process.stdin.write(chunk)
            await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass
    await process.wait()
    if process.returncode != 0:
        raise await _helper_failed(process, record, path)
    return web.Response(status=200)
