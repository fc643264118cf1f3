"""runtime/docker: Docker's image routes: list, inspect, tag, remove, and pull through
`POST /images/create` with Docker's JSON progress stream.

A pull's progress and its failure after the answer began are lines of that stream:
`{"status": ...}` while it goes, `{"error": ..., "errorDetail": {"message": ...}}` when it fails,
as the docker CLI and docker-py read them.

Pull and push take the registry credentials of the request's `X-Registry-Auth` header (base64url
of Docker's auth config JSON, as the docker CLI and docker-py send it): they serve that request
only, in place of what `docker login` saved, and are neither kept nor logged.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from ..daemon.credentials import Credentials, credentials_from
from ..daemon.errors import DaemonError
from ..images.errors import ImageError, ImageNotFound
from ..images.reference import parse_reference
from .errors import DockerError
from .routing import daemon_of, emit, json_response, route
from .translate import unix_time


def image_of(request: web.Request, name: str):
    try:
        return daemon_of(request).store.resolve(name)
    except ImageNotFound:
        raise DockerError(404, f"No such image: {name}") from None


def _repo_digests(image) -> list[str]:
    names = {tag.rsplit(":", 1)[0] for tag in image.tags if ":" in tag}
    return [f"{name}@{image.digest}" for name in sorted(names)] if image.digest else []


def _row(image) -> dict:
    config = image.config.get("config") or {}
    return {"Id": image.id, "ParentId": "", "RepoTags": list(image.tags),
            "RepoDigests": _repo_digests(image), "Created": unix_time(image.created),
            "Size": image.size, "VirtualSize": image.size, "SharedSize": -1,
            "Labels": config.get("Labels") or {}, "Containers": -1}


@route("GET", "/images/json")
async def list_images(request: web.Request) -> web.Response:
    filters = json.loads(request.query.get("filters") or "{}")
    references = list(filters.get("reference") or [])
    rows = []
    for image in daemon_of(request).store.list():
        if references and not any(_matches_reference(tag, wanted) for tag in image.tags
                                  for wanted in references):
            continue
        rows.append(_row(image))
    return json_response(rows)


def _matches_reference(tag: str, wanted: str) -> bool:
    from fnmatch import fnmatchcase

    name = tag.rsplit(":", 1)[0]
    return fnmatchcase(tag, wanted) or fnmatchcase(name, wanted)


@route("GET", "/images/{name:.+}/json")
async def inspect_image(request: web.Request) -> web.Response:
    image = image_of(request, request.match_info["name"])
    config = image.config
    return json_response({
        **_row(image), "Parent": "", "Comment": "", "Created": image.created,
        "Container": "", "DockerVersion": "", "Author": config.get("author", ""),
        "Config": config.get("config") or {}, "Architecture": config.get("architecture", ""),
        "Os": config.get("os", "linux"), "RootFS": config.get("rootfs") or {"Type": "layers"},
        "GraphDriver": {"Name": "overlay", "Data": None},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}})


@route("POST", "/images/{name:.+}/tag")
async def tag(request: web.Request) -> web.Response:
    image = image_of(request, request.match_info["name"])
    repo = request.query.get("repo")
    if not repo:
        raise DockerError(400, "repository name must have at least one component (give repo)")
    target = f"{repo}:{request.query.get('tag') or 'latest'}"
    daemon_of(request).images.tag(image.id, target)
    emit(request, "image", "tag", image.id, name=target)
    return web.Response(status=201)


@route("DELETE", "/images/{name:.+}")
async def remove(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    image_of(request, name)
    lines = daemon_of(request).images.remove(name)
    answer = []
    for line in lines:
        kind, _, what = line.partition(": ")
        answer.append({kind: what})
        emit(request, "image", kind.lower(), what, name=name)
    return json_response(answer)


def registry_auth(request: web.Request) -> Credentials | None:
    """The credentials of `X-Registry-Auth`; None when absent or empty (`{}`)."""
    header = request.headers.get("X-Registry-Auth", "").strip()
    if not header:
        return None
    # URL-safe base64 as Docker's clients send it; older ones send the standard alphabet.
    text = header.replace("+", "-").replace("/", "_")
    try:
        config = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise DockerError(400, "invalid X-Registry-Auth header: it must be base64url-encoded "
                               "JSON (username and password, or identitytoken)") from None
    return credentials_from(config, "the X-Registry-Auth header")


def _progress(status: str, **fields) -> bytes:
    return json.dumps({"status": status, **fields}).encode() + b"\r\n"


def _failure(message: str) -> bytes:
    return json.dumps({"errorDetail": {"message": message}, "error": message}).encode() + b"\r\n"


@route("POST", "/images/create")
async def pull(request: web.Request) -> web.StreamResponse:
    source = request.query.get("fromImage")
    if not source:
        raise DockerError(400, "importing an image (fromSrc) is not supported: give fromImage")
    tag_or_digest = request.query.get("tag") or ""
    if tag_or_digest:
        source += ("@" if tag_or_digest.startswith("sha256:") else ":") + tag_or_digest
    try:
        reference = parse_reference(source)
    except ImageError as error:
        raise DockerError(400, str(error)) from None
    credentials = registry_auth(request)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    name = str(reference)
    await response.write(_progress(f"Pulling from {reference.familiar_name}",
                                   id=reference.tag or reference.digest or "latest"))
    image = None
    try:
        async for event in daemon_of(request).images.pull(name, False, credentials):
            if "progress" in event:
                await response.write(_progress(str(event["progress"])))
            elif "result" in event:
                image = event["result"]
    except (DaemonError, ImageError) as error:
        await response.write(_failure(getattr(error, "message", None) or str(error)))
    else:
        if image is not None:
            await response.write(_progress(f"Digest: {image['digest']}"))
            await response.write(_progress(f"Status: Downloaded newer image for {name}"))
            emit(request, "image", "pull", name, name=name)
    await response.write_eof()
    return response


@route("POST", "/images/{name:.+}/push")
async def push(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if request.query.get("tag"):
        name = f"{name}:{request.query['tag']}"
    image_of(request, name)
    credentials = registry_auth(request)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    reference = parse_reference(name)
    await response.write(_progress(f"The push refers to repository "
                                   f"[{reference.registry}/{reference.repository}]"))
    try:
        async for event in daemon_of(request).images.push(name, False, credentials):
            if "progress" in event:
                await response.write(_progress(str(event["progress"])))
            elif "result" in event:
                await response.write(json.dumps({"progressDetail": {}, "aux": {
                    "Tag": reference.tag, "Digest": event["result"]["digest"],
                    "Size": 0}}).encode() + b"\r\n")
                emit(request, "image", "push", name, name=name)
    except (DaemonError, ImageError) as error:
        await response.write(_failure(getattr(error, "message", None) or str(error)))
    await response.write_eof()
    return response


@route("POST", "/auth")
async def login(request: web.Request) -> web.Response:
    """Checked against the registry, then kept by the daemon for its pulls and pushes (as
    `provisioner-runtime login`); the password is never logged nor returned."""
    try:
        body = await request.json()
    except ValueError:
        raise DockerError(400, "the request body is not valid JSON") from None
    user, password = body.get("username"), body.get("password")
    server = body.get("serveraddress") or ""
    if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
        raise DockerError(400, "login needs a username and a password")
    await daemon_of(request).images.login(server, user, password, False)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
