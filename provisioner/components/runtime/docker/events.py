"""runtime/docker: `GET /events`: what happened through this API, as Docker's event stream.

Routes and the supervisor `emit` container events (create, start, die, stop, kill, restart,
destroy) and image events (pull, tag, untag, delete); subscribers get them as they come, and a
bounded history answers `since`. Filters: type, event, container, image, label.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

from aiohttp import web

from .errors import DockerError
from .routing import EVENTS, route

HISTORY = 1000


class EventBus:
    def __init__(self):
        self.history: deque[dict] = deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue] = set()

    def emit(self, kind: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
        nanos = time.time_ns()
        attributes = {key: str(value) for key, value in (attributes or {}).items()}
        event = {"Type": kind, "Action": action,
                 "Actor": {"ID": actor_id, "Attributes": attributes},
                 "scope": "local", "time": nanos // 1_000_000_000, "timeNano": nanos}
        if kind == "container":     # the fields older clients read
            event.update({"status": action, "id": actor_id, "from": attributes.get("image", "")})
        self.history.append(event)
        for queue in self.subscribers:
            queue.put_nowait(event)


def _matches(event: dict, filters: dict[str, list[str]]) -> bool:
    attributes = event["Actor"]["Attributes"]
    tests = {
        "type": lambda value: event["Type"] == value,
        "event": lambda value: event["Action"] == value,
        "container": lambda value: event["Type"] == "container" and
        (event["Actor"]["ID"].startswith(value) or attributes.get("name") == value),
        "image": lambda value: attributes.get("image") == value or
        (event["Type"] == "image" and (event["Actor"]["ID"] == value or
                                       attributes.get("name") == value)),
        "label": lambda value: attributes.get(value.partition("=")[0]) ==
        value.partition("=")[2] if "=" in value else value in attributes,
    }
    for key, values in filters.items():
        test = tests.get(key)
        if test is None:
            raise DockerError(400, f"invalid filter '{key}'")
        if not any(test(value) for value in values):
            return False
    return True


def _moment(text: str | None, what: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise DockerError(400, f"invalid value for {what}: {text!r} is not a unix time") \
            from None


@route("GET", "/events")
async def events(request: web.Request) -> web.StreamResponse:
    bus: EventBus = request.app[EVENTS]
    try:
        filters = json.loads(request.query.get("filters") or "{}")
    except ValueError:
        raise DockerError(400, "invalid filters: not JSON") from None
    filters = {key: list(value) for key, value in filters.items()}
    since = _moment(request.query.get("since"), "since")
    until = _moment(request.query.get("until"), "until")
    queue: asyncio.Queue = asyncio.Queue()
    bus.subscribers.add(queue)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)

    async def send(event: dict) -> None:
        if _matches(event, filters):
            await response.write(json.dumps(event).encode() + b"\n")

    try:
        if since is not None:
            for event in list(bus.history):
                if event["timeNano"] >= since * 1e9 and \
                        (until is None or event["timeNano"] <= until * 1e9):
                    await send(event)
        while True:
            timeout = None if until is None else until - time.time()
            if timeout is not None and timeout <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                break
            await send(event)
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        bus.subscribers.discard(queue)
    return response
