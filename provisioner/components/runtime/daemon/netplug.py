"""runtime/daemon: the daemon's one door to the network part (bridge, netns, IPAM, ports, CNI).

`connect` gives a container a named netns on the bridge with an address and its published ports,
all or nothing; `disconnect` takes it all back and may be called for anything. Pod sandboxes go
through `connect_pod`/`disconnect_pod`: their network comes from the CNI plugins of the first
network configuration in the CNI configuration directory (`runtime.net.cni`), or from the bridge
when the pod network mode is "bridge" (or "auto" and no configuration is installed).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from ..net import Network, NetworkError, PortInUse
from ..net import PortMapping as NetworkPort
from ..net.cni import CniPlugins, CniSettings, find_network, pod_address
from .errors import Conflict, DaemonError
from .state import PortMapping

log = logging.getLogger("provisioner.runtime.daemon")


POD_NETWORK_MODES = ("auto", "cni", "bridge")


class NetworkPlug:
    def __init__(self, bridge: str, subnet: str, state_dir: str,
                 cni: CniSettings | None = None, pod_network: str = "auto"):
        self.options = {"bridge": bridge, "subnet": subnet, "state_dir": state_dir}
        self.network = Network(**self.options)
        if pod_network not in POD_NETWORK_MODES:
            raise DaemonError(f"--pod-network {pod_network!r}: use one of "
                              f"{', '.join(POD_NETWORK_MODES)}")
        self.pod_network = pod_network
        self.cni = CniPlugins(cni or CniSettings())
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

    def status(self) -> dict:
        """Whether pod sandboxes can get a network now, as a CRI runtime's NetworkReady
        condition says it (the kubelet keeps its node NotReady until it is)."""
        if self.pod_network == "bridge":
            return {"ready": True}
        try:
            network = find_network(self.cni.settings.conf_dir)
        except NetworkError as error:
            return {"ready": False, "reason": "NetworkPluginNotReady",
                    "message": f"Network plugin returns error: {error}"}
        if network is None and self.pod_network == "cni":
            return {"ready": False, "reason": "NetworkPluginNotReady",
                    "message": "Network plugin returns error: cni plugin not initialized"}
        return {"ready": True}

    def pod_uses_cni(self) -> bool:
        if self.pod_network == "auto":
            try:
                return find_network(self.cni.settings.conf_dir) is not None
            except NetworkError:
                return True          # a broken configuration is reported by ADD, not bypassed
        return self.pod_network == "cni"

    def connect_pod(self, pod_id: str, ports: list[PortMapping],
                    identity: dict[str, str]) -> tuple[str, str]:
        """(netns path, address) for a pod sandbox: through CNI (see `pod_uses_cni`) or the
        bridge; on any failure nothing of it is left and the error carries the plugin's message."""
        if not self.pod_uses_cni():
            return self.connect(pod_id, ports)
        netns = None
        try:
            netns = self.network.create_netns(pod_id)
            # CNI_ARGS as kubelets' runtimes pass them; IgnoreUnknown lets plugins skip them.
            args = {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": identity.get("namespace", ""),
                    "K8S_POD_NAME": identity.get("name", ""),
                    "K8S_POD_INFRA_CONTAINER_ID": pod_id, "K8S_POD_UID": identity.get("uid", "")}
            capabilities = {"portMappings": [_as_cni_port(port) for port in ports]} if ports else {}
            attachment = self.cni.add(pod_id, netns, args, capabilities)
            address = pod_address(attachment.result)
            if not address:
                raise DaemonError(f"the CNI network {attachment.network.name} gave pod "
                                  f"{pod_id[:12]} no IP address: {attachment.result}")
            return netns, address
        except BaseException as error:
            self._delete_cni_quietly(pod_id, netns)
            self.disconnect(pod_id)
            if isinstance(error, NetworkError):
                raise DaemonError(str(error)) from None
            raise

    def disconnect_pod(self, pod_id: str, netns: str | None) -> None:
        """CNI DEL for a pod that has a cached CNI result, then its netns (and any bridge part)."""
        if self.cni.cached(pod_id) is not None:
            self._delete_cni_quietly(pod_id, netns)
        self.disconnect(pod_id)

    def _delete_cni_quietly(self, pod_id: str, netns: str | None) -> None:
        try:
            self.cni.delete(pod_id, netns)
        except Exception as error:            # noqa: BLE001 - log and go on: removal must finish
            log.warning("CNI DEL for pod sandbox %s: %s", pod_id[:12], error)

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


def _as_cni_port(port: PortMapping) -> dict:
    """The portMappings capability's entry (as the portmap plugin reads it)."""
    mapping = {"hostPort": port.host_port, "containerPort": port.container_port,
               "protocol": port.protocol}
    if port.host_ip and port.host_ip != "0.0.0.0":
        mapping["hostIP"] = port.host_ip
    return mapping
