"""runtime/docker: Docker's container routes: create, start, stop, restart, kill, wait, remove,
list (with filters), inspect and logs (multiplexed frames, follow/tail/timestamps/since).

Each route calls the daemon's ContainerService; what Docker has and the daemon does not
(restart policies, AutoRemove, Tty) is the Supervisor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable

from aiohttp import web

from ..daemon import logs as logfiles
from ..daemon.errors import NotFound
from ..daemon.state import ContainerRecord
from . import attaching
from .errors import DockerError, no_such_container
from .frames import MULTIPLEXED, RAW, frame, hijack, stdin_of
from .routing import NETWORKS, SUPERVISOR, VOLUMES, daemon_of, emit, json_response, route
from .translate import NETWORK_MODES, create_request, inspect, list_row, state_name, unix_time

WAIT_POLL_SECONDS = 0.05


def _user_network(request: web.Request, body: dict) -> tuple[dict | None, list[str]]:
    """A user-defined network named in NetworkMode: the container goes on the bridge and
    joins that network (its aliases from NetworkingConfig)."""
    host = body.get("HostConfig") or {}
    mode = host.get("NetworkMode") or ""
    if mode in NETWORK_MODES or mode.startswith("container:"):
        return None, []
    try:
        network = request.app[NETWORKS].find(mode)
    except DockerError:
        # 400, not 404: to the docker CLI a 404 from create means "pull the image"
        raise DockerError(400, f"network {mode} not found") from None
    host["NetworkMode"] = "bridge"
    body["HostConfig"] = host
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    endpoint = endpoints.get(mode) or endpoints.get(network["Name"]) or {}
    return network, list(endpoint.get("Aliases") or [])


async def _thaw(request: web.Request, record: ContainerRecord) -> None:
    from .pausing import thaw_if_paused

    await thaw_if_paused(request, record)


def supervisor_of(request: web.Request):
    return request.app[SUPERVISOR]


def record_of(request: web.Request, key: str | None = None) -> ContainerRecord:
    key = key or request.match_info["id"]
    try:
        return daemon_of(request).containers.find(key)
    except NotFound:
        raise no_such_container(key) from None


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


async def body_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except ValueError:
        raise DockerError(400, "the request body is not valid JSON") from None


@route("POST", "/containers/create")
async def create(request: web.Request) -> web.Response:
    body = await body_json(request)
    user_network, aliases = _user_network(request, body)
    wanted, settings = create_request(body, request.query.get("name"))
    host = body.get("HostConfig") or {}
    wanted["volumes"] = request.app[VOLUMES].resolve_binds(host.get("Binds"), host.get("Mounts"))
    if not wanted["image"]:
        raise DockerError(400, "config cannot be empty in order to create a container")
    containers = daemon_of(request).containers
    try:
        record = await containers.create(wanted)
    except NotFound as error:
        if "image" in error.message:
            raise DockerError(404, f"No such image: {wanted['image']}") from None
        raise
    supervisor_of(request).save(record.id, {**supervisor_of(request).settings(record.id),
                                            **settings})
    if user_network is not None:
        request.app[NETWORKS].connect(user_network, record.id, aliases)
    supervisor_of(request).emit("create", record.id)
    return json_response({"Id": record.id, "Warnings": []}, status=201)


@route("POST", "/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    if containers.is_running(record):
        return web.Response(status=304)
    supervisor = supervisor_of(request)
    supervisor.update(record.id, stopped_by_user=False)
    request.app[NETWORKS].prepare(record.id)
    await containers.start(record.id)
    supervisor.watch(record.id)
    supervisor.emit("start", record.id)
    await request.app[NETWORKS].refresh(record.id)
    return web.Response(status=204)


def _grace(request: web.Request) -> float:
    text = request.query.get("t") or request.query.get("timeout") or "10"
    try:
        return float(text)
    except ValueError:
        raise DockerError(400, f"invalid value for t: {text!r} is not a number of seconds") \
            from None


@route("POST", "/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    if not containers.is_running(record):
        return web.Response(status=304)
    await _thaw(request, record)
    supervisor_of(request).update(record.id, stopped_by_user=True)
    await containers.stop(record.id, _grace(request))
    supervisor_of(request).emit("stop", record.id)
    return web.Response(status=204)


@route("POST", "/containers/{id}/restart")
async def restart(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    await _thaw(request, record)
    supervisor = supervisor_of(request)
    supervisor.restarting.add(record.id)     # its watcher waits on for the new run's exit
    try:
        await containers.stop(record.id, _grace(request))
        request.app[NETWORKS].prepare(record.id)
        await containers.start(record.id)
    finally:
        supervisor.restarting.discard(record.id)
    supervisor.update(record.id, stopped_by_user=False)
    supervisor.watch(record.id)
    supervisor.emit("restart", record.id)
    await request.app[NETWORKS].refresh(record.id)
    return web.Response(status=204)


@route("POST", "/containers/{id}/kill")
async def kill(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    if not containers.is_running(record):
        raise DockerError(409, f"Cannot kill container: {record.id}: Container {record.id} "
                               "is not running")
    await _thaw(request, record)
    supervisor_of(request).update(record.id, stopped_by_user=True)
    # Docker's order: kill, then die; the exit watch may report the exit before kill returns.
    supervisor_of(request).emit("kill", record.id, signal=request.query.get("signal") or "KILL")
    await containers.kill(record.id, request.query.get("signal") or "KILL")
    return web.Response(status=204)


@route("POST", "/containers/{id}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    containers = daemon_of(request).containers
    record = record_of(request)
    supervisor = supervisor_of(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise DockerError(400, f"invalid condition {condition!r}: use not-running, next-exit "
                               "or removed")
    previous_exit = containers.status(record).finished_at
    # Docker answers the headers at once and the body at the exit: the docker CLI waits for
    # the headers before it starts the container.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    result = await _wait_for(containers, supervisor, record.id, condition, previous_exit)
    await response.write(json.dumps(result).encode() + b"\n")
    await response.write_eof()
    return response


async def _wait_for(containers, supervisor, container_id: str, condition: str,
                    previous_exit: str | None) -> dict:
    while True:
        # Polled, not the daemon's wait: the record may go (AutoRemove) while we wait.
        current = containers.records.get(container_id)
        if current is None:
            return {"StatusCode": supervisor.last_exit.get(container_id, 0), "Error": None}
        state = containers.status(current)
        if state.status == "exited" and state.exit_code is not None:
            supervisor.last_exit[container_id] = state.exit_code
        done = state.status != "running" and (
            condition == "not-running" or
            (condition == "next-exit" and state.status == "exited" and
             state.finished_at != previous_exit))
        if done:
            return {"StatusCode": state.exit_code or 0, "Error": None}
        await asyncio.sleep(WAIT_POLL_SECONDS)


@route("DELETE", "/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    record = record_of(request)
    containers = daemon_of(request).containers
    if containers.is_running(record) and not flag(request, "force"):
        raise DockerError(409, f"You cannot remove a running container {record.id}. Stop the "
                               "container before attempting removal or force remove")
    await _thaw(request, record)
    attributes = {"name": record.name, "image": record.image, **record.labels}
    if containers.is_running(record):
        supervisor_of(request).emit("kill", record.id, signal="9")   # Docker's rm -f: kill, die
    await containers.remove(record.id, force=flag(request, "force"))
    supervisor_of(request).forget(record.id)
    request.app[NETWORKS].forget_container(record.id)
    emit(request, "container", "destroy", record.id, **attributes)
    return web.Response(status=204)


def _filters(request: web.Request) -> dict[str, list[str]]:
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise DockerError(400, f"invalid filters {text!r}: not JSON") from None
    # Both spellings Docker accepts: {"name": ["web"]} and {"name": {"web": true}}
    return {key: list(value) if not isinstance(value, list) else value
            for key, value in raw.items()}


def _matches(record: ContainerRecord, state_label: str, filters: dict[str, list[str]],
             supervisor) -> bool:
    tests = {
        "id": lambda value: record.id.startswith(value),
        "name": lambda value: value.lstrip("/") in record.name,
        "status": lambda value: value == state_label,
        "ancestor": lambda value: value in (record.image, record.image_id) or
        record.image_id.startswith(value) or record.image.split(":")[0] == value,
        "label": lambda value: _label_matches(record.labels, value),
        "network": lambda value: value == record.network,
        "exited": lambda value: state_label == "exited" and
        str(supervisor.last_exit.get(record.id, "")) == value,
    }
    for key, values in filters.items():
        test = tests.get(key)
        if test is None:
            raise DockerError(400, f"invalid filter '{key}'")
        # As Docker: several labels must all match; several values of another key, any one.
        matched = all if key == "label" else any
        if not matched(test(value) for value in values):
            return False
    return True


def _label_matches(labels: dict[str, str], wanted: str) -> bool:
    key, has_value, value = wanted.partition("=")
    return key in labels and (not has_value or labels[key] == value)


@route("GET", "/containers/json")
async def list_containers(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    supervisor = supervisor_of(request)
    filters = _filters(request)
    show_all = flag(request, "all") or "status" in filters
    rows = []
    for record in sorted(containers.records.values(), key=lambda r: r.created, reverse=True):
        if record.pod:
            continue            # the kubelet's pod members are not Docker's containers
        state = containers.status(record)
        if state.status == "exited" and state.exit_code is not None:
            supervisor.last_exit[record.id] = state.exit_code
        label = state_name(state)
        paused = label == "running" and supervisor.settings(record.id).get("paused")
        label = "paused" if paused else label
        if not show_all and label not in ("running", "paused"):
            continue
        if _matches(record, label, filters, supervisor):
            row = list_row(record, state)
            if paused:
                row.update({"State": "paused", "Status": row["Status"] + " (Paused)"})
            rows.append(row)
    limit = request.query.get("limit")
    if limit and limit.lstrip("-").isdigit() and int(limit) > 0:
        rows = rows[:int(limit)]
    return json_response(rows)


@route("GET", "/containers/{id}/json")
async def inspect_container(request: web.Request) -> web.Response:
    containers = daemon_of(request).containers
    record = record_of(request)
    document = inspect(record, containers.status(record),
                       supervisor_of(request).settings(record.id), containers.log_path(record))
    if document["State"]["Running"] and supervisor_of(request).settings(record.id).get("paused"):
        document["State"].update({"Status": "paused", "Paused": True})
    for network in request.app[NETWORKS].of_container(record.id):
        document["NetworkSettings"]["Networks"][network["Name"]] = {
            "IPAddress": record.ip or "", "NetworkID": network["Id"], "IPPrefixLen": 24,
            "Aliases": network["Members"][record.id]["Aliases"], "Gateway": "",
            "MacAddress": "", "EndpointID": record.id[:16]}
    for mount in document["Mounts"]:
        name = request.app[VOLUMES].name_of(mount["Source"])
        if name:
            mount.update({"Type": "volume", "Name": name, "Driver": "local"})
    return json_response(document)


# -- logs ----------------------------------------------------------------------------------

def _since(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if not text or text == "0":
        return None
    try:
        return float(text)
    except ValueError:
        raise DockerError(400, f"invalid value for {name}: {text!r} is not a unix time") \
            from None


def _chunk(entry: logfiles.LogEntry, timestamps: bool, tty: bool) -> bytes:
    data = entry.data
    if timestamps:
        data = entry.time.encode() + b" " + data
    return data if tty else frame(entry.stream, data)


def _wanted(entries: Iterable[logfiles.LogEntry], streams: set[str], since: float | None,
            until: float | None):
    for entry in entries:
        if entry.stream not in streams:
            continue
        if since is not None or until is not None:
            moment = unix_time(entry.time) if "." not in entry.time else _precise(entry.time)
            if since is not None and moment < since:
                continue
            if until is not None and moment > until:
                continue
        yield entry


def _precise(text: str) -> float:
    from datetime import datetime

    head, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(fraction):].replace("Z", "+00:00") or "+00:00"
    moment = datetime.fromisoformat(head + zone)
    return moment.timestamp() + float("0." + (fraction or "0"))


@route("GET", "/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    containers = daemon_of(request).containers
    record = record_of(request)
    tty = supervisor_of(request).settings(record.id)["tty"]
    streams = {name for name in ("stdout", "stderr") if flag(request, name)}
    if not streams:
        raise DockerError(400, "You must choose at least one stream")
    tail_text = request.query.get("tail") or "all"
    if tail_text == "all":
        tail = None
    elif tail_text.isdigit():
        tail = int(tail_text)
    else:
        raise DockerError(400, f"invalid value for tail: {tail_text!r} (a number or all)")
    timestamps = flag(request, "timestamps")
    since, until = _since(request, "since"), _since(request, "until")
    response = web.StreamResponse(headers={"Content-Type": RAW if tty else MULTIPLEXED})
    await response.prepare(request)
    path = containers.log_path(record)
    try:
        if flag(request, "follow"):
            source = logfiles.follow(path, lambda: record.id in containers.records
                                     and containers.is_running(record), tail)
            async for entry in source:
                for wanted in _wanted([entry], streams, since, until):
                    await response.write(_chunk(wanted, timestamps, tty))
        else:
            for entry in _wanted(logfiles.read_all(path, tail), streams, since, until):
                await response.write(_chunk(entry, timestamps, tty))
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


@route("POST", "/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    """The container's output from now on (from its start, for one not started yet, or with
    logs=1) over a hijacked connection, until it exits: followed from the log file, or with a
    TTY from its console. With stdin=1, the client's input goes to a container created with
    OpenStdin (attaching.py)."""
    containers = daemon_of(request).containers
    record = record_of(request)
    tty = supervisor_of(request).settings(record.id)["tty"]
    streams = {name for name in ("stdout", "stderr") if flag(request, name)}
    from_start = flag(request, "logs") or not record.started_once
    response = await hijack(request, tty)
    # the input right after the answer (no await between: aiohttp would lose early bytes)
    stdin = stdin_of(request) if record.stdin_open and flag(request, "stdin") else None
    if record.tty and flag(request, "stream", True):
        await attaching.attach_terminal(containers, record, response, stdin)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
    feeder = asyncio.get_running_loop().create_task(
        attaching.feed_stdin(containers, record, stdin)) if stdin is not None else None
    try:
        return await _attach_log(request, record, response, streams, from_start, tty)
    finally:
        if feeder is not None:
            feeder.cancel()


async def _attach_log(request: web.Request, record, response: web.StreamResponse,
                      streams: set, from_start: bool, tty: bool) -> web.StreamResponse:
    containers = daemon_of(request).containers
    if not flag(request, "stream", True):
        if from_start:
            for entry in _wanted(logfiles.read_all(containers.log_path(record)), streams,
                                 None, None):
                await response.write(_chunk(entry, False, tty))
        await response.write_eof()
        return response

    def not_done() -> bool:
        current = containers.records.get(record.id)
        return current is not None and containers.status(current).status != "exited"

    attached = supervisor_of(request).attached
    attached[record.id] = attached.get(record.id, 0) + 1
    try:
        async for entry in logfiles.follow(containers.log_path(record), not_done,
                                           None if from_start else 0):
            for wanted in _wanted([entry], streams, None, None):
                await response.write(_chunk(wanted, False, tty))
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        attached[record.id] -= 1
    return response


@route("POST", "/containers/{id}/rename")
async def rename(request: web.Request) -> web.Response:
    from ..daemon.names import VALID_NAME

    containers = daemon_of(request).containers
    record = record_of(request)
    name = (request.query.get("name") or "").lstrip("/")
    if not VALID_NAME.match(name):
        raise DockerError(400, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                               "are allowed")
    taken = next((other for other in containers.records.values() if other.name == name), None)
    if taken is not None and taken.id != record.id:
        raise DockerError(409, f"Conflict. The container name \"/{name}\" is already in use by "
                               f"container \"{taken.id}\". You have to remove (or rename) that "
                               "container to be able to reuse that name.")
    old_name, record.name = record.name, name
    containers.state.save_container(record)
    supervisor_of(request).emit("rename", record.id, oldName="/" + old_name)
    return web.Response(status=204)
