"""A pod bound to the node runs on the real runtime: sandbox, containers, env, files, status,
and graceful deletion."""

from __future__ import annotations

from .conftest import pod_manifest, wait_for


def phase(api, namespace, name):
    return api.read_namespaced_pod(name, namespace).status.phase


def test_a_pod_runs_and_reports_kubelet_status(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("web", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sh", "-c"],
         "args": ["echo started; exec sleep 3600"],
         "env": [{"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "GREETING", "value": "hello $(MY_POD)"}]}]))
    pod = wait_for(lambda: (p := api.read_namespaced_pod("web", namespace)).status.phase ==
                   "Running" and p, 60, what="pod web Running")
    status = pod.status
    assert status.pod_ip and status.host_ip == "127.0.0.1"
    assert status.qos_class == "BestEffort"
    [container] = status.container_statuses
    assert container.ready and container.started and container.restart_count == 0
    assert container.state.running.started_at
    assert container.container_id.startswith("provisioner-runtime://")
    conditions = {c.type: c.status for c in status.conditions}
    assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True",
                          "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
    container_id = container.container_id.split("://")[1]
    code, output = kubelet.runtime.client.exec_collect(container_id, ["sh", "-c",
                                                                      "echo $GREETING"])
    assert (code, output) == (0, "hello web\n".encode())
    code, output = kubelet.runtime.client.exec_collect(container_id, ["sh", "-c",
                                                                      "echo $KUBERNETES_SERVICE_HOST"])
    assert output.decode().strip() == api.read_namespaced_service("kubernetes",
                                                                  "default").spec.cluster_ip
    code, output = kubelet.runtime.client.exec_collect(container_id, ["cat", "/etc/resolv.conf"])
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in \
        output.decode()
    assert "nameserver 10.96.0.10" in output.decode() and "options ndots:5" in output.decode()

    api.delete_namespaced_pod("web", namespace)
    wait_for(lambda: not any(p.metadata.name == "web"
                             for p in api.list_namespaced_pod(namespace).items), 60,
             what="pod web deleted")
    wait_for(lambda: not any(c["Id"] == container_id
                             for c in kubelet.runtime.client.containers(all=True)), 30,
             what="container removed")
