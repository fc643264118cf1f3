"""cni/main: `provisioner-cni`, the entry point of every plugin here (see the package docstring).

The plugin is chosen by the name the program was run as (its link in the plugin directory), and
by the configuration's ``type`` when run as ``provisioner-cni``. The name must win: a delegated IPAM
plugin receives the bridge's configuration, whose ``type`` is the bridge's. Any failure becomes the CNI
error object on stdout and exit status 1; a traceback only with PROVISIONER_CNI_DEBUG=1 on stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

from .protocol import (
    INVALID_CONFIGURATION,
    IO_FAILURE,
    SUPPORTED_VERSIONS,
    CniFailure,
    read_invocation,
    shape_result,
)

# plugin name -> its module, imported only when that plugin runs: a runtime execs the program once
# per plugin per pod, and only bridge and loopback need pyroute2 (a tenth of a second to import)
PLUGINS = {
    "provisioner-bridge": "bridge",
    "provisioner-host-local": "hostlocal",
    "provisioner-portmap": "portmap",
    "provisioner-loopback": "loopback",
}
COMMANDS = {"ADD": "add", "DEL": "delete", "CHECK": "check"}


def run(environ: dict[str, str], stdin: bytes, program: str) -> dict | None:
    invocation = read_invocation(environ, stdin)
    if invocation.command == "VERSION":
        return {"cniVersion": SUPPORTED_VERSIONS[-1], "supportedVersions": SUPPORTED_VERSIONS}
    kind = os.path.basename(program)
    if kind not in PLUGINS:
        kind = str(invocation.config.get("type") or "")
    if kind not in PLUGINS:
        raise CniFailure(INVALID_CONFIGURATION, f"unknown plugin type {kind!r}: this program "
                         f"provides {', '.join(PLUGINS)}")
    if invocation.command not in COMMANDS:
        raise CniFailure(INVALID_CONFIGURATION, f"unknown CNI_COMMAND {invocation.command!r}: "
                         "use ADD, DEL, CHECK or VERSION")
    plugin = importlib.import_module(f"{__package__}.{PLUGINS[kind]}")
    answer = getattr(plugin, COMMANDS[invocation.command])(invocation)
    return shape_result(answer, invocation.version) if invocation.command == "ADD" else None


def main(argv: list[str] | None = None) -> int:
    program = (argv or sys.argv)[0]
    stdin = sys.stdin.buffer.read() if os.environ.get("CNI_COMMAND") else b""
    version = "1.0.0"
    try:
        version = str(json.loads(stdin or b"{}").get("cniVersion") or version)
    except (ValueError, AttributeError):
        pass
    try:
        answer = run(dict(os.environ), stdin, program)
    except CniFailure as failure:
        return _fail(version, failure.code, failure.message, failure.details)
    except Exception as error:                       # noqa: BLE001 - the error object, always
        if os.environ.get("PROVISIONER_CNI_DEBUG"):
            traceback.print_exc()
        return _fail(version, IO_FAILURE, f"{type(error).__name__}: {error}")
    if answer is not None:
        json.dump(answer, sys.stdout)
        sys.stdout.write("\n")
    return 0


def _fail(version: str, code: int, message: str, details: str = "") -> int:
    error = {"cniVersion": version, "code": code, "msg": message}
    if details:
        error["details"] = details
    json.dump(error, sys.stdout)
    sys.stdout.write("\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
