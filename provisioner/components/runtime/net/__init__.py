"""Container networking for the runtime: a Linux bridge, per-container veth and netns,
host-local IPAM, outbound NAT and published ports (the ``network`` contract of the runtime README).

Import from here:
``from provisioner.components.runtime.net import Network, PortMapping, PortInUse``.
"""

from .errors import NetworkError, PortInUse
from .manager import (
    DEFAULT_BRIDGE,
    DEFAULT_SUBNET,
    HOST_NETWORK,
    Attachment,
    Endpoint,
    Network,
    net_namespace_entry,
    uses_host_network,
)
from .ports import PortMapping

__all__ = [
    "DEFAULT_BRIDGE", "DEFAULT_SUBNET", "HOST_NETWORK", "Attachment", "Endpoint", "Network",
    "NetworkError", "PortInUse", "PortMapping", "net_namespace_entry", "uses_host_network",
]
