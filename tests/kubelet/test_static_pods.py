"""Static pods from staticPodPath: run with no API server at all (standalone mode, how a
control-plane host starts its API server), and shown in the API as mirror pods."""

from __future__ import annotations

import json

import yaml

from .conftest import KubeletProcess, wait_for

MANIFEST = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "static-web", "namespace": "kube-system",
                         "labels": {"tier": "control-plane"}},
            "spec": {"containers": [{"name": "main", "image": "busybox:latest",
                                     "command": ["sleep", "3600"]}],
                     "terminationGracePeriodSeconds": 1}}


def containers_of(runtime, pod_name: str) -> list[dict]:
    return [c for c in runtime.client.containers(all=True)
            if (c.get("Labels") or {}).get("io.kubernetes.pod.name") == pod_name]


def test_standalone_kubelet_runs_static_pods_without_an_api_server(runtime):
    kubelet = KubeletProcess(runtime.base / "standalone", runtime, None, node="standalone-node")
    (kubelet.manifests / "web.yaml").write_text(yaml.safe_dump(MANIFEST))
    (kubelet.manifests / "broken.yaml").write_text("kind: Pod\nmetadata: {}\n")
    kubelet.start()
    try:
        running = wait_for(lambda: [c for c in containers_of(runtime, "static-web-standalone-node")
                                    if c["State"] == "running"], 60,
                           what=f"the static pod running ({kubelet.log})")
        assert running[0]["Labels"]["io.kubernetes.container.name"] == "main"
        assert "the pod has no metadata.name" in kubelet.logs()     # a bad file is named, skipped
        assert kubelet.process.poll() is None

        (kubelet.manifests / "web.yaml").unlink()
        wait_for(lambda: not containers_of(runtime, "static-web-standalone-node"), 60,
                 what="the static pod's containers removed")
        wait_for(lambda: not [p for p in runtime.client.pods() if p["labels"].get(
            "io.kubernetes.pod.name") == "static-web-standalone-node"], 30,
            what="the sandbox removed")
    finally:
        kubelet.stop()


def test_static_pod_gets_a_mirror_pod_owned_by_the_node(api, kubelet):
    path = kubelet.manifests / "mirrored.json"
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["metadata"]["name"] = "mirrored"
    path.write_text(json.dumps(manifest))
    name = f"mirrored-{kubelet.node}"
    try:
        mirror = wait_for(lambda: (p := api.read_namespaced_pod(name, "kube-system"))
                          .status.phase == "Running" and p, 60, what="the mirror pod Running")
        annotations = mirror.metadata.annotations
        assert annotations["kubernetes.io/config.source"] == "file"
        assert annotations["kubernetes.io/config.mirror"] == annotations[
            "kubernetes.io/config.hash"]
        [owner] = mirror.metadata.owner_references
        assert (owner.kind, owner.name, owner.controller) == ("Node", kubelet.node, True)
        assert mirror.metadata.labels == {"tier": "control-plane"}
        assert mirror.status.container_statuses[0].ready

        # deleting the mirror pod does not stop the static pod: the kubelet makes it again
        api.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)
        wait_for(lambda: api.read_namespaced_pod(name, "kube-system").metadata.uid !=
                 mirror.metadata.uid, 60, what="the mirror pod created again")
        assert containers_of(kubelet.runtime, name)[0]["State"] == "running"
    finally:
        path.unlink()
    wait_for(lambda: not [p for p in api.list_namespaced_pod("kube-system").items
                          if p.metadata.name == name], 60, what="the mirror pod removed")
    wait_for(lambda: not containers_of(kubelet.runtime, name), 60, what="containers removed")
