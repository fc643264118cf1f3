"""Compatibility: the official `kubernetes` Python client (list, watch, create, patch, replace,
delete), plus resourceVersion rules of lists and watches."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def cm(name, **data):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"app": name}), data=data)


def test_crud_round_trip(k8s, ns):
    core = client.CoreV1Api(k8s)
    created = core.create_namespaced_config_map(ns, cm("a", x="1"))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    got = core.read_namespaced_config_map("a", ns)
    assert got.data == {"x": "1"}
    got.data["y"] = "2"
    replaced = core.replace_namespaced_config_map("a", ns, got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    patched = core.patch_namespaced_config_map("a", ns, {"data": {"z": "3"}})
    assert patched.data == {"x": "1", "y": "2", "z": "3"}
    core.delete_namespaced_config_map("a", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("a", ns)
    assert exc.value.status == 404 and json.loads(exc.value.body)["reason"] == "NotFound"


def test_stale_resource_version_is_409_conflict(k8s, ns):
    core = client.CoreV1Api(k8s)
    old = core.create_namespaced_config_map(ns, cm("a", x="1"))
    core.patch_namespaced_config_map("a", ns, {"data": {"x": "2"}})
    old.data = {"x": "3"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("a", ns, old)
    body = json.loads(exc.value.body)
    assert exc.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]


def test_noop_update_keeps_resource_version(k8s, ns):
    core = client.CoreV1Api(k8s)
    a = core.create_namespaced_config_map(ns, cm("a", x="1"))
    b = core.patch_namespaced_config_map("a", ns, {"data": {"x": "1"}})
    assert a.metadata.resource_version == b.metadata.resource_version


def test_generation_bumps_on_spec_not_status(k8s, ns):
    apps = client.AppsV1Api(k8s)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    d = apps.create_namespaced_deployment(ns, body)
    assert d.metadata.generation == 1 and d.status is None or d.status.replicas is None
    d = apps.patch_namespaced_deployment_status("d", ns, {"status": {"replicas": 5}, "spec": {"replicas": 9}})
    assert d.metadata.generation == 1 and d.status.replicas == 5 and d.spec.replicas == 1
    d = apps.patch_namespaced_deployment("d", ns, {"spec": {"replicas": 2}, "status": {"replicas": 0}})
    assert d.metadata.generation == 2 and d.status.replicas == 5 and d.spec.replicas == 2
    scale = apps.read_namespaced_deployment_scale("d", ns)
    assert scale.spec.replicas == 2 and scale.status.selector == "a=b"
    apps.patch_namespaced_deployment_scale("d", ns, {"spec": {"replicas": 7}})
    assert apps.read_namespaced_deployment("d", ns).spec.replicas == 7


def test_finalizers_hold_deletion(k8s, ns):
    core = client.CoreV1Api(k8s)
    body = cm("held")
    body.metadata.finalizers = ["example.com/hold"]
    core.create_namespaced_config_map(ns, body)
    core.delete_namespaced_config_map("held", ns)
    obj = core.read_namespaced_config_map("held", ns)
    assert obj.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": ["example.com/hold", "more"]}})
    assert exc.value.status == 422
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("held", ns)
    assert exc.value.status == 404


def test_owner_references_are_stored(k8s, ns):
    core = client.CoreV1Api(k8s)
    owner = core.create_namespaced_config_map(ns, cm("owner"))
    child = cm("child")
    child.metadata.owner_references = [client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, controller=True)]
    core.create_namespaced_config_map(ns, child)
    refs = core.read_namespaced_config_map("child", ns).metadata.owner_references
    assert [(r.kind, r.name, r.uid) for r in refs] == [("ConfigMap", "owner", owner.metadata.uid)]


def test_list_limit_continue_and_selectors(k8s, ns):
    core = client.CoreV1Api(k8s)
    for i in range(7):
        body = cm(f"c{i}")
        body.metadata.labels = {"parity": "even" if i % 2 == 0 else "odd"}
        core.create_namespaced_config_map(ns, body)
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token, label_selector="parity=even")
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == ["c0", "c2", "c4", "c6"] and pages == 2
    by_name = core.list_namespaced_config_map(ns, field_selector="metadata.name=c3")
    assert [c.metadata.name for c in by_name.items] == ["c3"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(ns, label_selector="parity in (even")
    assert exc.value.status == 400
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(ns, _continue="garbage!")
    assert exc.value.status == 400


def test_watch_from_resource_version_and_selector_transitions(k8s, ns):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    events = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv,
                           label_selector="watched=yes", timeout_seconds=60):
            events.append((ev["type"], ev["object"].metadata.name))
            if len(events) == 3:
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.5)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w", labels={"watched": "no"})))
    core.patch_namespaced_config_map("w", ns, {"metadata": {"labels": {"watched": "yes"}}})
    core.patch_namespaced_config_map("w", ns, {"data": {"a": "b"}})
    core.patch_namespaced_config_map("w", ns, {"metadata": {"labels": {"watched": "no"}}})
    t.join(60)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_without_resource_version_starts_with_current_state(k8s, ns):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(ns, cm("pre"))
    w = watch.Watch()
    first = next(iter(w.stream(core.list_namespaced_config_map, ns, timeout_seconds=2)))
    w.stop()
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "pre")


def test_watch_rejects_send_initial_events(raw, ns):
    """client-go falls back to list+watch on this rejection instead of waiting for a bookmark."""
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true&sendInitialEvents=true"
                          "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
    body = json.loads(body)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "sendInitialEvents"
