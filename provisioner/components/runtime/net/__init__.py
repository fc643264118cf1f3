"""Container networking for the runtime: a Linux bridge, per-container veth and netns,
host-local IPAM, outbound NAT and published ports (the ``network`` contract of the runtime README).

Import from here:
``from provisioner.components.runtime.net import Network, PortMapping, PortInUse``.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module defining it, imported on first use (PEP 562): the CNI plugins' IPAM imports
# `runtime.net.ipam`, and must not pay for pyroute2, which `manager` needs, on every pod start
_EXPORTS = {
    "NetworkError": "errors", "PortInUse": "errors", "PortMapping": "ports",
    **dict.fromkeys(("DEFAULT_BRIDGE", "DEFAULT_SUBNET", "HOST_NETWORK", "Attachment", "Endpoint",
                     "Network", "net_namespace_entry", "uses_host_network"), "manager"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
