"""netagent/cniconfig: the node's CNI network configuration, written once its podCIDR is known (as
flannel and Calico write theirs): this project's plugins, addresses from the node's podCIDR. The
runtime reads the configuration directory for every pod sandbox, so a pod created before this file
exists fails with "no CNI network configuration" and the kubelet retries it."""

from __future__ import annotations

import json
import os

FILE_NAME = "10-provisioner.conflist"
NETWORK_NAME = "provisioner"


def network(pod_cidr: str, bridge: str = "cni0", mtu: int | None = None) -> dict:
    bridge_plugin = {"type": "provisioner-bridge", "bridge": bridge, "isGateway": True,
                     "ipMasq": False,       # the agent masquerades pod->outside for the cluster CIDR
                     "hairpinMode": True,
                     "ipam": {"type": "provisioner-host-local",
                              "ranges": [[{"subnet": pod_cidr}]],
                              "routes": [{"dst": "0.0.0.0/0"}]}}
    if mtu:
        bridge_plugin["mtu"] = mtu
    # no loopback plugin in the chain: the runtime brings each pod netns's lo up as it makes it
    # (as containerd does outside the conflist), and every plugin listed is one more exec per pod
    return {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": [
        bridge_plugin,
        {"type": "provisioner-portmap", "capabilities": {"portMappings": True}}]}


def write(conf_dir: str, pod_cidr: str, mtu: int | None = None) -> bool:
    """Write (atomically) when missing or different; True if it changed."""
    path = os.path.join(conf_dir, FILE_NAME)
    content = json.dumps(network(pod_cidr, mtu=mtu), indent=2) + "\n"
    try:
        with open(path) as current:
            if current.read() == content:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(conf_dir, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as sink:
        sink.write(content)
    os.replace(tmp, path)
    return True
