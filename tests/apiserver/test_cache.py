"""The watch cache: lists served from memory with kube-apiserver's resourceVersion semantics, the
same bytes as from etcd, never staler than etcd for a consistent read. Through plain HTTPS, real
kubectl and the official Python client; "from the cache" is seen as a user would, in /metrics
(no etcd list for the request)."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "c"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def etcd_lists(raw, resource: str) -> float:
    _, _, body = raw("GET", "/metrics")
    return sum(s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples
               if s.name == "etcd_request_duration_seconds_count" and s.labels == {"operation": "list",
                                                                                     "type": resource})


def get(raw, path: str) -> dict:
    status, _, body = raw("GET", path)
    assert status == 200, body[:300]
    return json.loads(body)


def test_a_consistent_list_sees_every_write_before_it_and_comes_from_memory(raw, ns):
    coll = f"/api/v1/namespaces/{ns}/pods"
    get(raw, coll)  # the cache of pods is filled by now
    before = etcd_lists(raw, "pods")
    for i in range(5):
        status, _, _ = raw("POST", coll, pod(f"p{i}"))
        assert status == 201
        names = [p["metadata"]["name"] for p in get(raw, coll)["items"]]
        assert names == [f"p{j}" for j in range(i + 1)]
    status, _, _ = raw("DELETE", f"{coll}/p0", {"gracePeriodSeconds": 0})
    assert status == 200
    assert "p0" not in [p["metadata"]["name"] for p in get(raw, coll)["items"]]
    assert etcd_lists(raw, "pods") == before


def test_other_resources_writes_do_not_make_a_consistent_list_wait_or_stale(raw, ns):
    get(raw, f"/api/v1/namespaces/{ns}/services")
    before = etcd_lists(raw, "services")
    for i in range(3):
        status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bump{i}"}})
        bumped = int(json.loads(body)["metadata"]["resourceVersion"])
        listed = get(raw, f"/api/v1/namespaces/{ns}/services")
        assert int(listed["metadata"]["resourceVersion"]) >= bumped  # caught up by a progress notification
    assert etcd_lists(raw, "services") == before  # from memory, not etcd after a timed-out wait


def test_the_cache_answers_with_the_bytes_etcd_would(raw, ns):
    coll = f"/api/v1/namespaces/{ns}/secrets"
    for i in range(3):
        raw("POST", coll, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}", "labels": {"n": str(i)}},
                           "stringData": {"k": f"v-ü-{i}"}})
    status, _, cached = raw("GET", coll)
    rv = json.loads(cached)["metadata"]["resourceVersion"]
    status, _, exact = raw("GET", f"{coll}?resourceVersion={rv}&resourceVersionMatch=Exact")  # etcd's answer
    assert status == 200 and cached == exact


def test_resource_version_semantics(raw, ns):
    coll = f"/api/v1/namespaces/{ns}/configmaps"
    status, _, body = raw("POST", coll, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}})
    rv = int(json.loads(body)["metadata"]["resourceVersion"])
    assert "one" in [c["metadata"]["name"] for c in get(raw, f"{coll}?resourceVersion={rv}")["items"]]
    assert "one" in [c["metadata"]["name"] for c in get(raw, f"{coll}?resourceVersion={rv}&"
                                                                "resourceVersionMatch=NotOlderThan")["items"]]
    assert int(get(raw, f"{coll}?resourceVersion=0")["metadata"]["resourceVersion"]) > 0
    assert get(raw, f"{coll}/one?resourceVersion=0")["metadata"]["name"] == "one"
    status, _, body = raw("GET", f"{coll}/absent?resourceVersion=0")
    assert status == 404 and json.loads(body)["message"] == 'configmaps "absent" not found'
    status, _, body = raw("GET", f"{coll}?resourceVersion={rv + 1_000_000}")
    assert status == 504
    assert json.loads(body)["message"].startswith(f"Too large resource version: {rv + 1_000_000}, current: ")


def test_pages_from_the_cache_continue_from_etcd_and_selectors_filter(raw, ns):
    coll = f"/api/v1/namespaces/{ns}/pods"
    for i in range(7):
        raw("POST", coll, pod(f"q{i}", tier="even" if i % 2 == 0 else "odd"))
    names, token, pages = [], "", 0
    while True:
        page = get(raw, f"{coll}?limit=3&labelSelector=tier%3Deven" + (f"&continue={token}" if token else ""))
        names += [p["metadata"]["name"] for p in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == ["q0", "q2", "q4", "q6"] and pages == 2
    only = get(raw, f"{coll}?fieldSelector=metadata.name%3Dq3")["items"]
    assert [p["metadata"]["name"] for p in only] == ["q3"]


def test_kubectl_tables_and_the_python_client_list_through_the_cache(kubectl, k8s, ns):
    from kubernetes import client

    assert client.CoreV1Api(k8s).list_namespaced_pod(ns).items == []
    kubectl("create", "configmap", "shown", "-n", ns)
    out = kubectl("get", "configmaps", "-n", ns).stdout
    assert out.splitlines()[0].split() == ["NAME", "DATA", "AGE"] and "shown" in out
    listed = client.CoreV1Api(k8s).list_namespaced_config_map(ns)
    assert "shown" in [c.metadata.name for c in listed.items]


def test_admission_reads_come_from_the_cache_and_see_this_servers_own_writes(raw, ns):
    coll = f"/api/v1/namespaces/{ns}/pods"
    for i in range(3):
        status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/limitranges", {
            "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": f"lr{i}"},
            "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": f"{100 + i}m"}}]}})
        assert status == 201, body[:300]
        # created a moment ago: the pod's admission must already see it
        status, _, body = raw("POST", coll, pod(f"defaulted{i}"))
        assert status == 201, body[:300]
        requests = json.loads(body)["spec"]["containers"][0]["resources"]["requests"]
        assert requests["cpu"] in {f"{100 + j}m" for j in range(i + 1)}
        raw("DELETE", f"/api/v1/namespaces/{ns}/limitranges/lr{i}")
    before = etcd_lists(raw, "limitranges")
    assert raw("POST", coll, pod("cached-admission"))[0] == 201
    assert etcd_lists(raw, "limitranges") == before


def test_without_the_watch_cache_every_list_reads_etcd(cluster, raw, ns):
    from tests.conftest import free_port

    from .conftest import another_apiserver

    port = free_port()
    first = raw.port
    with another_apiserver(cluster, port, cluster.apiserver_command(port) + ["--watch-cache=false"]):
        try:
            raw.port = port
            before = etcd_lists(raw, "pods")
            for _ in range(2):
                assert get(raw, f"/api/v1/namespaces/{ns}/pods")["items"] == []
            assert etcd_lists(raw, "pods") == before + 2
        finally:
            raw.port = first
