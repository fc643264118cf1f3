"""runtime/build: a RunStep on the container core, for RUN instructions.

Starts a container from the step's lower dirs (host network, its own mount/pid/uts/ipc
namespaces), forwards its output while it runs, and on exit hands the overlay upper dir to
the builder, then deletes the container. The daemon builds with it too, passing its cgroup
parent and an Event it sets when the client goes away: the step's container is then stopped
and deleted, and the build ends with BuildError.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable

from ..container import api
from ..container.errors import ContainerError
from ..container.spec import ContainerSpec, Process
from .builder import BuildError, RunStep

POLL_SECONDS = 0.2


STEP_PREFIX = "build-"       # the step containers' state dirs; a daemon sweeps leftovers


class BuildCancelled(BuildError):
    """The build was cancelled (its client went away) while a RUN step was running."""


def container_run_step(work_dir: str, cgroup_parent: str = "provisioner-runtime",
                       cancelled: threading.Event | None = None) -> RunStep:
    """A RunStep whose per-step container state lives under `work_dir`; setting `cancelled`
    stops a running step's container."""

    def run_step(lower_dirs: list[str], upper_dir: str, process: Process,
                 output: Callable[[bytes], None]) -> int:
        if cancelled is not None and cancelled.is_set():
            raise BuildCancelled("the build was cancelled")
        container_id = STEP_PREFIX + uuid.uuid4().hex[:12]
        state_dir = os.path.join(work_dir, container_id)
        os.makedirs(state_dir)
        spec = ContainerSpec(
            id=container_id, state_dir=state_dir, lower_dirs=list(lower_dirs), process=process,
            hostname=container_id[:12],
            namespaces={"mount": None, "pid": None, "uts": None, "ipc": None},
            log_path=os.path.join(state_dir, "build.log"), cgroup_parent=cgroup_parent)
        try:
            api.start(spec)
            reader = _LogFollower(spec.log_path, output)
            while True:
                current = api.wait(state_dir, POLL_SECONDS)
                reader.forward()
                if current.status != "running":
                    break
                if cancelled is not None and cancelled.is_set():
                    raise BuildCancelled("the build was cancelled while running "
                                         f"`{' '.join(process.args)}`")
            if os.path.isdir(upper_dir):
                os.rmdir(upper_dir)          # must be empty: the step's upper replaces it
            os.rename(os.path.join(state_dir, "upper"), upper_dir)
            return current.exit_code if current.exit_code is not None else 255
        except ContainerError as error:
            raise BuildError(f"cannot run the build step: {error}") from None
        finally:
            _remove(state_dir)

    return run_step


class _LogFollower:
    """Forwards new CRI log records (`<time> <stream> <F|P> <text>`) as raw output bytes."""

    def __init__(self, path: str, output: Callable[[bytes], None]):
        self.path, self.output, self.offset = path, output, 0

    def forward(self) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for record in complete.splitlines():
            parts = record.split(b" ", 3)
            if len(parts) < 3:
                continue
            text = parts[3] if len(parts) == 4 else b""
            self.output(text + (b"\n" if parts[2] == b"F" else b""))


def sweep_step_containers(work_dir: str) -> list[str]:
    """Stop and delete step containers a previous process left under `work_dir` (it was killed
    mid-build); returns their ids."""
    try:
        names = [name for name in os.listdir(work_dir) if name.startswith(STEP_PREFIX)]
    except FileNotFoundError:
        return []
    for name in names:
        _remove(os.path.join(work_dir, name))
    return names


def _remove(state_dir: str) -> None:
    try:
        current = api.state(state_dir)
        if current.status == "running":
            api.stop(state_dir, grace_seconds=0)
        api.delete(state_dir)
    except ContainerError:
        pass
    shutil.rmtree(state_dir, ignore_errors=True)
