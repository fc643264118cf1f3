"""The runtime's CNI client (``runtime.net.cni``): pod sandboxes get their network from CNI plugins.

Follows the CNI specification 1.0 as a container runtime must: the first network configuration
(list) in the configuration directory, sorted by file name (``.conflist``, ``.conf``, ``.json``);
each plugin binary found by its ``type`` in the plugin directories; ADD runs the plugins in order,
each one's result the next one's ``prevResult``; DEL runs them in reverse and CHECK in order, both
with the cached result of ADD as ``prevResult``; ``CNI_*`` variables in the environment, the
plugin's configuration on stdin, its result or error on stdout. Capabilities a plugin declares
(``portMappings`` ...) receive the runtime's arguments under ``runtimeConfig``.

The ADD result is cached as libcni does: ``<cache_dir>/results/<network>-<container id>-<ifname>``
(JSON with the configuration, the CNI_ARGS and the result), so a DEL after a daemon restart or a
configuration change still tells the plugins what they set up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field

from .errors import NetworkError

SPEC_VERSION = "1.0.0"
DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_CACHE_DIR = "/var/lib/cni"
CONFIG_SUFFIXES = (".conflist", ".conf", ".json")
PLUGIN_TIMEOUT = 120.0          # seconds; a plugin that hangs must not hold a pod forever
CACHE_KIND = "cniCacheV1"


class CniError(NetworkError):
    """A plugin failed: its own message (the CNI error's msg and details) and which plugin."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


@dataclass
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: list[dict]
    path: str
    raw: dict = field(repr=False, default_factory=dict)
    disable_check: bool = False


@dataclass
class CniSettings:
    """Where the runtime finds configurations and plugins, and where it caches results."""

    conf_dir: str = DEFAULT_CONF_DIR
    bin_dirs: list[str] = field(default_factory=lambda: [DEFAULT_BIN_DIR])
    cache_dir: str = DEFAULT_CACHE_DIR
    ifname: str = "eth0"


def parse_config(path: str) -> NetworkConfigList:
    """One configuration file: a list (``plugins``) or a single plugin's configuration."""
    try:
        with open(path, "rb") as source:
            data = json.loads(source.read())
    except (OSError, ValueError) as error:
        raise NetworkError(f"CNI configuration {path} cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise NetworkError(f"CNI configuration {path} must be a JSON object")
    if path.endswith(".conflist") or "plugins" in data:
        plugins = data.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise NetworkError(f"CNI configuration list {path} needs a non-empty 'plugins' list")
        listed = data
    else:                        # a lone plugin: a list of one, with its name and version
        plugins = [data]
        listed = {key: data[key] for key in ("cniVersion", "name") if key in data}
    if not listed.get("name"):
        raise NetworkError(f"CNI configuration {path} has no 'name'")
    for index, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not plugin.get("type"):
            raise NetworkError(f"CNI configuration {path}: plugins[{index}] has no 'type'")
    return NetworkConfigList(name=listed["name"], cni_version=listed.get("cniVersion", "0.1.0"),
                             plugins=plugins, path=path, raw=listed,
                             disable_check=bool(listed.get("disableCheck")))


def find_network(conf_dir: str) -> NetworkConfigList | None:
    """The network to use: the first valid configuration by file name, None if there is none."""
    try:
        names = sorted(name for name in os.listdir(conf_dir) if name.endswith(CONFIG_SUFFIXES))
    except FileNotFoundError:
        return None
    problems = []
    for name in names:
        try:
            return parse_config(os.path.join(conf_dir, name))
        except NetworkError as error:
            problems.append(str(error))
    if problems:
        raise NetworkError("no usable CNI configuration in " + conf_dir + ": " + "; ".join(problems))
    return None


def pod_address(result: dict) -> str | None:
    """The first IPv4 (else IPv6) address of a result, for any result version from 0.1 to 1.0;
    never loopback (a loopback plugin's own result)."""
    addresses = [entry.get("address", "") for entry in result.get("ips") or []]
    for legacy in ("ip4", "ip6"):                        # 0.1/0.2 results
        if isinstance(result.get(legacy), dict):
            addresses.append(result[legacy].get("ip", ""))
    bare = [address.split("/")[0] for address in addresses
            if address and not address.startswith(("127.", "::1/"))]
    return next((a for a in bare if ":" not in a), None) or next(iter(bare), None)


@dataclass
class Attachment:
    """What one ADD set up, as cached for DEL and CHECK."""

    network: NetworkConfigList
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]
    capability_args: dict
    result: dict


class CniPlugins:
    """Runs a network's plugins for a container, and keeps the results DEL needs."""

    def __init__(self, settings: CniSettings):
        self.settings = settings

    # -- the commands ------------------------------------------------------------------------

    def add(self, container_id: str, netns: str, args: dict[str, str] | None = None,
            capability_args: dict | None = None) -> Attachment:
        network = find_network(self.settings.conf_dir)
        if network is None:
            raise NetworkError(f"no CNI network configuration in {self.settings.conf_dir}: "
                               "the network plugin is not installed or not configured yet")
        attachment = Attachment(network, container_id, netns, self.settings.ifname,
                                dict(args or {}), dict(capability_args or {}), {})
        previous: dict | None = None
        for plugin in network.plugins:
            previous = self._run("ADD", attachment, plugin, previous)
        attachment.result = previous or {}
        self._save(attachment)
        return attachment

    def delete(self, container_id: str, netns: str | None) -> None:
        """DEL with the cached ADD (a missing cache: the current configuration, no prevResult)."""
        attachment = self.cached(container_id)
        if attachment is None:
            network = find_network(self.settings.conf_dir)
            if network is None:
                return
            attachment = Attachment(network, container_id, netns or "", self.settings.ifname,
                                    {}, {}, {})
        if netns is not None and not os.path.exists(netns):
            netns = ""                     # the spec: DEL with the netns gone must still clean up
        attachment.netns = netns or ""
        for plugin in reversed(attachment.network.plugins):
            self._run("DEL", attachment, plugin, attachment.result or None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._cache_path(attachment.network.name, container_id, attachment.ifname))

    def check(self, container_id: str) -> None:
        attachment = self.cached(container_id)
        if attachment is None:
            raise NetworkError(f"no cached CNI result for {container_id}: nothing to check")
        if attachment.network.disable_check:
            return
        for plugin in attachment.network.plugins:
            self._run("CHECK", attachment, plugin, attachment.result)

    def version(self, plugin_type: str) -> dict:
        """The plugin's VERSION answer: cniVersion and supportedVersions."""
        output = self._exec(plugin_type, {"CNI_COMMAND": "VERSION"},
                            json.dumps({"cniVersion": SPEC_VERSION}).encode(), plugin_type)
        return output or {}

    # -- the cache ----------------------------------------------------------------------------

    def cached(self, container_id: str) -> Attachment | None:
        """The cached ADD of a container on any network (the configuration may have changed)."""
        results = os.path.join(self.settings.cache_dir, "results")
        suffix = f"-{container_id}-{self.settings.ifname}"
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(results)):
                if not name.endswith(suffix):
                    continue
                try:
                    with open(os.path.join(results, name)) as source:
                        data = json.load(source)
                    config = json.loads(base64.b64decode(data["config"]))
                except (OSError, ValueError, KeyError):
                    continue
                network = NetworkConfigList(config["name"], config.get("cniVersion", "0.1.0"),
                                            config["plugins"], os.path.join(results, name),
                                            config, bool(config.get("disableCheck")))
                return Attachment(network, container_id, data.get("netns", ""),
                                  data.get("ifName", self.settings.ifname),
                                  dict(data.get("cniArgs") or []),
                                  data.get("capabilityArgs") or {}, data.get("result") or {})
        return None

    def _cache_path(self, network: str, container_id: str, ifname: str) -> str:
        return os.path.join(self.settings.cache_dir, "results",
                            f"{network}-{container_id}-{ifname}")

    def _save(self, attachment: Attachment) -> None:
        config = {**attachment.network.raw, "plugins": attachment.network.plugins}
        record = {"kind": CACHE_KIND, "containerId": attachment.container_id,
                  "config": base64.b64encode(json.dumps(config).encode()).decode(),
                  "ifName": attachment.ifname, "networkName": attachment.network.name,
                  "netns": attachment.netns, "cniArgs": sorted(attachment.args.items()),
                  "capabilityArgs": attachment.capability_args, "result": attachment.result}
        path = self._cache_path(attachment.network.name, attachment.container_id,
                                attachment.ifname)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as sink:
            json.dump(record, sink)
        os.replace(tmp, path)

    # -- running one plugin ---------------------------------------------------------------------

    def _run(self, command: str, attachment: Attachment, plugin: dict,
             previous: dict | None) -> dict | None:
        network = attachment.network
        config = {**plugin, "name": network.name, "cniVersion": network.cni_version}
        runtime_config = {capability: attachment.capability_args[capability]
                          for capability, wanted in (plugin.get("capabilities") or {}).items()
                          if wanted and capability in attachment.capability_args}
        if runtime_config:
            config["runtimeConfig"] = runtime_config
        if previous:
            config["prevResult"] = previous
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": attachment.container_id,
               "CNI_NETNS": attachment.netns, "CNI_IFNAME": attachment.ifname,
               "CNI_ARGS": ";".join(f"{key}={value}" for key, value in attachment.args.items()),
               "CNI_PATH": os.pathsep.join(self.settings.bin_dirs)}
        output = self._exec(plugin["type"], env, json.dumps(config).encode(),
                            f"{plugin['type']} ({command}, network {network.name})")
        return output if command == "ADD" else previous

    def _exec(self, plugin_type: str, env: dict[str, str], stdin: bytes,
              what: str) -> dict | None:
        binary = self._find(plugin_type)
        full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **env}
        try:
            done = subprocess.run([binary], input=stdin, env=full_env, capture_output=True,
                                  timeout=PLUGIN_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise CniError(f"CNI plugin {what} did not answer within {PLUGIN_TIMEOUT:.0f}s") \
                from None
        except OSError as error:
            raise CniError(f"CNI plugin {binary} cannot run: {error.strerror}") from None
        text = done.stdout.decode(errors="replace").strip()
        parsed: dict | None = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        if done.returncode != 0:
            raise CniError(_failure_message(what, done.returncode, parsed, text,
                                            done.stderr.decode(errors="replace")),
                           code=(parsed or {}).get("code"))
        if text and parsed is None:
            raise CniError(f"CNI plugin {what} wrote something other than JSON: {text[:200]}")
        return parsed

    def _find(self, plugin_type: str) -> str:
        if "/" in plugin_type or plugin_type in ("", ".", ".."):
            raise CniError(f"CNI plugin type {plugin_type!r} is not a plugin name")
        for directory in self.settings.bin_dirs:
            path = os.path.join(directory, plugin_type)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise CniError(f"failed to find CNI plugin {plugin_type!r} in "
                       f"{os.pathsep.join(self.settings.bin_dirs)}: install it there or "
                       "change the network configuration")


def _failure_message(what: str, returncode: int, parsed: dict | None, text: str,
                     stderr: str) -> str:
    if parsed and parsed.get("msg"):
        detail = f" ({parsed['details']})" if parsed.get("details") else ""
        return f"CNI plugin {what} failed: {parsed['msg']}{detail}"
    said = (text or stderr).strip()[-500:] or f"exit status {returncode}"
    return f"CNI plugin {what} failed: {said}"
