"""runtime/docker: named volumes (`/volumes` routes, and `-v NAME:/path` in a create).

A volume is a directory `<root>/docker/volumes/<name>/_data` with its description beside it in
`volume.json`; a container mounts it as a bind of that directory, so the daemon's create and
the core need nothing new. A create naming a volume that does not exist makes it (as Docker).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil

from aiohttp import web

from ..daemon.state import now_rfc3339, write_json_atomically
from .errors import DockerError
from .routing import VOLUMES, daemon_of, json_response, route

VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")


class VolumeStore:
    def __init__(self, root: str):
        self.directory = os.path.join(root, "docker", "volumes")
        os.makedirs(self.directory, exist_ok=True)

    def _meta(self, name: str) -> str:
        return os.path.join(self.directory, name, "volume.json")

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.directory, name, "_data")

    def get(self, name: str) -> dict:
        try:
            with open(self._meta(name)) as source:
                return json.load(source)
        except (OSError, ValueError):
            raise DockerError(404, f"get {name}: no such volume") from None

    def exists(self, name: str) -> bool:
        return os.path.exists(self._meta(name))

    def create(self, name: str | None, labels: dict | None = None,
               options: dict | None = None) -> dict:
        anonymous = not name
        name = name or secrets.token_hex(32)
        if not VALID_NAME.match(name):
            raise DockerError(400, f"create {name}: \"{name}\" includes invalid characters for "
                                   "a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are "
                                   "allowed")
        if self.exists(name):
            return self.get(name)
        os.makedirs(self.mountpoint(name), exist_ok=True)
        volume = {"Name": name, "Driver": "local", "Mountpoint": self.mountpoint(name),
                  "CreatedAt": now_rfc3339(), "Labels": labels or {}, "Scope": "local",
                  "Options": options or {}, "Anonymous": anonymous}
        write_json_atomically(self._meta(name), volume)
        return volume

    def all(self) -> list[dict]:
        return [self.get(name) for name in sorted(os.listdir(self.directory))
                if self.exists(name)]

    def remove(self, name: str) -> None:
        self.get(name)
        shutil.rmtree(os.path.join(self.directory, name))

    def users(self, name: str, records) -> list[str]:
        mountpoint = self.mountpoint(name)
        return [record.id for record in records
                if any(volume.split(":")[0] == mountpoint for volume in record.volumes)]

    def resolve_binds(self, binds: list, mounts: list) -> list[str]:
        """Docker's Binds and Mounts as the daemon's `source:destination[:ro]` binds."""
        resolved = []
        for bind in binds or []:
            source, _, rest = str(bind).partition(":")
            if source and not source.startswith("/"):
                self.create(source)
                source = self.mountpoint(source)
            resolved.append(f"{source}:{rest}" if rest else source)
        for mount in mounts or []:
            kind, target = mount.get("Type", "volume"), mount.get("Target")
            if kind == "volume":
                source = self.mountpoint(self.create(mount.get("Source") or None)["Name"])
            elif kind == "bind":
                source = mount.get("Source")
            else:
                raise DockerError(400, f"mount type {kind!r} is not supported: use bind or "
                                       "volume")
            resolved.append(f"{source}:{target}" + (":ro" if mount.get("ReadOnly") else ""))
        return resolved

    def name_of(self, host_path: str) -> str | None:
        """The volume a bind source is, for inspect's Mounts; None for a plain bind."""
        parent, leaf = os.path.split(host_path)
        if leaf == "_data" and os.path.dirname(parent) == self.directory:
            return os.path.basename(parent)
        return None


def store_of(request: web.Request) -> VolumeStore:
    return request.app[VOLUMES]


def _view(volume: dict) -> dict:
    return {key: value for key, value in volume.items() if key != "Anonymous"}


def _filters(request: web.Request) -> dict[str, list[str]]:
    try:
        return {key: list(value) for key, value in
                json.loads(request.query.get("filters") or "{}").items()}
    except ValueError:
        raise DockerError(400, "invalid filters: not JSON") from None


@route("GET", "/volumes")
async def list_volumes(request: web.Request) -> web.Response:
    store, filters = store_of(request), _filters(request)
    records = daemon_of(request).containers.records.values()
    rows = []
    for volume in store.all():
        labels = volume.get("Labels") or {}
        if "name" in filters and not any(value in volume["Name"] for value in filters["name"]):
            continue
        if "label" in filters and not all(
                (key in labels and (not sep or labels[key] == value))
                for key, sep, value in (item.partition("=") for item in filters["label"])):
            continue
        if "dangling" in filters:
            dangling = not store.users(volume["Name"], records)
            if (filters["dangling"][0] in ("true", "1")) != dangling:
                continue
        rows.append(_view(volume))
    return json_response({"Volumes": rows, "Warnings": []})


@route("POST", "/volumes/create")
async def create_volume(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise DockerError(400, f"volume driver {driver!r} is not supported: use local")
    volume = store_of(request).create(body.get("Name"), body.get("Labels"),
                                      body.get("DriverOpts"))
    return json_response(_view(volume), status=201)


@route("GET", "/volumes/{name}")
async def inspect_volume(request: web.Request) -> web.Response:
    return json_response(_view(store_of(request).get(request.match_info["name"])))


@route("DELETE", "/volumes/{name}")
async def remove_volume(request: web.Request) -> web.Response:
    store, name = store_of(request), request.match_info["name"]
    store.get(name)
    users = store.users(name, daemon_of(request).containers.records.values())
    if users:
        raise DockerError(409, f"remove {name}: volume is in use - [{', '.join(users)}]")
    store.remove(name)
    return web.Response(status=204)


@route("POST", "/volumes/prune")
async def prune_volumes(request: web.Request) -> web.Response:
    """Unused anonymous volumes; with the filter all=true, every unused volume (Docker 23+)."""
    store, filters = store_of(request), _filters(request)
    every = (filters.get("all") or ["false"])[0] in ("true", "1")
    records = list(daemon_of(request).containers.records.values())
    deleted = []
    for volume in store.all():
        if (every or volume.get("Anonymous")) and not store.users(volume["Name"], records):
            store.remove(volume["Name"])
            deleted.append(volume["Name"])
    return json_response({"VolumesDeleted": deleted, "SpaceReclaimed": 0})
