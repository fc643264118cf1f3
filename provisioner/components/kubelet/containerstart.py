"""kubelet: starting one container of a pod (a mixin of PodWorker).

Image presence and pulls (imagePullPolicy, imagePullSecrets through pullsecrets.py; ErrImagePull,
ImagePullBackOff, ErrImageNeverPull),
the environment and command line, runAsNonRoot, the mounts (volumes, /etc/hosts,
/etc/resolv.conf, the termination-message file), limits and securityContext, then create, start
and the postStart hook. Failures become the container's waiting reason and an event.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from ..runtime.client import RuntimeAPIError
from . import dnsfiles, hostinfo, metrics, podspec, pullsecrets, security
from .runtimeview import (
    CONTAINER_NAME,
    NODE_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    RESTART_COUNT,
    ContainerView,
)
from .volumes import VolumeError

log = logging.getLogger("kubelet.pods")


@dataclass
class Waiting:
    reason: str
    message: str = ""


class ContainerStart:
    def write_dns_files(self, sandbox) -> list[str]:
        """/etc/hosts, /etc/resolv.conf and /etc/hostname for the pod's containers, as bind
        mounts of files in the pod's directory (one set shared by its containers)."""
        os.makedirs(self.pod_dir, exist_ok=True)
        kubelet = self.kubelet
        spec = self.pod["spec"]
        ips = [sandbox.ip] if sandbox.ip else [kubelet.node_ip]
        hostname = hostinfo.hostname() if spec.get("hostNetwork") else \
            (spec.get("hostname") or self.pod["metadata"]["name"])[:63]
        contents = {
            "etc-hosts": _read("/etc/hosts") if spec.get("hostNetwork") else
            dnsfiles.hosts_file(self.pod, ips, kubelet.cluster_domain),
            "resolv.conf": dnsfiles.resolv_conf(self.pod, _read(kubelet.host_resolv_conf),
                                                kubelet.cluster_dns, kubelet.cluster_domain),
            "etc-hostname": hostname + "\n"}
        targets = {"etc-hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf",
                   "etc-hostname": "/etc/hostname"}
        mounts = []
        for name, text in contents.items():
            path = os.path.join(self.pod_dir, name)
            with open(path, "w") as out:
                out.write(text)
            mounts.append(f"{path}:{targets[name]}:rw")
        return mounts

    async def ensure_image(self, container: dict) -> bool:
        image = container["image"]
        memory = self.mem(container["name"])
        policy = container.get("imagePullPolicy") or (
            "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
            else "IfNotPresent")
        try:
            await self.kubelet.runtime.call("image", image)
            present = True
        except RuntimeAPIError:
            present = False
        if present and policy != "Always":
            return True
        if policy == "Never":
            if present:
                return True
            memory.waiting = Waiting("ErrImageNeverPull", f'Container image "{image}" is not '
                                     'present with pull policy of Never')
            return False
        if present:
            return True      # offline hosts: a present image is used rather than a failed pull
        auths, missing = await pullsecrets.credentials_for(
            self.pod, image, self.kubelet.lookup_for(self.pod))
        if missing:
            self.kubelet.event(self.pod, "Warning", "FailedToRetrieveImagePullSecret",
                               "Unable to retrieve some image pull secrets "
                               f"({', '.join(missing)}); attempting to pull the image may "
                               "not succeed.", once_per=60)
        self.kubelet.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"',
                           field_path=self.field_path(container))
        try:
            await pullsecrets.pull(self.kubelet.runtime, image, auths)
        except RuntimeAPIError as error:
            reason = "ImagePullBackOff" if memory.waiting and memory.waiting.reason in (
                "ErrImagePull", "ImagePullBackOff") else "ErrImagePull"
            memory.waiting = Waiting(reason, f'Failed to pull image "{image}": {error}')
            self.kubelet.event(self.pod, "Warning", "Failed", memory.waiting.message,
                               field_path=self.field_path(container))
            return False
        self.kubelet.event(self.pod, "Normal", "Pulled", f'Successfully pulled image "{image}"',
                           field_path=self.field_path(container))
        return True

    async def start_container(self, container: dict, restart_count: int, sandbox) -> bool:
        memory = self.mem(container["name"])
        kubelet = self.kubelet
        if not await self.ensure_image(container):
            return False
        try:
            env = await podspec.container_env(
                self.pod_with_ip(sandbox), container, kubelet.lookup_for(self.pod),
                kubelet.node_ip, kubelet.allocatable, await kubelet.service_env(self.pod))
            entrypoint, cmd = podspec.command_line(container, env)
            if _wants_non_root(self.pod, container):
                image = await kubelet.runtime.call("image", container["image"])
                podspec.check_non_root(self.pod, container,
                                       (image.get("Config") or {}).get("User") or "")
            assert self.volumes is not None
            mounts = [*self.write_dns_files(sandbox), *self.volumes.mounts_for(container)]
            mounts.append(self.termination_log(container, restart_count))
            secure = security.runtime_options(
                self.pod, container, root_dir=kubelet.root_dir,
                seccomp_default=bool(kubelet.config.get("seccompDefault")))
        except (podspec.ContainerConfigError, VolumeError) as error:
            memory.waiting = Waiting("CreateContainerConfigError", str(error))
            kubelet.event(self.pod, "Warning", "Failed", f"Error: {error}",
                          field_path=self.field_path(container))
            return False
        meta = self.pod["metadata"]
        options = {
            "name": f"k8s_{container['name']}_{meta['name']}_{meta.get('namespace')}_"
                    f"{self.uid[:8]}_{restart_count}",
            "env": [f"{k}={v}" for k, v in env.items()], "pod": sandbox.id,
            "volumes": mounts, "workdir": container.get("workingDir"),
            "user": podspec.user_of(self.pod, container),
            "labels": {POD_UID: self.uid, POD_NAME: meta["name"], NODE_NAME: kubelet.node_name,
                       POD_NAMESPACE: meta.get("namespace", "default"),
                       CONTAINER_NAME: container["name"], RESTART_COUNT: str(restart_count)},
            **podspec.limits(container), **podspec.security_options(self.pod, container), **secure,
            # its own stdin and terminal, for kubectl attach and run -it (runtime console)
            "tty": container.get("tty") or None, "stdin_open": container.get("stdin") or None,
            "stdin_once": container.get("stdinOnce") or None}
        if entrypoint is not None:
            options["entrypoint"] = entrypoint
        if cmd is not None:
            options["cmd"] = cmd
        options = {k: v for k, v in options.items() if v is not None}
        try:
            container_id = await kubelet.runtime.call("create", container["image"], **options)
        except RuntimeAPIError as error:
            memory.waiting = Waiting("CreateContainerError", str(error))
            kubelet.event(self.pod, "Warning", "Failed", f"Error: {error}",
                          field_path=self.field_path(container))
            return False
        kubelet.event(self.pod, "Normal", "Created", f"Created container {container['name']}",
                      field_path=self.field_path(container))
        try:
            await kubelet.runtime.call("start", container_id)
        except RuntimeAPIError as error:
            metrics.started_containers_errors.labels(str(error.status), "container").inc()
            memory.waiting = Waiting("RunContainerError", str(error))
            kubelet.event(self.pod, "Warning", "Failed", f"Error: {error}",
                          field_path=self.field_path(container))
            return True
        memory.waiting = None
        memory.started_seen[container_id] = time.monotonic()
        metrics.started_containers.labels("container").inc()
        kubelet.event(self.pod, "Normal", "Started", f"Started container {container['name']}",
                      field_path=self.field_path(container))
        hook = (container.get("lifecycle") or {}).get("postStart")
        if hook and "exec" in hook:
            code, output = await kubelet.exec_collect(container_id, hook["exec"]["command"], 30)
            if code != 0:
                kubelet.event(self.pod, "Warning", "FailedPostStartHook",
                              f"PostStartHook failed: exit {code}: {output[-256:]!r}",
                              field_path=self.field_path(container))
                await kubelet.runtime.call("stop", container_id, 0)
        await kubelet.refresh()
        return True

    def termination_log(self, container: dict, restart_count: int) -> str:
        directory = os.path.join(self.pod_dir, "containers", container["name"])
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"termination-{restart_count}")
        with open(path, "w"):
            pass
        os.chmod(path, 0o666)
        target = container.get("terminationMessagePath") or "/dev/termination-log"
        return f"{path}:{target}:rw"

    def termination_message(self, name: str, instance: ContainerView) -> str:
        path = os.path.join(self.pod_dir, "containers", name, f"termination-{instance.restart_count}")
        return _read(path)[:4096]

    def pod_with_ip(self, sandbox) -> dict:
        pod = dict(self.pod)
        ip = sandbox.ip or self.kubelet.node_ip
        pod["status"] = {**(pod.get("status") or {}), "podIP": ip, "podIPs": [{"ip": ip}]}
        return pod


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as source:
            return source.read()
    except OSError:
        return ""


def _wants_non_root(pod: dict, container: dict) -> bool:
    return bool((container.get("securityContext") or {}).get(
        "runAsNonRoot", (pod["spec"].get("securityContext") or {}).get("runAsNonRoot")))
