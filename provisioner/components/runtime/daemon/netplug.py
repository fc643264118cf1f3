"""runtime/daemon: the daemon's one door to the network part (bridge, netns, IPAM, ports).

`connect` gives a container (or a pod sandbox) a named netns on the bridge with an address and its
published ports, all or nothing; `disconnect` takes it all back and may be called for anything.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from ..net import Network, NetworkError, PortInUse
from ..net import PortMapping as NetworkPort
from .errors import Conflict, DaemonError
from .state import PortMapping

log = logging.getLogger("provisioner.runtime.daemon")


class NetworkPlug:
    def __init__(self, bridge: str, subnet: str, state_dir: str):
        self.options = {"bridge": bridge, "subnet": subnet, "state_dir": state_dir}
        self.network = Network(**self.options)
        self._ready = False
        self._lock = threading.Lock()
        # owner id -> its name (container or pod), so messages name what the user named
        self.name_of: Callable[[str], str | None] = lambda owner_id: None

    def ensure_ready(self) -> None:
        """Bridge, NAT and the port rules of endpoints a previous daemon left, once per daemon."""
        with self._lock:
            if not self._ready:
                self.network = Network.load(**self.options)
                self._ready = True

    def connect(self, owner_id: str, ports: list[PortMapping]) -> tuple[str, str]:
        """(netns path, address); on any failure nothing of it is left."""
        try:
            self.ensure_ready()
            netns = self.network.create_netns(owner_id)
            attachment = self.network.attach(owner_id, netns)
            address = _address_of(attachment)
            if ports:
                self.network.publish(owner_id, address, [_as_network_port(port) for port in ports])
            return netns, address
        except BaseException as error:
            self.disconnect(owner_id)
            if isinstance(error, PortInUse):
                raise Conflict(self._with_names(str(error))) from None
            if isinstance(error, NetworkError):
                raise DaemonError(str(error)) from None
            raise

    def _with_names(self, message: str) -> str:
        return re.sub(r"\b[0-9a-f]{64}\b",
                      lambda match: self.name_of(match.group(0)) or match.group(0)[:12], message)

    def ensure_ready_quietly(self) -> None:
        try:
            self.ensure_ready()
        except NetworkError as error:
            log.warning("the bridge network is not ready: %s", error)

    def disconnect(self, owner_id: str) -> None:
        try:
            self.network.release(owner_id)
        except Exception as error:            # noqa: BLE001 - log and go on: removal must finish
            log.warning("releasing the network of %s: %s", owner_id[:12], error)


def _address_of(attachment) -> str:
    for name in ("ip", "address", "ipv4"):
        value = getattr(attachment, name, None)
        if value:
            return str(value).split("/")[0]
    raise DaemonError(f"the network part returned no address in {attachment!r}")


def _as_network_port(port: PortMapping) -> NetworkPort:
    return NetworkPort(host_port=port.host_port, container_port=port.container_port,
                               protocol=port.protocol, host_ip=port.host_ip or "0.0.0.0")
