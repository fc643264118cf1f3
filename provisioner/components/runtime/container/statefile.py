"""state.json in a container's state directory: written atomically by the api and the shim,
read by anyone (a restarted daemon, another process). Also process identity checks, so a
recycled pid is never mistaken for the container.
"""

import os
from _json import encode_basestring_ascii

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"


def dumps(value) -> str:
    """JSON for the plain values state.json holds. Not the json module: importing it (and re)
    costs the shim more than the rest of its start-up."""
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{encode_basestring_ascii(str(k))}: {dumps(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to state.json")


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(dumps(data))
    os.replace(tmp, path)


def read_state(state_dir: str) -> dict | None:
    import json  # only readers pay for it, not the shim
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def update_state(state_dir: str, **changes) -> dict:
    data = read_state(state_dir) or {}
    data.update(changes)
    write_json(os.path.join(state_dir, STATE_FILE), data)
    return data


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name may hold spaces and parentheses; fields resume after the last ")"
    fields = raw[raw.rfind(b")") + 2:].split()
    if fields[0] == b"Z":
        return None      # a zombie has finished
    return int(fields[19])


def is_alive(pid: int | None, started: int | None) -> bool:
    return bool(pid) and started is not None and start_time(pid) == started
