"""Validation and defaulting: Kubernetes' field paths and messages, and decode strictness."""

import json

import pytest

from provisioner.components.apiserver import decode, validation
from provisioner.components.apiserver.errors import ApiError


@pytest.mark.parametrize("kind,name,field,fragment", [
    ("ConfigMap", "Bad_Name", "metadata.name", "a lowercase RFC 1123 subdomain"),
    ("Namespace", "a.b", "metadata.name", "a lowercase RFC 1123 label"),
    ("Service", "x" * 64, "metadata.name", "must be no more than 63 characters"),
    ("ConfigMap", "", "metadata.name", "Required value: name or generateName is required"),
])
def test_names_are_dns1123(kind, name, field, fragment):
    causes = validation.check_name(kind, name)
    assert causes and causes[0][0] == field and fragment in causes[0][1]


@pytest.mark.parametrize("kind,name", [("ConfigMap", "a.b-c"), ("Namespace", "team-1"),
                                        ("ClusterRole", "system:node")])
def test_good_names_pass(kind, name):
    assert validation.check_name(kind, name) == []


def test_pod_defaults():
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}, {"name": "d", "image": "nginx:1.27"}]}}
    validation.default("Pod", pod)
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == \
        ("Always", "ClusterFirst", 30)
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["Always", "IfNotPresent"]


def test_pod_defaults_keep_given_values():
    pod = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never"}]}}
    validation.default("Pod", pod)
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_invalid_pod_lists_every_cause_with_its_field():
    pod = {"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes",
                                               "containers": [{"name": "Web"}]}}
    fields = {f for f, _ in validation.validate("Pod", pod)}
    assert fields == {"spec.containers[0].image", "spec.containers[0].name", "spec.restartPolicy"}


def test_deployment_selector_must_match_template():
    d = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
                                             "template": {"metadata": {"labels": {"app": "b"}},
                                                          "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    causes = validation.validate("Deployment", d)
    assert ("spec.template.metadata.labels",
            'Invalid value: map[string]string{"app":"b"}: `selector` does not match template `labels`') in causes


def test_invalid_status_object_shape():
    err = ApiError.invalid("Pod", "p", [("spec.containers[0].image", "Required value")])
    body = err.status()
    assert body["code"] == 422 and body["reason"] == "Invalid"
    assert body["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired", "message": "Required value",
                                          "field": "spec.containers[0].image"}]


def test_strict_decoding_rejects_unknown_fields_with_kubernetes_message():
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1},
                       "datta": {}}).encode()
    with pytest.raises(ApiError) as exc:
        decode.decode(body, "ConfigMap", "Strict")
    assert exc.value.message == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict '
                                 'decoding error: unknown field "metadata.bogus", unknown field "datta"')


def test_warn_mode_prunes_and_warns():
    body = json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}, "datta": {}}).encode()
    obj, warnings = decode.decode(body, "ConfigMap", None)
    assert "datta" not in obj and warnings == ['unknown field "datta"']


@pytest.mark.parametrize("body", [b"", b"{", b"[1,2]", b'"x"', b'{"a":1,"a":2}',
                                  b'{"kind":"Pod","spec":{"containers":"nope"}}',
                                  b'{"kind":"Pod","metadata":{"labels":{"a":1}}}'])
def test_malformed_bodies_are_400(body):
    with pytest.raises(ApiError) as exc:
        decode.decode(body, "Pod", "Strict")
    assert exc.value.code == 400


def test_wrong_type_message_names_the_go_field():
    with pytest.raises(ApiError) as exc:
        decode.decode(b'{"kind":"Deployment","spec":{"replicas":"two"}}', "Deployment", "Strict")
    assert exc.value.message.endswith("cannot unmarshal string into Go struct field "
                                      "DeploymentSpec.spec.replicas of type int64")
