"""Node-pressure eviction: a kubelet whose memory.available threshold is crossed reports
MemoryPressure and evicts a BestEffort pod (phase Failed, reason Evicted), as kubelet does."""

from __future__ import annotations

from .conftest import KubeletProcess, pod_manifest, wait_for


def test_memory_pressure_evicts_a_best_effort_pod(api, cluster, runtime, namespace):
    node = "pressured-node"
    # a threshold of all the memory: the signal is always crossed
    kubelet = KubeletProcess(runtime.base / "pressured", runtime, cluster, node=node,
                             extra_config='evictionHard:\n  memory.available: "100%"\n')
    kubelet.start()
    try:
        condition = wait_for(lambda: [c for c in api.read_node(node).status.conditions
                                      if c.type == "MemoryPressure" and c.status == "True"],
                             60, what=f"MemoryPressure ({kubelet.log})")[0]
        assert condition.reason == "KubeletHasInsufficientMemory"
        api.create_namespaced_pod(namespace, pod_manifest("hungry", node, [
            {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"]}]))
        pod = wait_for(lambda: (p := api.read_namespaced_pod("hungry", namespace))
                       .status.phase == "Failed" and p, 90, what="the pod evicted")
        assert pod.status.reason == "Evicted"
        assert pod.status.message.startswith("The node was low on resource: memory.")
        conditions = {c.type: c for c in pod.status.conditions}
        assert conditions["DisruptionTarget"].reason == "TerminationByKubelet"
        wait_for(lambda: not [c for c in runtime.client.containers(all=True) if (
            c.get("Labels") or {}).get("io.kubernetes.pod.name") == "hungry"], 30,
            what="the evicted pod's containers removed")
        events = {e.reason for e in api.list_namespaced_event(namespace).items}
        assert "Evicted" in events
    finally:
        kubelet.stop()
        api.delete_node(node)
