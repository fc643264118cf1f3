"""ClusterIP and NodePort allocation, with the allocation state in etcd.

Each allocated IP or port is one key (`/registry/ranges/serviceips/<ip>`), claimed with a
create-if-absent transaction, so API servers sharing an etcd never hand out the same value.
"""

from __future__ import annotations

import ipaddress
import random

from .errors import ApiError
from .storage import Storage

NODE_PORTS = range(30000, 32768)


class Allocator:
    def __init__(self, storage: Storage, service_cidr: str):
        self.storage = storage
        self.net = ipaddress.ip_network(service_cidr, strict=False)

    def _ip_key(self, ip: str) -> bytes:
        return f"{self.storage.prefix}/ranges/serviceips/{ip}".encode()

    def _port_key(self, port: int, proto: str) -> bytes:
        return f"{self.storage.prefix}/ranges/servicenodeports/{proto}/{port}".encode()

    async def _claim(self, key: bytes, owner: str) -> bool:
        return await self.storage.put_raw_if(key, owner.encode(), 0)

    async def allocate_ip(self, owner: str, wanted: str | None = None) -> str:
        if wanted:
            try:
                ip = ipaddress.ip_address(wanted)
            except ValueError:
                raise ApiError.invalid("Service", owner.split("/")[-1], [(
                    "spec.clusterIPs[0]", f'Invalid value: "{wanted}": must be a valid IP address, '
                    '(e.g. 10.9.8.7 or 2001:db8::ffff)')])
            if ip not in self.net or ip in (self.net.network_address, self.net.broadcast_address):
                raise ApiError.invalid("Service", owner.split("/")[-1], [(
                    "spec.clusterIPs", f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP '
                    f'{wanted}: the provided IP ({wanted}) is not in the valid range. The range of '
                    f'valid IPs is {self.net}')])
            if not await self._claim(self._ip_key(wanted), owner):
                raise ApiError.invalid("Service", owner.split("/")[-1], [(
                    "spec.clusterIPs", f'Invalid value: []string{{"{wanted}"}}: failed to allocate '
                    f'IP {wanted}: provided IP is already allocated')])
            return wanted
        size = self.net.num_addresses - 2
        # random probing first (cheap while the range is sparse), then a full scan
        for _ in range(32):
            ip = str(self.net.network_address + 1 + random.randrange(size))
            if await self._claim(self._ip_key(ip), owner):
                return ip
        for i in range(size):
            ip = str(self.net.network_address + 1 + i)
            if await self._claim(self._ip_key(ip), owner):
                return ip
        raise ApiError(500, "InternalError", "failed to allocate a serviceIP: range is full")

    async def allocate_port(self, owner: str, proto: str, wanted: int | None = None) -> int:
        if wanted:
            if wanted not in NODE_PORTS:
                raise ApiError.invalid("Service", owner.split("/")[-1], [(
                    "spec.ports[0].nodePort", f"Invalid value: {wanted}: provided port is not in the "
                    "valid range. The range of valid ports is 30000-32767")])
            if not await self._claim(self._port_key(wanted, proto), owner):
                raise ApiError.invalid("Service", owner.split("/")[-1], [(
                    "spec.ports[0].nodePort", f"Invalid value: {wanted}: provided port is already allocated")])
            return wanted
        for _ in range(64):
            port = random.choice(NODE_PORTS)
            if await self._claim(self._port_key(port, proto), owner):
                return port
        for port in NODE_PORTS:
            if await self._claim(self._port_key(port, proto), owner):
                return port
        raise ApiError(500, "InternalError", "failed to allocate a nodePort: range is full")

    async def release_ip(self, ip: str) -> None:
        await self.storage.delete_raw(self._ip_key(ip))

    async def release_port(self, port: int, proto: str) -> None:
        await self.storage.delete_raw(self._port_key(port, proto))

    async def allocate_service(self, svc: dict, old: dict | None = None) -> None:
        """Fill clusterIP(s) and nodePorts on a new or updated Service; claims are in etcd."""
        meta, spec = svc["metadata"], svc.setdefault("spec", {})
        owner = f"{meta.get('namespace')}/{meta.get('name')}"
        old_spec = (old or {}).get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return
        if old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        elif spec.get("clusterIP") != "None":
            spec["clusterIP"] = await self.allocate_ip(owner, spec.get("clusterIP") or None)
        spec["clusterIPs"] = [spec["clusterIP"]]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or []}
        if kind in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports") or []:
                proto = p.get("protocol", "TCP")
                prev = old_ports.get((p.get("port"), proto))
                if p.get("nodePort") and p.get("nodePort") == prev:
                    continue
                if prev and not p.get("nodePort"):
                    p["nodePort"] = prev
                    continue
                p["nodePort"] = await self.allocate_port(owner, proto, p.get("nodePort"))

    async def release_service(self, svc: dict) -> None:
        spec = svc.get("spec") or {}
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            await self.release_ip(spec["clusterIP"])
        for p in spec.get("ports") or []:
            if p.get("nodePort"):
                await self.release_port(p["nodePort"], p.get("protocol", "TCP"))
