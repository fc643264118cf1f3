"""CNI as a user sees it through a real kubelet. A node without a pod network configuration is
NotReady with kubelet's message, and Ready within moments of one being installed. A CNI plugin
that fails: the pod stays Pending with a FailedCreatePodSandBox event carrying the plugin's own
message, and the kubelet keeps retrying, so the pod starts once the node's network configuration
is fixed (no pod re-creation needed).

One kubelet process of its own (node `cni-kubelet-<N>`, cgroup root of its own) on the session's
CNI runtime daemon (see conftest) and API server."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from provisioner.dev import terminate
from tests.conftest import free_port

from .conftest import OWN_SUBNET, SESSION, kubectl, wait_for
from .test_cni_plugin import own_network

NODE = f"cni-kubelet-{SESSION}"
CGROUP_ROOT = f"provisioner-cni-kubelet-{SESSION}"
NAMESPACE = f"cni-kubelet-{SESSION}"


def start_kubelet(api, runtime, base, node: str = NODE) -> subprocess.Popen:
    config = base / "kubelet-config.yaml"
    config.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        f"staticPodPath: {base / 'manifests'}\nport: {free_port()}\n"
        "clusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\n"
        f"authentication:\n  x509:\n    clientCAFile: {api.pki / 'ca.crt'}\n"
        f"cgroupRoot: /{CGROUP_ROOT}\n")
    (base / "manifests").mkdir()
    kubeconfig = api.user_kubeconfig(f"system:node:{node}", ("system:nodes",))
    with open(base / "kubelet.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "provisioner.components.kubelet.main", "--config", str(config),
             "--kubeconfig", str(kubeconfig), "--root-dir", str(base / "kubelet"),
             "--hostname-override", node, "--node-ip", "127.0.0.1",
             "--container-runtime-endpoint", f"unix://{runtime.socket}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def get(api, *args: str) -> dict:
    return json.loads(kubectl(api, "get", *args, "-o", "json"))


def ready_condition(api, node: str = NODE) -> dict | None:
    try:
        found = get(api, "node", node)
    except AssertionError:                          # not registered yet
        return None
    return next((c for c in found.get("status", {}).get("conditions", [])
                 if c["type"] == "Ready"), None)


def node_ready(api, node: str = NODE) -> bool:
    return (ready_condition(api, node) or {}).get("status") == "True"


def sandbox_failures(api) -> list[str]:
    events = get(api, "events", "-n", NAMESPACE, "--field-selector",
                 "involvedObject.name=web")["items"]
    return [e.get("message", "") for e in events if e.get("reason") == "FailedCreatePodSandBox"]


def remove_cgroups() -> None:
    import os

    for top in ["/sys/fs/cgroup", *(os.path.join("/sys/fs/cgroup", d)
                                     for d in os.listdir("/sys/fs/cgroup"))]:
        root = os.path.join(top, CGROUP_ROOT)
        for directory, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)


def test_a_node_is_not_ready_until_a_pod_network_is_installed(api, cni_daemon, tmp_path):
    for name in os.listdir(cni_daemon.conf_dir):       # no network: the CNI add-on not yet there
        os.unlink(os.path.join(cni_daemon.conf_dir, name))
    node = f"{NODE}-nr"
    kubelet = start_kubelet(api, cni_daemon, tmp_path, node)
    try:
        condition = wait_for(lambda: ready_condition(api, node), timeout=60,
                             what=f"node {node}'s Ready condition")
        assert condition["status"] == "False" and condition["reason"] == "KubeletNotReady"
        assert condition["message"] == (
            "container runtime network not ready: NetworkReady=false "
            "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin "
            "not initialized")
        # installed by hand here, as the network agent does on a cluster's nodes
        cni_daemon.use_network(own_network(str(tmp_path / "ipam")))
        wait_for(lambda: node_ready(api, node), timeout=30, what=f"node {node} Ready")
    finally:
        terminate(kubelet, grace=30)
        with contextlib.suppress(AssertionError):
            kubectl(api, "delete", "node", node)
        remove_cgroups()


def test_a_failing_plugin_is_a_failed_sandbox_event_with_its_message_and_the_kubelet_retries(
        api, cni_daemon, tmp_path):
    cni_daemon.use_network({"cniVersion": "1.0.0", "name": "broken",
                            "plugins": [{"type": "no-such-plugin"}]})
    kubelet = start_kubelet(api, cni_daemon, tmp_path)
    try:
        wait_for(lambda: node_ready(api), timeout=60, what=f"node {NODE} Ready")
        kubectl(api, "create", "namespace", NAMESPACE)
        kubectl(api, "apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"nodeName": NODE, "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox",
                                     "command": ["sleep", "3600"]}]}}))
        failures = wait_for(lambda: sandbox_failures(api), timeout=60,
                            what="a FailedCreatePodSandBox event")
        assert "failed to find CNI plugin 'no-such-plugin'" in failures[0], failures
        assert get(api, "pod", "web", "-n", NAMESPACE)["status"].get("phase") == "Pending"

        cni_daemon.use_network(own_network(str(tmp_path / "ipam")))     # the operator fixes it
        pod = wait_for(lambda: (found := get(api, "pod", "web", "-n", NAMESPACE))["status"]
                       .get("phase") == "Running" and found, timeout=90,
                       what="the pod Running once the configuration works")
        assert pod["status"]["podIP"].startswith(OWN_SUBNET.rsplit(".", 1)[0] + ".")
    finally:
        with contextlib.suppress(AssertionError):
            kubectl(api, "delete", "namespace", NAMESPACE, "--wait=false")
        terminate(kubelet, grace=30)
        for sandbox in cni_daemon.client.pods():          # what the kubelet left running
            if sandbox.get("namespace") == NAMESPACE:
                cni_daemon.client.remove_pod(sandbox["id"])
        remove_cgroups()
