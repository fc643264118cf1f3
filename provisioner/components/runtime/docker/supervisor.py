"""runtime/docker: what only Docker's API asks of a container: restart policies, AutoRemove,
Tty/OpenStdin, and the exit code a `wait?condition=removed` needs after the container is gone.

These settings live in `<root>/docker/<id>.json` beside the daemon's own record, so they survive
a daemon restart: on start-up, containers whose policy is `always` (or `unless-stopped`, not
stopped by a user) and that are not running are started again, as Docker does at boot.
A watcher task per started container decides after each exit: restart (with Docker's doubling
delay), auto-remove, or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os

from ..daemon.errors import DaemonError
from ..daemon.state import write_json_atomically

log = logging.getLogger("provisioner.runtime.docker")
POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
FIRST_RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 10.0
ATTACH_DRAIN_SECONDS = 10.0


def default_settings() -> dict:
    return {"restart_policy": {"Name": "no", "MaximumRetryCount": 0}, "auto_remove": False,
            "tty": False, "open_stdin": False, "exposed_ports": {}, "restart_count": 0,
            "stopped_by_user": False, "paused": False}


def should_restart(settings: dict, exit_code: int | None) -> bool:
    """Docker's rules, after an exit the user did not ask for."""
    if settings["stopped_by_user"]:
        return False
    policy = settings["restart_policy"]
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code not in (0, None) and (limit == 0 or settings["restart_count"] < limit)
    return False


class Supervisor:
    def __init__(self, daemon):
        self.daemon = daemon
        self.containers = daemon.containers
        self.directory = os.path.join(daemon.config.root, "docker")
        os.makedirs(self.directory, exist_ok=True)
        self.last_exit: dict[str, int] = {}
        self._watchers: dict[str, asyncio.Task] = {}
        self._exits: dict[str, asyncio.Queue] = {}  # per watched container: its runs' ends
        self.restarting: set[str] = set()           # a restart request's stop is no exit
        daemon.containers.exit_listeners.append(self._exited)
        self.attached: dict[str, int] = {}        # open attach streams per container
        self.events = None                        # the EventBus (events.py), set by the app
        self.before_start = None                  # (id): a member's own hosts file
        self.after_start = None                   # async (id): the networks' hosts files
        self.after_remove = None                  # (id): leave the user-defined networks

    def emit(self, action: str, container_id: str, **attributes) -> None:
        record = self.containers.records.get(container_id)
        if self.events is not None:
            if record is not None:
                attributes = {"name": record.name, "image": record.image, **record.labels,
                              **attributes}
            self.events.emit("container", action, container_id, attributes)

    # -- settings ----------------------------------------------------------------------------

    def _path(self, container_id: str) -> str:
        return os.path.join(self.directory, f"{container_id}.json")

    def settings(self, container_id: str) -> dict:
        settings = default_settings()
        try:
            with open(self._path(container_id)) as source:
                settings.update(json.load(source))
        except (OSError, ValueError):
            pass
        return settings

    def save(self, container_id: str, settings: dict) -> None:
        write_json_atomically(self._path(container_id), settings)

    def update(self, container_id: str, **changes) -> dict:
        settings = self.settings(container_id)
        settings.update(changes)
        self.save(container_id, settings)
        return settings

    def forget(self, container_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(container_id))

    # -- watching ----------------------------------------------------------------------------

    def watch(self, container_id: str) -> None:
        task = self._watchers.get(container_id)
        if task is None or task.done():
            self._watchers[container_id] = asyncio.get_running_loop().create_task(
                self._supervise(container_id))

    def _exited(self, record, state) -> None:
        """The daemon's exit listener: once per run, also when a remove came first, so
        `die` (with the exit code `wait?condition=removed` answers) is never lost."""
        if state.exit_code is not None:
            self.last_exit[record.id] = state.exit_code
        self.emit("die", record.id, exitCode=state.exit_code or 0)
        task = self._watchers.get(record.id)
        if task is not None and not task.done() and record.id not in self.restarting:
            # The settings as they were at the exit: a start may reset stopped_by_user
            # before the watcher gets to this run.
            self._exits.setdefault(record.id, asyncio.Queue()).put_nowait(
                (state, self.settings(record.id)))

    async def exit_of(self, container_id: str):
        """(state, settings) once this run has ended; None when the container was removed."""
        ended = await self._exits.setdefault(container_id, asyncio.Queue()).get()
        return ended if container_id in self.containers.records else None

    async def _supervise(self, container_id: str) -> None:
        try:
            await self._supervise_runs(container_id)
        finally:
            self._exits.pop(container_id, None)

    async def _supervise_runs(self, container_id: str) -> None:
        delay = FIRST_RESTART_DELAY
        while True:
            ended = await self.exit_of(container_id)
            if ended is None:
                return
            state, settings = ended
            if settings.get("paused"):
                self.update(container_id, paused=False)
            if should_restart(settings, state.exit_code):
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY)
                record = self.containers.records.get(container_id)
                settings = self.settings(container_id)
                if record is None or settings["stopped_by_user"]:
                    return
                if self.containers.is_running(record):
                    continue            # started again meanwhile (a restart request)
                self.update(container_id, restart_count=settings["restart_count"] + 1)
                try:
                    if self.before_start is not None:
                        self.before_start(container_id)
                    await self.containers.start(container_id)
                except DaemonError as error:
                    log.warning("restart policy: cannot restart %s: %s", record.name, error)
                    return
                self.emit("start", container_id)
                if self.after_start is not None:
                    await self.after_start(container_id)
                continue
            if settings["auto_remove"]:
                await self.remove(container_id)
            return

    async def remove(self, container_id: str) -> None:
        # An attached client reads the output from the log file, which removal deletes: let it
        # drain first (the docker CLI's `run --rm` attaches before it starts the container).
        deadline = asyncio.get_running_loop().time() + ATTACH_DRAIN_SECONDS
        while self.attached.get(container_id) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        attributes = {}
        record = self.containers.records.get(container_id)
        if record is not None:
            attributes = {"name": record.name, "image": record.image, **record.labels}
        try:
            await self.containers.remove(container_id, force=True)
        except DaemonError as error:
            log.warning("could not auto-remove %s: %s", container_id[:12], error)
            return
        self.forget(container_id)
        if self.after_remove is not None:
            self.after_remove(container_id)
        if self.events is not None:
            self.events.emit("container", "destroy", container_id, attributes)

    async def open(self) -> None:
        """After a daemon (re)start: watch running containers, start what `always` keeps up."""
        for container_id, record in list(self.containers.records.items()):
            if not os.path.exists(self._path(container_id)):
                continue
            settings = self.settings(container_id)
            if self.containers.is_running(record):
                self.watch(container_id)
            elif record.started_once and should_restart(settings, None) and \
                    settings["restart_policy"].get("Name") in ("always", "unless-stopped"):
                try:
                    if self.before_start is not None:
                        self.before_start(container_id)
                    await self.containers.start(container_id)
                    self.watch(container_id)
                    if self.after_start is not None:
                        await self.after_start(container_id)
                    log.info("restart policy %s: started %s again",
                             settings["restart_policy"]["Name"], record.name)
                except DaemonError as error:
                    log.warning("restart policy: cannot start %s: %s", record.name, error)
            elif record.started_once and settings["auto_remove"]:
                await self.remove(container_id)

    def close(self) -> None:
        for task in self._watchers.values():
            task.cancel()
