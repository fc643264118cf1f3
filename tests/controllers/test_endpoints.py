"""Endpoints and EndpointSlices for Services: ready, not ready, terminating, named ports,
publishNotReadyAddresses; pod status is set through the API as a kubelet would."""

from __future__ import annotations

import json
import time

from .conftest import eventually


def make_pod(kubectl, core, ns: str, name: str, ip: str, ready: bool, port_name: str = "http", port: int = 8080,
             finalizers=None) -> None:
    meta = {"name": name, "labels": {"app": "api"}}
    if finalizers:
        meta["finalizers"] = finalizers
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "nginx",
                                 "ports": [{"name": port_name, "containerPort": port}]}]}}))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}})


def service(kubectl, ns: str, publish_not_ready: bool = False) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "labels": {"tier": "be"}},
        "spec": {"selector": {"app": "api"}, "publishNotReadyAddresses": publish_not_ready,
                 "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}))


def slices(kubectl, ns: str) -> list[dict]:
    return kubectl.json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=api")["items"]


def test_ready_not_ready_and_terminating_endpoints(kubectl, core, ns):
    service(kubectl, ns)
    make_pod(kubectl, core, ns, "a", "10.244.1.1", ready=True)
    make_pod(kubectl, core, ns, "b", "10.244.1.2", ready=False, port=9090)
    make_pod(kubectl, core, ns, "c", "10.244.1.3", ready=True, finalizers=["example.com/hold"])
    kubectl("delete", "pod", "c", "-n", ns, "--wait=false")

    def endpoints():
        ep = kubectl.json("get", "endpoints", "api", "-n", ns) if kubectl(
            "get", "endpoints", "api", "-n", ns, check=False).returncode == 0 else {}
        subsets = ep.get("subsets") or []
        ready = sorted(a["ip"] for s in subsets for a in s.get("addresses", []))
        not_ready = sorted(a["ip"] for s in subsets for a in s.get("notReadyAddresses", []))
        return (ep, subsets) if (ready, not_ready) == (["10.244.1.1"], ["10.244.1.2"]) else None
    ep, subsets = eventually(endpoints, what="a ready, b not ready, c (terminating) absent")
    ports = {s.get("addresses", s.get("notReadyAddresses"))[0]["ip"]: s["ports"] for s in subsets}
    assert ports["10.244.1.1"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert ports["10.244.1.2"] == [{"name": "web", "port": 9090, "protocol": "TCP"}]  # named port per pod
    assert ep["metadata"]["labels"]["tier"] == "be"
    assert subsets[0].get("addresses", subsets[0].get("notReadyAddresses"))[0]["targetRef"]["kind"] == "Pod"

    def slice_view():
        eps = {e["addresses"][0]: (e["conditions"], s["ports"][0]["port"])
               for s in slices(kubectl, ns) for e in s.get("endpoints") or []}
        return eps if len(eps) == 3 else None
    eps = eventually(slice_view, what="3 endpoints in slices")
    assert eps["10.244.1.1"] == ({"ready": True, "serving": True, "terminating": False}, 8080)
    assert eps["10.244.1.2"] == ({"ready": False, "serving": False, "terminating": False}, 9090)
    assert eps["10.244.1.3"] == ({"ready": False, "serving": True, "terminating": True}, 8080)
    s = slices(kubectl, ns)[0]
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    kubectl("patch", "pod", "c", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: sorted(e["addresses"][0] for s in slices(kubectl, ns) for e in s.get("endpoints") or [])
               == ["10.244.1.1", "10.244.1.2"], what="terminated pod leaves the slices")


def test_publish_not_ready_addresses(kubectl, core, ns):
    service(kubectl, ns, publish_not_ready=True)
    make_pod(kubectl, core, ns, "b", "10.244.2.2", ready=False)

    def published():
        if kubectl("get", "endpoints", "api", "-n", ns, check=False).returncode:
            return None
        subsets = kubectl.json("get", "endpoints", "api", "-n", ns).get("subsets") or []
        return [a["ip"] for s in subsets for a in s.get("addresses", [])] == ["10.244.2.2"]
    eventually(published, what="not-ready pod published as an address")
    eventually(lambda: [e["conditions"]["ready"] for s in slices(kubectl, ns) for e in s.get("endpoints") or []]
               == [True], what="slice endpoint ready")


def test_service_deleted_takes_its_endpoints(kubectl, core, ns):
    service(kubectl, ns)
    make_pod(kubectl, core, ns, "a", "10.244.3.1", ready=True)
    eventually(lambda: slices(kubectl, ns) and kubectl("get", "endpoints", "api", "-n", ns, check=False).returncode == 0,
               what="endpoints exist")
    kubectl("delete", "service", "api", "-n", ns)
    eventually(lambda: not slices(kubectl, ns) and kubectl("get", "endpoints", "api", "-n", ns,
                                                           check=False).returncode != 0, what="endpoints gone")


def test_hand_written_endpoints_are_mirrored_into_slices(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "db", "port": 5432}]}}))
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                     "ports": [{"name": "db", "port": 5432, "protocol": "TCP"}]}]}))

    def mirrored():
        items = kubectl.json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=ext")["items"]
        return items[0] if items else None
    s = eventually(mirrored, what="a mirrored slice")
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in s["endpoints"]} == \
        {"192.0.2.10": True, "192.0.2.11": False}
    assert s["ports"] == [{"name": "db", "port": 5432, "protocol": "TCP"}]
    kubectl("delete", "endpoints", "ext", "-n", ns)
    eventually(lambda: mirrored() is None, what="the mirror removed with its Endpoints")
