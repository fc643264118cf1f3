"""cni/protocol: the CNI 1.0 plugin side of the contract, shared by every plugin here.

The runtime passes the command and the container in ``CNI_*`` variables and the network
configuration on stdin; a plugin answers with a result (ADD), nothing (DEL, CHECK), its versions
(VERSION), or an error object ``{"cniVersion", "code", "msg", "details"}`` and a non-zero exit.
IPAM is delegated: the bridge runs the plugin named by ``ipam.type`` from ``CNI_PATH`` with the
same configuration and environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

# Error codes the specification reserves (section "Error").
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_CONFIGURATION = 7
TRY_AGAIN_LATER = 11


class CniFailure(Exception):
    def __init__(self, code: int, message: str, details: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class Invocation:
    """One call: the command, the container, and the parsed configuration."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]
    path: list[str]
    config: dict
    raw: bytes

    @property
    def version(self) -> str:
        return str(self.config.get("cniVersion") or "0.1.0")

    @property
    def network(self) -> str:
        return str(self.config.get("name") or "")

    @property
    def prev_result(self) -> dict:
        return self.config.get("prevResult") or {}

    def needs(self, *names: str) -> None:
        for name in names:
            if not getattr(self, {"CNI_CONTAINERID": "container_id", "CNI_NETNS": "netns",
                                  "CNI_IFNAME": "ifname"}[name]):
                raise CniFailure(INVALID_ENVIRONMENT, f"{name} is required for {self.command}")


def read_invocation(environ: dict[str, str], stdin: bytes) -> Invocation:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniFailure(INVALID_ENVIRONMENT, "CNI_COMMAND is not set: this program is a CNI "
                         "plugin, run by a container runtime")
    try:
        config = json.loads(stdin or b"{}")
    except ValueError as error:
        raise CniFailure(DECODING_FAILURE, f"the network configuration on stdin is not JSON: "
                         f"{error}") from None
    if not isinstance(config, dict):
        raise CniFailure(DECODING_FAILURE, "the network configuration must be a JSON object")
    args = {}
    for pair in filter(None, environ.get("CNI_ARGS", "").split(";")):
        key, _, value = pair.partition("=")
        args[key] = value
    version = str(config.get("cniVersion") or "0.1.0")
    if command != "VERSION" and version not in SUPPORTED_VERSIONS:
        raise CniFailure(INCOMPATIBLE_VERSION, f"cniVersion {version} is not supported "
                         f"(supported: {', '.join(SUPPORTED_VERSIONS)})")
    return Invocation(command, environ.get("CNI_CONTAINERID", ""), environ.get("CNI_NETNS", ""),
                      environ.get("CNI_IFNAME", ""), args,
                      [p for p in environ.get("CNI_PATH", "").split(os.pathsep) if p], config,
                      stdin or b"{}")


def shape_result(result: dict, version: str) -> dict:
    """A result in the configuration's version: 0.3.x/0.4.0 ips carry "version": "4"/"6"."""
    shaped = {"cniVersion": version, **result}
    if not version.startswith("1."):
        shaped["ips"] = [{**ip, "version": "6" if ":" in ip["address"] else "4"}
                         for ip in result.get("ips", [])]
    return shaped


def delegate(invocation: Invocation, plugin_type: str, command: str | None = None) -> dict:
    """Run the IPAM plugin ``plugin_type`` found on CNI_PATH with our config and environment."""
    binary = next((os.path.join(d, plugin_type) for d in invocation.path
                   if os.access(os.path.join(d, plugin_type), os.X_OK)), None)
    if binary is None:
        raise CniFailure(INVALID_CONFIGURATION, f"IPAM plugin {plugin_type!r} not found in "
                         f"CNI_PATH ({os.pathsep.join(invocation.path) or 'empty'})")
    env = {**os.environ, "CNI_COMMAND": command or invocation.command}
    done = subprocess.run([binary], input=invocation.raw, env=env, capture_output=True,
                          timeout=60, check=False)
    text = done.stdout.decode(errors="replace").strip()
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {"msg": text}
    if done.returncode != 0:
        raise CniFailure(answer.get("code") or IO_FAILURE,
                         f"IPAM plugin {plugin_type}: {answer.get('msg') or done.stderr.decode()}",
                         answer.get("details", ""))
    return answer
