"""Graceful deletion (preStop, TERM, then the final delete), the service-account token the
API server's kube-api-access volume asks for, host ports, and a kubelet restart that adopts
running containers instead of starting them again."""

from __future__ import annotations

import urllib.request

from tests.conftest import free_port

from .conftest import KubeletProcess, node_ready, pod_manifest, wait_for


def test_deletion_runs_pre_stop_then_term(api, kubelet, namespace, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = "trap 'echo term >> /marks/log; exit 0' TERM; sleep 3600 & wait"
    api.create_namespaced_pod(namespace, pod_manifest("graceful", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sh", "-c", script],
         "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c",
                                                        "echo prestop >> /marks/log"]}}},
         "volumeMounts": [{"name": "marks", "mountPath": "/marks"}]}],
        volumes=[{"name": "marks", "hostPath": {"path": str(marks), "type": "Directory"}}],
        terminationGracePeriodSeconds=20))
    wait_for(lambda: api.read_namespaced_pod("graceful", namespace).status.phase == "Running",
             60, what="pod Running")
    api.delete_namespaced_pod("graceful", namespace)
    wait_for(lambda: "graceful" not in {p.metadata.name for p in
                                        api.list_namespaced_pod(namespace).items},
             30, what="the pod deleted for good")
    assert (marks / "log").read_text().splitlines() == ["prestop", "term"]


def test_pods_get_their_service_account_token_and_host_ports(api, kubelet, namespace):
    port = free_port()
    api.create_namespaced_pod(namespace, pod_manifest("served", kubelet.node, [
        {"name": "main", "image": "busybox:latest",
         "command": ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && "
                                 "exec httpd -f -p 8080 -h /www"],
         "ports": [{"containerPort": 8080, "hostPort": port}],
         "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080},
                            "periodSeconds": 1}}]))
    pod = wait_for(lambda: (p := api.read_namespaced_pod("served", namespace))
                   .status.container_statuses and p.status.container_statuses[0].ready and p,
                   60, what="pod ready through its httpGet probe")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as reply:
        assert reply.read() == b"hello\n"
    container_id = pod.status.container_statuses[0].container_id.split("://")[1]
    code, out = kubelet.runtime.client.exec_collect(container_id, [
        "sh", "-c", "cd /var/run/secrets/kubernetes.io/serviceaccount && cat namespace && echo "
                    "&& head -c 3 token && echo && grep -c BEGIN ca.crt"])
    assert code == 0, out
    assert out.decode().splitlines() == [namespace, "eyJ", "1"]


def test_a_restarted_kubelet_adopts_running_containers(api, cluster, runtime, namespace):
    node = "adopting-node"
    base = runtime.base / "adopting"
    kubelet = KubeletProcess(base, runtime, cluster, node=node)
    kubelet.start()
    try:
        wait_for(lambda: node_ready(api, node), 60, what="node Ready")
        api.create_namespaced_pod(namespace, pod_manifest("steady", node, [
            {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"]}]))
        before = wait_for(lambda: (s := api.read_namespaced_pod("steady", namespace).status
                                   .container_statuses) and s[0].state.running and s[0], 60,
                          what="pod running")
        kubelet.stop()
        kubelet.start()
        wait_for(lambda: "re-adopted" in kubelet.logs() or "API mode" in
                 kubelet.logs().split("kubelet stopped")[-1], 30, what="the kubelet back")
        wait_for(lambda: node_ready(api, node), 60, what="node Ready again")
        after = api.read_namespaced_pod("steady", namespace).status.container_statuses[0]
        assert after.container_id == before.container_id and after.restart_count == 0
        assert after.state.running.started_at == before.state.running.started_at

        # a pod deleted while its kubelet is down: its containers go when the kubelet is back
        kubelet.stop()
        api.delete_namespaced_pod("steady", namespace, grace_period_seconds=0)
        kubelet.start()
        wait_for(lambda: not [c for c in runtime.client.containers(all=True) if (
            c.get("Labels") or {}).get("io.provisioner.kubelet.node") == node], 60,
            what="the orphaned containers removed by the kubelet")
        wait_for(lambda: not [p for p in runtime.client.pods()
                              if p["labels"].get("io.provisioner.kubelet.node") == node], 30,
                 what="the orphaned sandbox removed")
    finally:
        kubelet.stop()
        api.delete_node(node)


def test_host_network_pods_use_the_node_address(api, kubelet, namespace):
    port = free_port()
    api.create_namespaced_pod(namespace, pod_manifest("on-host", kubelet.node, [
        {"name": "main", "image": "busybox:latest",
         "command": ["sh", "-c", f"mkdir -p /www && echo host > /www/index.html && "
                                 f"exec httpd -f -p 127.0.0.1:{port} -h /www"]}],
        hostNetwork=True))
    pod = wait_for(lambda: (p := api.read_namespaced_pod("on-host", namespace))
                   .status.phase == "Running" and p, 60, what="host-network pod Running")
    assert pod.status.pod_ip == pod.status.host_ip == "127.0.0.1"
    body = wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html",
                                                   timeout=5).read(), 30, what="httpd on host")
    assert body == b"host\n"
