"""Status bodies byte for byte as kube-apiserver writes them: Go's field order (kind, apiVersion,
metadata, status, message, reason, details, code) and omitempty (no `group` for core resources)."""

from __future__ import annotations

import json


def test_not_found_of_a_core_resource(raw, ns):
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps/nope")
    assert status == 404
    assert body.rstrip(b"\n") == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                                  b'"message":"configmaps \\"nope\\" not found","reason":"NotFound",'
                                  b'"details":{"name":"nope","kind":"configmaps"},"code":404}')


def test_not_found_of_a_grouped_resource(raw, ns):
    _, _, body = raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/nope")
    assert body.rstrip(b"\n") == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                                  b'"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
                                  b'"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}')


def test_invalid_keeps_cause_field_order(raw, ns):
    _, _, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                      "metadata": {"name": "Bad_Name"}})
    doc = json.loads(body)
    assert list(doc) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert list(doc["details"]) == ["name", "kind", "causes"]
    assert list(doc["details"]["causes"][0]) == ["reason", "message", "field"]
