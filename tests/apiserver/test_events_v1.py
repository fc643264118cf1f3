"""events.k8s.io/v1 Events: the same stored Events as core/v1, converted both ways, through the
official Python client and real kubectl (create, get both ways, patch, list, watch, validation)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def _event(name, ns, **extra):
    now = dt.datetime.now(dt.timezone.utc)
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1", "action": "Scheduling", "reason": "Scheduled", "type": "Normal",
            "note": "placed it", "regarding": {"kind": "Pod", "name": "p", "namespace": ns, "apiVersion": "v1"}}
    body.update(extra)
    return body


def test_events_v1_and_core_share_storage(k8s, kubectl, ns):
    api = client.EventsV1Api(k8s)
    created = api.create_namespaced_event(ns, _event("e1", ns))
    assert created.note == "placed it" and created.regarding.name == "p"
    core = client.CoreV1Api(k8s).read_namespaced_event("e1", ns)
    assert (core.message, core.involved_object.name, core.reporting_component) == \
        ("placed it", "p", "example.com/ctl")
    api.patch_namespaced_event("e1", ns, {"note": "moved it"})
    assert client.CoreV1Api(k8s).read_namespaced_event("e1", ns).message == "moved it"
    listed = json.loads(kubectl("get", "events.v1.events.k8s.io", "-n", ns, "-o", "json").stdout)
    assert listed["apiVersion"] == "v1"  # kubectl wraps -o json lists in a v1 List
    [item] = listed["items"]
    assert item["apiVersion"] == "events.k8s.io/v1" and item["note"] == "moved it" and "message" not in item
    raw = json.loads(kubectl("get", "--raw", f"/apis/events.k8s.io/v1/namespaces/{ns}/events").stdout)
    assert (raw["kind"], raw["apiVersion"]) == ("EventList", "events.k8s.io/v1")


def test_events_v1_watch_is_converted(k8s, ns):
    api = client.EventsV1Api(k8s)
    api.create_namespaced_event(ns, _event("w1", ns))
    stream = watch.Watch().stream(api.list_namespaced_event, ns, timeout_seconds=2)
    seen = [(e["type"], e["object"].note) for e in stream]
    assert ("ADDED", "placed it") in seen


def test_events_v1_validation(k8s, ns):
    body = _event("bad", ns)
    del body["reportingController"]
    with pytest.raises(ApiException) as err:
        client.EventsV1Api(k8s).create_namespaced_event(ns, body)
    doc = json.loads(err.value.body)
    assert err.value.status == 422 and doc["details"]["causes"][0]["field"] == "reportingController"
    assert doc["message"].startswith('Event.events.k8s.io "bad" is invalid: reportingController: Required value')
