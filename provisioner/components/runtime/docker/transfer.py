"""runtime/docker: images as tarballs and their history: `GET /images/{name}/get` and
`GET /images/get?names=...` (docker save), `POST /images/load` (docker load), and
`GET /images/{name}/history`.

Saved tarballs hold an OCI layout plus Docker's manifest.json (images/archive.py), so `docker
load` elsewhere reads them; load takes both that and `docker save` tarballs.
"""

from __future__ import annotations

import asyncio
import json
import shutil

from aiohttp import web

from ..daemon.app import body_to_file, send_image_archive
from .images import image_of
from .routing import daemon_of, emit, json_response, route
from .translate import unix_time


async def _send_saved(request: web.Request, names: list[str]) -> web.StreamResponse:
    for name in names:
        image_of(request, name)
    return await send_image_archive(request, daemon_of(request), names)


@route("GET", "/images/get")
async def save_many(request: web.Request) -> web.StreamResponse:
    return await _send_saved(request, request.query.getall("names", []))


@route("GET", "/images/{name:.+}/get")
async def save_one(request: web.Request) -> web.StreamResponse:
    return await _send_saved(request, [request.match_info["name"]])


@route("POST", "/images/load")
async def load(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    workdir = daemon.images.temp_dir()
    try:
        path = await body_to_file(request, workdir, "load.tar")
        loaded = await asyncio.to_thread(daemon.images.load, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = []
    for image in loaded:
        for name in image["tags"] or [image["id"]]:
            kind = "Loaded image" if image["tags"] else "Loaded image ID"
            lines.append(json.dumps({"stream": f"{kind}: {name}\n"}))
            emit(request, "image", "load", image["id"], name=name)
    # Chunked, as Docker's: docker-py reads a chunked answer line by line, any other as one JSON.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for line in lines:
        await response.write(line.encode() + b"\n")
    await response.write_eof()
    return response


@route("GET", "/images/{name:.+}/history")
async def history(request: web.Request) -> web.Response:
    image = image_of(request, request.match_info["name"])
    entries = list(image.config.get("history") or [])
    rows = []
    for index, entry in enumerate(reversed(entries)):
        rows.append({"Id": image.id if index == 0 else "<missing>",
                     "Created": unix_time(entry.get("created")),
                     "CreatedBy": entry.get("created_by", ""),
                     "Tags": list(image.tags) if index == 0 else None,
                     "Size": 0, "Comment": entry.get("comment", "")})
    return json_response(rows)
