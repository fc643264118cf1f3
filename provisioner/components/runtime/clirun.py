"""runtime: the CLI's `run` verb: create, start, follow the output, wait (the CLI's helper).

Exit codes as Docker's: the container's own, 125 when run itself fails, 127 when the command is
not found in the image, 126 when it cannot be executed. With --rm the container is removed
however the run ends, a failed start included.
"""

from __future__ import annotations

import argparse
import json
import os

from .client import DaemonUnreachable, RuntimeAPIError, RuntimeClient
from .cliformat import emit


def add_run_verb(verbs) -> None:
    run = verbs.add_parser("run", help="create and start a container", add_help=False)
    run.add_argument("-d", "--detach", action="store_true")
    run.add_argument("-i", "--interactive", action="store_true",
                     help="keep the container's stdin open and send this terminal's input")
    run.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    run.add_argument("--name")
    run.add_argument("-p", "--publish", action="append", default=[])
    run.add_argument("-e", "--env", action="append", default=[])
    run.add_argument("-v", "--volume", action="append", default=[])
    run.add_argument("-m", "--memory")
    run.add_argument("--cpus")
    run.add_argument("--pids", "--pids-limit", dest="pids")
    run.add_argument("--network", "--net", dest="network", default="bridge")
    run.add_argument("--rm", action="store_true")
    run.add_argument("--entrypoint")
    run.add_argument("-w", "--workdir")
    run.add_argument("-u", "--user")
    run.add_argument("-h", "--hostname")
    run.add_argument("--cap-add", action="append", default=[])
    run.add_argument("--cap-drop", action="append", default=[])
    run.add_argument("--privileged", action="store_true")
    run.add_argument("--read-only", action="store_true")
    run.add_argument("--security-opt", action="append", default=[])
    run.add_argument("--userns", choices=("host", "private"))
    run.add_argument("--sysctl", action="append", default=[])
    run.add_argument("--help", action="help")
    run.add_argument("image")
    run.add_argument("command", nargs=argparse.REMAINDER)


def create_body(args) -> dict:
    env = []
    for item in args.env:
        env.append(item if "=" in item else f"{item}={os.environ.get(item, '')}")
    body = {"name": args.name, "cmd": args.command or None, "env": env, "ports": args.publish,
            "volumes": [_absolute_volume(volume) for volume in args.volume],
            "memory": args.memory, "cpus": args.cpus, "pids": args.pids,
            "network": args.network, "auto_remove": args.rm and args.detach,
            "workdir": args.workdir, "user": args.user, "hostname": args.hostname,
            "cap_add": args.cap_add, "cap_drop": args.cap_drop,
            "privileged": args.privileged or None, "read_only": args.read_only or None,
            "userns": args.userns, "sysctls": _sysctls(args.sysctl),
            "tty": args.tty, "stdin_open": args.interactive,
            "stdin_once": args.interactive and not args.detach,
            **security_options(args.security_opt)}
    if args.entrypoint is not None:
        body["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    return {key: value for key, value in body.items() if value not in (None, [], "")}


def security_options(values: list[str]) -> dict:
    """Docker's --security-opt: seccomp=unconfined, seccomp=PROFILE.json (read here, as
    Docker's CLI does, and sent whole), no-new-privileges[=true|false]."""
    body: dict = {}
    for value in values:
        key, _, setting = value.partition("=")
        if key == "seccomp" and setting:
            body["seccomp"] = setting if setting == "unconfined" else _read_profile(setting)
        elif key == "no-new-privileges" and setting in ("", "true", "false"):
            body["no_new_privileges"] = setting != "false"
        else:
            raise RunFailed(f"invalid --security-opt {value!r}: use seccomp=unconfined, "
                            "seccomp=PROFILE.json or no-new-privileges[=true|false]")
    return body


def _sysctls(values: list[str]) -> dict | None:
    pairs = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise RunFailed(f"invalid --sysctl {value!r}: use NAME=VALUE, e.g. "
                            "net.ipv4.ip_unprivileged_port_start=0")
        pairs[name] = setting
    return pairs or None


def _read_profile(path: str) -> dict:
    try:
        with open(path) as source:
            return json.load(source)
    except OSError as exc:
        raise RunFailed(f"--security-opt seccomp={path}: cannot read the profile: "
                        f"{exc.strerror}") from None
    except ValueError as exc:
        raise RunFailed(f"--security-opt seccomp={path}: the profile is not JSON: {exc}") from None


def _absolute_volume(spec: str) -> str:
    source, sep, rest = spec.partition(":")
    if source.startswith((".", "~")):
        source = os.path.abspath(os.path.expanduser(source))
    return f"{source}{sep}{rest}"


def cmd_run(client: RuntimeClient, args) -> int:
    try:
        container = client.create(args.image, **create_body(args))
    except DaemonUnreachable:
        raise
    except RuntimeAPIError as error:
        raise RunFailed(str(error)) from None
    finished = False
    try:
        try:
            client.start(container)
        except DaemonUnreachable:
            raise
        except RuntimeAPIError as error:
            raise RunFailed(str(error), start_exit_code(str(error))) from None
        if args.detach:
            print(container)
            finished = True
            return 0
        if args.interactive or args.tty:
            code = attach_and_pump(client, container, args.interactive, args.tty, logs=True)
            finished = True
            return code
        for event in client.logs(container, follow=True):
            emit(event)
        result = client.wait(container)
        finished = True
        return result["exit_code"] if result["exit_code"] is not None else 125
    finally:
        # --rm: gone however the run ends; a detached one that started is the daemon's to remove
        if args.rm and not (args.detach and finished):
            try:
                client.remove(container, force=True)
            except RuntimeAPIError:
                pass


def attach_and_pump(client: RuntimeClient, container: str, stdin: bool, tty: bool,
                    logs: bool = False) -> int:
    """This terminal attached to the container until it exits (run -i/-t, attach)."""
    from . import cliterminal

    connection = client.attach_stream(container, logs=logs)
    if tty:
        size = cliterminal.terminal_size(1)
        if size:
            connection.resize(*size)
    try:
        return cliterminal.pump(connection, stdin=stdin, tty=tty)
    except cliterminal.StreamFailed as error:
        raise RunFailed(error.message) from None


def start_exit_code(message: str) -> int:
    """Docker's codes for a command that cannot be run: 127 not found, 126 not executable."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "exec format error" in message:
        return 126
    return 125


class RunFailed(Exception):
    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code
