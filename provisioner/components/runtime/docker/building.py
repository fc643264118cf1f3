"""runtime/docker: `POST /build`: a tar context in, Docker's JSON progress stream out.

The daemon's builder (daemon/imaging.py, build/) does the work; its progress lines become
`{"stream": line}` objects (ending with the builder's "Successfully built/tagged" lines) and
the image id an `{"aux": {"ID": ...}}`, as docker-py and the docker CLI's classic builder read.
A failure after the answer began is an `{"error": ..., "errorDetail": ...}` line.
"""

from __future__ import annotations

import json
import shutil

from aiohttp import web

from ..build.context import ContextError
from ..build.dockerfile import DockerfileError
from ..daemon.app import body_to_file
from ..daemon.errors import DaemonError
from ..images.errors import ImageError
from .errors import DockerError
from .routing import daemon_of, route

BUILD_FAILURES = (DaemonError, ImageError, DockerfileError, ContextError)


def _line(data: dict) -> bytes:
    return json.dumps(data).encode() + b"\r\n"


def _build_args(request: web.Request) -> dict[str, str]:
    try:
        args = json.loads(request.query.get("buildargs") or "{}")
    except ValueError:
        raise DockerError(400, "buildargs must be a JSON object of strings") from None
    if not isinstance(args, dict):
        raise DockerError(400, "buildargs must be a JSON object of strings")
    return {str(key): str(value) for key, value in args.items() if value is not None}


@route("POST", "/build")
async def build(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    tags = request.query.getall("t", [])
    if request.query.get("remote"):
        raise DockerError(400, "building from a remote context is not supported: send the "
                               "context as a tar body")
    build_args = _build_args(request)
    no_cache = request.query.get("nocache") in ("1", "true", "True")
    workdir = daemon.images.temp_dir()
    try:
        context = await body_to_file(request, workdir, "context.tar")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        result = None
        try:
            async for event in daemon.images.build(
                    context, tags, request.query.get("dockerfile") or "Dockerfile", build_args,
                    no_cache, lambda: request.transport is None or
                    request.transport.is_closing()):
                if "progress" in event:
                    await response.write(_line({"stream": str(event["progress"]) + "\n"}))
                elif "result" in event:
                    result = event["result"]
        except BUILD_FAILURES as error:
            message = getattr(error, "message", None) or str(error)
            await response.write(_line({"errorDetail": {"message": message},
                                        "error": message}))
        if result is not None:      # the builder's own lines said "Successfully built/tagged"
            await response.write(_line({"aux": {"ID": result["id"]}}))
        await response.write_eof()
        return response
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
