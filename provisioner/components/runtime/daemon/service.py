"""runtime/daemon: the daemon's parts put together (store, network, containers, pods, images).

`RuntimeDaemon.open` builds them from the daemon's flags and re-adopts what a previous daemon left:
container records, their shims' state files, pods, and the network's own state files.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from ..container import cgroups
from ..images import ImageStore
from ..images.errors import ImageError
from ..net.cni import CniSettings
from .containers import ContainerService
from .imaging import ImageOperations
from .netplug import NetworkPlug
from .pods import PodService
from .state import StateDirectory

log = logging.getLogger("provisioner.runtime.daemon")
VERSION = "0.1.0"


@dataclass
class DaemonConfig:
    root: str
    socket: str
    bridge: str = "prt0"
    subnet: str = "10.88.0.0/16"
    cgroup_parent: str = "provisioner-runtime"
    pause_image: str = "busybox:latest"
    bootstrap_images: bool = True     # add busybox and python:3.11 from host files on start
    pod_network: str = "auto"         # pod sandboxes: "cni", "bridge", "auto" (CNI if configured)
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: tuple[str, ...] = ("/opt/cni/bin",)
    cni_cache_dir: str = "/var/lib/cni"
    docker_socket: str | None = None  # Docker's Engine API (runtime/docker/); None: not served
    registry_mirrors: tuple[str, ...] = ()   # tried first for docker.io pulls, in this order
    default_registry: str | None = None      # docker.io's endpoint URL (default: Docker Hub)


class RuntimeDaemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        os.makedirs(config.root, exist_ok=True)
        os.chmod(config.root, 0o700)  # container state, logs and credentials: root's alone
        self.state = StateDirectory(config.root)
        self.store = ImageStore(config.root)
        self.network = NetworkPlug(config.bridge, config.subnet,
                                   os.path.join(config.root, "network"),
                                   CniSettings(config.cni_conf_dir, list(config.cni_bin_dirs),
                                               config.cni_cache_dir), config.pod_network)
        self.containers = ContainerService(self.state, self.store, self.network,
                                           config.cgroup_parent)
        self.pods = PodService(self.state, self.containers, self.network, config.pause_image)
        self.images = ImageOperations(self.store, config.root, config.cgroup_parent,
                                      self._images_in_use)
        self.images.registry_settings = {"mirrors": config.registry_mirrors,
                                         "docker_hub_endpoint": config.default_registry}
        self.cgroup_mode = cgroups.mode()

    def _images_in_use(self) -> dict[str, str]:
        return {record.image_id: record.name for record in self.containers.records.values()}

    async def open(self) -> None:
        if self.cgroup_mode == "none":
            log.warning("no cgroup hierarchy under /sys/fs/cgroup: memory, CPU and pids limits "
                        "will not be applied")
        if self.config.bootstrap_images:
            # A fresh machine has no registry to pull from: give it busybox (the pause image)
            # and python:3.11 from the host's own files. Missing host packages only warn.
            try:
                await asyncio.to_thread(self.images.bootstrap)
            except (ImageError, OSError) as error:
                log.warning("bootstrap images not added: %s", error)
        await asyncio.to_thread(self.images.sweep)
        self.pods.adopt()
        await self.containers.adopt()
        if any(record.network == "bridge" for record in self.containers.records.values()) or \
                any(not pod.host_network for pod in self.pods.records.values()):
            # The bridge and NAT rules may be gone (host reboot keeps no netns, but a flushed
            # firewall does happen): make sure they are there for the re-adopted containers.
            await asyncio.to_thread(self.network.ensure_ready_quietly)

    def version(self) -> dict:
        return {"version": VERSION, "api_version": "v1", "root": self.config.root,
                "socket": self.config.socket, "cgroup_mode": self.cgroup_mode,
                "bridge": self.config.bridge, "subnet": self.config.subnet,
                "network": self.network.status()}
