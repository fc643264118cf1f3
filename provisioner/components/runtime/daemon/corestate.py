"""runtime/daemon: a container's state from the core's state files, safe while its shim exits.

`container.api.state` reads state.json, then checks whether the shim lives; a shim that writes
the exit and ends between those two steps looks vanished, and the core then records the exit
with no exit code, overwriting the shim's. The daemon polls states often (waits, builds), so it
reads through here: a dead shim's file is read once more before the core is asked to conclude
that the shim vanished without recording the exit.
"""

from __future__ import annotations

from ..container import api as core
from ..container import statefile


def _shim_gone_while_running(data: dict) -> bool:
    return data.get("status") == "running" and not statefile.is_alive(
        data.get("shim_pid"), data.get("shim_start_time"))


def container_state(state_dir: str) -> core.ContainerState:
    data = statefile.read_state(state_dir)
    if data is not None and _shim_gone_while_running(data):
        data = statefile.read_state(state_dir)     # the shim saves the exit before it ends
    if data is None or _shim_gone_while_running(data):
        return core.state(state_dir)               # missing, or truly vanished: the core says
    return core.ContainerState(
        status=data.get("status", "created"), pid=data.get("pid"),
        exit_code=data.get("exit_code"), oom_killed=bool(data.get("oom_killed")),
        started_at=data.get("started_at"), finished_at=data.get("finished_at"),
        cgroup_warning=data.get("cgroup_warning"), id=data.get("id"),
        cgroups=data.get("cgroups"))
