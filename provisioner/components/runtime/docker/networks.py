"""runtime/docker: user-defined networks (`/networks` routes) where containers find each other by
name and alias.

The daemon has one bridge; a user-defined network is a group of containers on it, kept in
`<root>/docker/networks/<id>.json`. Names resolve through each member's /etc/hosts: written
into its upper dir before it starts, and rewritten in the running members (inside their mount
namespaces, by archive_helper.py) whenever a member starts or joins, each listing the others by
name, aliases and bridge address.

Networks are kept apart as Docker keeps them (its DOCKER-ISOLATION chains): a member of a
user-defined network reaches only the members of the networks it is on, and no container of
another network nor one on the plain bridge reaches it (published ports, the host and the
outside stay reachable). The bridge being shared, that is layer-2 filtering by bridge port
(net/firewall.py's BridgeIsolation), rewritten whenever a membership changes and at daemon
start. A container that joins a user-defined network is no longer reachable from the plain
bridge (Docker would keep it on its default network too).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys

from aiohttp import web

from ..daemon.state import now_rfc3339, write_json_atomically
from ..net.errors import NetworkError
from ..net.firewall import BridgeIsolation
from ..net.links import host_veth_name
from .errors import DockerError
from .routing import NETWORKS, daemon_of, json_response, route

log = logging.getLogger("provisioner.runtime.docker")
PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}
HELPER = [sys.executable, "-m", "provisioner.components.runtime.docker.archive_helper"]


class NetworkStore:
    def __init__(self, root: str, containers):
        self.directory = os.path.join(root, "docker", "networks")
        os.makedirs(self.directory, exist_ok=True)
        self.containers = containers
        self.bridge = containers.network.options["bridge"]
        self.isolation = BridgeIsolation(self.bridge)
        if any(network["Members"] for network in self.all()):
            try:
                self.isolate()          # the rules may be gone with a host reboot or a flush
            except DockerError as error:
                log.error("%s", error.message)

    def isolate(self) -> None:
        """Rewrite the isolation rules from the memberships of containers on the bridge."""
        groups: dict[str, set[str]] = {}
        for network in self.all():
            for member_id in network["Members"]:
                record = self.containers.records.get(member_id)
                if record is not None and record.network == "bridge":
                    groups.setdefault(host_veth_name(self.bridge, member_id),
                                      set()).add(network["Id"])
        try:
            self.isolation.apply(groups)
        except NetworkError as error:
            raise DockerError(500, f"could not keep the networks apart on bridge "
                                   f"{self.bridge}: {error}") from None

    def _path(self, network_id: str) -> str:
        return os.path.join(self.directory, f"{network_id}.json")

    def all(self) -> list[dict]:
        networks = []
        for entry in sorted(os.listdir(self.directory)):
            if entry.endswith(".json"):
                with open(os.path.join(self.directory, entry)) as source:
                    networks.append(json.load(source))
        return networks

    def find(self, key: str) -> dict:
        for network in self.all():
            if key in (network["Name"], network["Id"]) or network["Id"].startswith(key):
                return network
        raise DockerError(404, f"network {key} not found")

    def save(self, network: dict) -> None:
        write_json_atomically(self._path(network["Id"]), network)

    def create(self, name: str, labels: dict | None) -> dict:
        if name in PREDEFINED or any(network["Name"] == name for network in self.all()):
            raise DockerError(409, f"network with name {name} already exists")
        network = {"Name": name, "Id": secrets.token_hex(32), "Created": now_rfc3339(),
                   "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
                   "IPAM": {"Driver": "default", "Config": []}, "Internal": False,
                   "Attachable": True, "Ingress": False, "Options": {},
                   "Labels": labels or {}, "Members": {}}
        self.save(network)
        return network

    def remove(self, network: dict) -> None:
        os.unlink(self._path(network["Id"]))

    def connect(self, network: dict, container_id: str, aliases: list[str]) -> None:
        network["Members"][container_id] = {"Aliases": list(aliases or [])}
        self.save(network)
        self.isolate()

    def disconnect(self, network: dict, container_id: str) -> None:
        network["Members"].pop(container_id, None)
        self.save(network)
        self.isolate()

    def of_container(self, container_id: str) -> list[dict]:
        return [network for network in self.all() if container_id in network["Members"]]

    def forget_container(self, container_id: str) -> None:
        for network in self.of_container(container_id):
            self.disconnect(network, container_id)

    # -- names ---------------------------------------------------------------------------

    def _hosts_file(self, record, peers: list[tuple]) -> bytes:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        if record.ip:
            lines.append(f"{record.ip}\t{record.hostname} {record.name}")
        for peer, aliases in peers:
            names = " ".join(dict.fromkeys([peer.name, *aliases, peer.id[:12]]))
            lines.append(f"{peer.ip}\t{names}")
        return ("\n".join(lines) + "\n").encode()

    def _peers(self, member_id: str, network_ids: set[str]) -> list[tuple]:
        peers = []
        for network in self.all():
            if network["Id"] not in network_ids:
                continue
            for peer_id, endpoint in network["Members"].items():
                peer = self.containers.records.get(peer_id)
                if peer is not None and peer_id != member_id and peer.ip and \
                        self.containers.is_running(peer):
                    peers.append((peer, endpoint["Aliases"]))
        return peers

    def prepare(self, container_id: str) -> None:
        """Before a member starts: its /etc/hosts goes into its upper dir on the host (nothing
        is mounted yet), so its process finds the others from its first instruction."""
        network_ids = {network["Id"] for network in self.of_container(container_id)}
        record = self.containers.records.get(container_id)
        if not network_ids or record is None:
            return
        etc = os.path.join(self.containers.directory(record), "upper", "etc")
        os.makedirs(etc, mode=0o755, exist_ok=True)
        hosts = os.path.join(etc, "hosts")
        with open(hosts + ".tmp", "wb") as out:
            out.write(self._hosts_file(record, self._peers(container_id, network_ids)))
        os.chmod(hosts + ".tmp", 0o644)
        os.replace(hosts + ".tmp", hosts)

    async def refresh(self, container_id: str) -> None:
        """Rewrite /etc/hosts of every running member of the networks this container is on."""
        members: dict[str, set[str]] = {}
        for network in self.of_container(container_id):
            for member_id in network["Members"]:
                members.setdefault(member_id, set()).add(network["Id"])
        for member_id, network_ids in members.items():
            record = self.containers.records.get(member_id)
            if record is None:
                continue
            state = self.containers.status(record)
            if state.status != "running" or not state.pid:
                continue
            await _write_file(state.pid, "/etc/hosts",
                              self._hosts_file(record, self._peers(member_id, network_ids)))


async def _write_file(pid: int, path: str, content: bytes) -> None:
    process = await asyncio.create_subprocess_exec(
        *HELPER, "write", str(pid), path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, errors = await process.communicate(content)
    if process.returncode != 0:
        log.warning("could not write %s in the container of pid %d: %s", path, pid,
                    errors.decode(errors="replace").strip())


def store_of(request: web.Request) -> NetworkStore:
    return request.app[NETWORKS]


def _view(network: dict, containers) -> dict:
    attached = {}
    for container_id, endpoint in network["Members"].items():
        record = containers.records.get(container_id)
        if record is not None:
            attached[container_id] = {"Name": record.name, "EndpointID": container_id[:16],
                                      "IPv4Address": f"{record.ip}/24" if record.ip else "",
                                      "MacAddress": "", "IPv6Address": ""}
    view = {key: value for key, value in network.items() if key != "Members"}
    return {**view, "Containers": attached}


def _predefined(name: str) -> dict:
    return {"Name": name, "Id": name, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": PREDEFINED[name], "EnableIPv6": False, "Internal": False,
            "Attachable": False, "Ingress": False, "IPAM": {"Driver": "default", "Config": []},
            "Options": {}, "Labels": {}, "Containers": {}}


@route("GET", "/networks")
async def list_networks(request: web.Request) -> web.Response:
    try:
        filters = {key: list(value) for key, value in
                   json.loads(request.query.get("filters") or "{}").items()}
    except ValueError:
        raise DockerError(400, "invalid filters: not JSON") from None
    containers = daemon_of(request).containers
    rows = [_predefined(name) for name in PREDEFINED]
    rows += [_view(network, containers) for network in store_of(request).all()]

    def wanted(row: dict) -> bool:
        labels = row.get("Labels") or {}
        checks = {"name": lambda value: value in row["Name"],
                  "id": lambda value: row["Id"].startswith(value),
                  "driver": lambda value: row["Driver"] == value,
                  "label": lambda value: (value.partition("=")[0] in labels and (
                      "=" not in value or labels[value.partition("=")[0]] ==
                      value.partition("=")[2])),
                  "type": lambda value: (value == "builtin") == (row["Name"] in PREDEFINED)}
        return all(any(checks[key](value) for value in values)
                   for key, values in filters.items() if key in checks)

    return json_response([row for row in rows if wanted(row)])


@route("GET", "/networks/{id}")
async def inspect_network(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    if key in PREDEFINED:
        return json_response(_predefined(key))
    return json_response(_view(store_of(request).find(key), daemon_of(request).containers))


@route("POST", "/networks/create")
async def create_network(request: web.Request) -> web.Response:
    body = await request.json()
    name = body.get("Name")
    if not name or not isinstance(name, str):
        raise DockerError(400, "a network needs a Name")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise DockerError(400, f"network driver {driver!r} is not supported: use bridge")
    network = store_of(request).create(name, body.get("Labels"))
    return json_response({"Id": network["Id"], "Warning": ""}, status=201)


@route("DELETE", "/networks/{id}")
async def remove_network(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    if key in PREDEFINED:
        raise DockerError(403, f"{key} is a pre-defined network and cannot be removed")
    store = store_of(request)
    network = store.find(key)
    members = [member for member in network["Members"]
               if member in daemon_of(request).containers.records]
    if members:
        raise DockerError(403, f"error while removing network: network {network['Name']} id "
                               f"{network['Id']} has active endpoints")
    store.remove(network)
    return web.Response(status=204)


@route("POST", "/networks/prune")
async def prune_networks(request: web.Request) -> web.Response:
    store, records = store_of(request), daemon_of(request).containers.records
    deleted = []
    for network in store.all():
        if not any(member in records for member in network["Members"]):
            store.remove(network)
            deleted.append(network["Name"])
    return json_response({"NetworksDeleted": deleted})


@route("POST", "/networks/{id}/connect")
async def connect(request: web.Request) -> web.Response:
    from .containers import record_of

    body = await request.json()
    store = store_of(request)
    network = store.find(request.match_info["id"])
    record = record_of(request, body.get("Container") or "")
    if record.network != "bridge":
        raise DockerError(400, f"container {record.name} is on the {record.network} network; "
                               "only bridge containers can join a user-defined network")
    aliases = ((body.get("EndpointConfig") or {}).get("Aliases")) or []
    store.connect(network, record.id, aliases)
    await store.refresh(record.id)
    return web.Response(status=200)


@route("POST", "/networks/{id}/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    from .containers import record_of

    body = await request.json()
    store = store_of(request)
    network = store.find(request.match_info["id"])
    record = record_of(request, body.get("Container") or "")
    await store.refresh(record.id)
    store.disconnect(network, record.id)
    return web.Response(status=200)
