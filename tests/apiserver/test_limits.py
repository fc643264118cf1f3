"""Size limits as kube-apiserver sets them: bodies read whole up to 3 MiB (413 above), ConfigMap and
Secret data at most 1 MiB, annotations at most 256 KiB in all, label values at most 63 characters;
through real kubectl, the official Python client and plain HTTPS."""

from __future__ import annotations

import base64
import json

import pytest


def test_a_2_mb_configmap_is_refused_as_too_long_not_as_bad_json(kubectl, ns, tmp_path):
    big = tmp_path / "blob.txt"
    big.write_text("x" * 2_000_000)
    proc = kubectl("create", "configmap", "big", "-n", ns, f"--from-file={big}", check=False)
    assert proc.returncode != 0
    assert 'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes' in proc.stderr
    assert "not valid JSON" not in proc.stderr


def test_a_configmap_just_under_1_mib_is_stored_whole(raw, ns):
    value = "y" * 1_000_000
    status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "almost"}, "data": {"v": value}})
    assert status == 201, body[:300]
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps/almost")
    assert json.loads(body)["data"]["v"] == value


def test_a_body_over_3_mib_is_refused_with_413(raw, ns):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
                       "data": {"v": "z" * (3 * 1024 * 1024)}})
    status, _, out = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    assert status == 413
    status_obj = json.loads(out)
    assert (status_obj["reason"], status_obj["message"]) == ("RequestEntityTooLarge",
                                                            "Request entity too large: limit is 3145728")


def test_a_secret_over_1_mib_is_refused_through_the_python_client(k8s, ns):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(k8s)
    data = {"blob": base64.b64encode(b"\0" * (1024 * 1024 + 1)).decode()}
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="fat"), data=data))
    assert exc.value.status == 422
    assert json.loads(exc.value.body)["message"] == \
        'Secret "fat" is invalid: data: Too long: may not be more than 1048576 bytes'
    api.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="fits"),
                                                     data={"blob": base64.b64encode(b"\0" * 1024 * 1024).decode()}))


def test_annotations_over_256_kib_in_all_are_refused(kubectl, ns, tmp_path):
    kubectl("create", "configmap", "annotated", "-n", ns)
    for name, size in (("a", 200_000), ("b", 100_000)):
        (tmp_path / name).write_text(json.dumps({"metadata": {"annotations": {name: "v" * size}}}))
    kubectl("patch", "configmap", "annotated", "-n", ns, "--type=merge", f"--patch-file={tmp_path / 'a'}")
    proc = kubectl("patch", "configmap", "annotated", "-n", ns, "--type=merge", f"--patch-file={tmp_path / 'b'}",
                   check=False)
    assert proc.returncode != 0
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in proc.stderr
    assert "b" not in kubectl.json("get", "configmap", "annotated", "-n", ns)["metadata"]["annotations"]


def test_a_label_value_over_63_characters_is_refused(raw, ns):
    # kubectl refuses it before sending; the server must too, for every other client
    status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "labelled", "labels": {"tier": "a" * 64}}})
    assert status == 422
    assert [c["field"] for c in json.loads(body)["details"]["causes"]] == ["metadata.labels"]
