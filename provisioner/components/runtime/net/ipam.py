"""Host-local address management for one bridge network (``runtime.net``).

One file per handed-out address, ``<dir>/<address>``, holding the container id: it is the
source of truth, so a daemon restart simply reads the directory. Files appear atomically (written
aside, then hard-linked into place, which fails if the name exists), and every change happens under
an exclusive ``flock`` on ``<dir>/.lock``: flock conflicts between separate opens even inside one
process, so it serialises both daemon threads and separate processes. Addresses are handed out
round-robin after the last one given (``.last``), so a just-freed address is not reused at once
(stale ARP and conntrack entries on peers would otherwise point at the wrong container). The network
and broadcast addresses and the gateway are never handed out.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator

from .errors import NetworkError


class HostLocalIPAM:
    def __init__(self, directory: str, subnet: ipaddress.IPv4Network):
        if subnet.prefixlen > 30:
            raise NetworkError(f"subnet {subnet} is too small for containers; use a /30 or larger")
        self.directory = directory
        self.subnet = subnet
        self.gateway = subnet.network_address + 1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _entries(self) -> dict[str, str]:
        """address -> container id, for every file that names an address in our subnet."""
        entries = {}
        for name in os.listdir(self.directory):
            try:
                if ipaddress.IPv4Address(name) not in self.subnet:
                    continue
            except ValueError:
                continue
            try:
                with open(os.path.join(self.directory, name)) as f:
                    entries[name] = f.read().strip()
            except FileNotFoundError:
                continue
        return entries

    def allocations(self) -> dict[str, str]:
        """container id -> address for every live allocation."""
        if not os.path.isdir(self.directory):
            return {}
        with self._locked():
            return {owner: address for address, owner in self._entries().items()}

    def allocate(self, container_id: str) -> ipaddress.IPv4Address:
        """The container's address: the one it already holds, or the next free one."""
        with self._locked():
            entries = self._entries()
            for address, owner in entries.items():
                if owner == container_id:
                    return ipaddress.IPv4Address(address)
            for candidate in self._candidates_after(self._last()):
                if str(candidate) in entries:
                    continue
                if self._claim(candidate, container_id):
                    self._write(".last", str(candidate))
                    return candidate
        raise NetworkError(
            f"no free address left in {self.subnet} for container {container_id}; "
            "remove stopped containers or configure a larger subnet"
        )

    def release(self, container_id: str) -> None:
        """Free every address held by the container; nothing held is fine."""
        if not os.path.isdir(self.directory):
            return
        with self._locked():
            for address, owner in self._entries().items():
                if owner == container_id:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.directory, address))

    def _candidates_after(
        self, last: ipaddress.IPv4Address | None
    ) -> Iterator[ipaddress.IPv4Address]:
        first = int(self.subnet.network_address) + 1
        end = int(self.subnet.broadcast_address)  # exclusive: never the broadcast address
        start = int(last) + 1 if last is not None and first <= int(last) < end else first
        for value in [*range(start, end), *range(first, start)]:
            candidate = ipaddress.IPv4Address(value)
            if candidate != self.gateway:
                yield candidate

    def _last(self) -> ipaddress.IPv4Address | None:
        try:
            with open(os.path.join(self.directory, ".last")) as f:
                return ipaddress.IPv4Address(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _claim(self, address: ipaddress.IPv4Address, container_id: str) -> bool:
        """Atomically create the address file; False if it already exists."""
        pending = os.path.join(self.directory, f".pending-{os.getpid()}-{address}")
        self._write(os.path.basename(pending), container_id)
        try:
            os.link(pending, os.path.join(self.directory, str(address)))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(pending)

    def _write(self, name: str, content: str) -> None:
        path = os.path.join(self.directory, name)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(content + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
