"""CustomResourceDefinitions end to end with real kubectl and the official Python client: served
at once (discovery, explain), schema validation with kube-apiserver's messages, pruning and
defaults, status and scale subresources, printer columns, deletion of the CRD removing its objects."""

from __future__ import annotations

import json
import os

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import eventually
from .test_kubectl import lines


def crd_manifest(group: str, plural: str = "widgets") -> dict:
    schema = {"type": "object", "description": "A widget.", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "string", "enum": ["small", "large"], "description": "How big."},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
            "color": {"type": "string", "default": "blue"}}},
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "selector": {"type": "string"},
            "conditions": {"type": "array", "items": {"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True}}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema},
                                   "subresources": {"status": {}, "scale": {
                                       "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                       "labelSelectorPath": ".status.selector"}},
                                   "additionalPrinterColumns": [
                                       {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                                       {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                                       {"name": "Ready", "type": "string",
                                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                                       {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}


@pytest.fixture(scope="module")
def widgets(kubectl):
    """A CRD in a group of its own."""
    group = f"t{os.urandom(3).hex()}.example.com"
    kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group)))
    yield group
    kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def _widget(group, name, **spec):
    return json.dumps({"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})


def test_crd_is_established_and_discovered(kubectl, widgets):
    crd = kubectl.json("get", "crd", f"widgets.{widgets}")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList" and crd["status"]["storedVersions"] == ["v1"]
    rows = lines(kubectl("api-resources", f"--api-group={widgets}").stdout)
    assert rows[1] == ["widgets", "wd", f"{widgets}/v1", "true", "Widget"]
    explain = kubectl("explain", f"widgets.{widgets}.spec").stdout
    assert "size\t<string> -required-" in explain and "How big." in explain


def test_apply_get_describe_with_defaults_and_columns(kubectl, ns, widgets):
    kubectl("apply", "-n", ns, "-f", "-", input=_widget(widgets, "w1", size="small"))
    got = kubectl.json("get", f"widgets.{widgets}", "w1", "-n", ns)
    assert got["spec"] == {"size": "small", "replicas": 1, "color": "blue"}
    rows = lines(kubectl("get", f"wd.{widgets}", "-n", ns).stdout)
    assert rows[0] == ["NAME", "SIZE", "REPLICAS", "READY", "AGE"]
    assert rows[1][:4] == ["w1", "small", "1", "<none>"]
    assert "Size:      small" in kubectl("describe", f"widget.{widgets}", "w1", "-n", ns).stdout


def test_schema_validation_and_pruning(kubectl, ns, widgets):
    out = kubectl("apply", "-n", ns, "-f", "-", check=False, input=_widget(widgets, "bad", size="huge", replicas=20))
    assert 'The Widget "bad" is invalid:' in out.stderr
    assert "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10" in out.stderr
    assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in out.stderr
    out = kubectl("apply", "-n", ns, "-f", "-", check=False, input=_widget(widgets, "typed", size=3))
    assert 'spec.size: Invalid value: "integer": spec.size in body must be of type string: "integer"' in out.stderr
    out = kubectl("apply", "-n", ns, "-f", "-", check=False, input=_widget(widgets, "extra", size="small", shape="x"))
    assert 'strict decoding error: unknown field "spec.shape"' in out.stderr
    kubectl("apply", "-n", ns, "--validate=false", "-f", "-", input=_widget(widgets, "pruned", size="small", shape="x"))
    assert "shape" not in kubectl.json("get", f"widgets.{widgets}", "pruned", "-n", ns)["spec"]
    out = kubectl("apply", "-n", ns, "-f", "-", check=False, input=json.dumps(
        {"apiVersion": f"{widgets}/v1", "kind": "Widget", "metadata": {"name": "nospec"}, "spec": {}}))
    assert "spec.size: Required value" in out.stderr


def test_status_and_scale_subresources(kubectl, ns, widgets):
    kubectl("apply", "-n", ns, "-f", "-", input=_widget(widgets, "w", size="large"))
    kubectl("scale", f"widget.{widgets}", "w", "-n", ns, "--replicas=4")
    assert kubectl.json("get", f"widget.{widgets}", "w", "-n", ns)["spec"]["replicas"] == 4
    kubectl("patch", f"widget.{widgets}", "w", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"replicas": 4, "selector": "app=w", "conditions": [{"type": "Ready", "status": "True"}]}}))
    assert lines(kubectl("get", f"widget.{widgets}", "w", "-n", ns).stdout)[1][:4] == ["w", "large", "4", "True"]
    scale = json.loads(kubectl("get", "--raw", f"/apis/{widgets}/v1/namespaces/{ns}/widgets/w/scale").stdout)
    assert (scale["spec"], scale["status"]) == ({"replicas": 4}, {"replicas": 4, "selector": "app=w"})
    # spec writes keep the status, status writes keep the spec
    kubectl("patch", f"widget.{widgets}", "w", "-n", ns, "--type=merge", "-p", '{"status":{"replicas":9}}')
    assert kubectl.json("get", f"widget.{widgets}", "w", "-n", ns)["status"]["replicas"] == 4


def test_python_client_custom_objects(k8s, ns, widgets):
    api = client.CustomObjectsApi(k8s)
    body = {"apiVersion": f"{widgets}/v1", "kind": "Widget", "metadata": {"name": "py"}, "spec": {"size": "small"}}
    created = api.create_namespaced_custom_object(widgets, "v1", ns, "widgets", body)
    assert created["spec"]["replicas"] == 1
    listed = api.list_namespaced_custom_object(widgets, "v1", ns, "widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["py"]
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(widgets, "v1", ns, "widgets", dict(body, spec={"size": 1}))
    assert err.value.status == 422
    api.delete_namespaced_custom_object(widgets, "v1", ns, "widgets", "py")


def test_deleting_the_crd_removes_its_objects(kubectl, ns):
    group = f"d{os.urandom(3).hex()}.example.com"
    kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group, "gadgets")))
    kubectl("apply", "-n", ns, "-f", "-", input=_widget(group, "doomed", size="small"))
    kubectl("delete", "crd", f"gadgets.{group}", "--timeout=30s")
    assert eventually(lambda: kubectl("get", "crd", f"gadgets.{group}", check=False).returncode != 0)
    out = kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/{ns}/gadgets", check=False)
    assert out.returncode != 0 and "NotFound" in out.stderr
    kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group, "gadgets")))  # recreated: old objects gone
    assert json.loads(kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/{ns}/gadgets").stdout)["items"] == []
    kubectl("delete", "crd", f"gadgets.{group}")


def test_bad_definitions_are_refused(kubectl):
    bad = crd_manifest("nodots")
    bad["metadata"]["name"] = "widgets.other.example.com"
    out = kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert 'metadata.name: Invalid value: "widgets.other.example.com": must be spec.names.plural+"."+spec.group' \
        in out.stderr
    assert 'spec.group: Invalid value: "nodots": should be a domain with at least one dot' in out.stderr
    unflagged = crd_manifest("flags.example.com", "flagless")
    del unflagged["spec"]["versions"][0]["served"]
    out = kubectl("apply", "-f", "-", input=json.dumps(unflagged), check=False)
    assert "spec.versions[0].served: Required value" in out.stderr


def test_two_groups_serve_the_same_plural_with_objects_of_their_own(kubectl, ns, widgets):
    other = f"o{os.urandom(3).hex()}.example.com"
    kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(other)))
    try:
        eventually(lambda: kubectl("get", "--raw", f"/apis/{other}/v1/namespaces/{ns}/widgets",
                                   check=False).returncode == 0)
        kubectl("apply", "-n", ns, "-f", "-", input=_widget(widgets, "mine", size="small"))
        kubectl("apply", "-n", ns, "-f", "-", input=_widget(other, "theirs", size="large"))
        names = {g: [o["metadata"]["name"] for o in json.loads(kubectl(
            "get", "--raw", f"/apis/{g}/v1/namespaces/{ns}/widgets").stdout)["items"]] for g in (widgets, other)}
        assert names == {widgets: ["mine"], other: ["theirs"]}
        assert kubectl.json("get", f"widgets.v1.{other}", "theirs", "-n", ns)["spec"]["size"] == "large"
    finally:
        kubectl("delete", "crd", f"widgets.{other}", "--timeout=30s")
    # Deleting the other group's definition took its objects only.
    assert kubectl.json("get", f"widgets.v1.{widgets}", "mine", "-n", ns)["spec"]["size"] == "small"


def test_a_plural_served_built_in_by_the_same_group_is_refused(kubectl):
    clash = crd_manifest("networking.k8s.io", "ingresses")
    out = kubectl("apply", "-f", "-", input=json.dumps(clash), check=False)
    assert out.returncode != 0
    assert 'spec.names.plural: Invalid value: "ingresses": already served by the built-in API of ' \
        'group "networking.k8s.io"' in out.stderr


def test_every_served_version_reads_the_same_objects(kubectl, ns):
    group = f"v{os.urandom(3).hex()}.example.com"
    manifest = crd_manifest(group, "gizmos")
    v1 = manifest["spec"]["versions"][0]
    manifest["spec"]["versions"].append(dict(v1, name="v2", storage=False))
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    kubectl("apply", "-n", ns, "-f", "-", input=_widget(group, "g", size="small"))
    via_v2 = json.loads(kubectl("get", "--raw", f"/apis/{group}/v2/namespaces/{ns}/gizmos/g").stdout)
    assert via_v2["apiVersion"] == f"{group}/v2" and via_v2["spec"]["size"] == "small"
    kubectl("patch", f"gizmos.v2.{group}", "g", "-n", ns, "--type=merge", "-p", '{"spec":{"size":"large"}}')
    items = json.loads(kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/{ns}/gizmos").stdout)["items"]
    assert [(i["apiVersion"], i["spec"]["size"]) for i in items] == [(f"{group}/v1", "large")]
    assert kubectl.json("get", "crd", f"gizmos.{group}")["status"]["storedVersions"] == ["v1"]
    kubectl("delete", "crd", f"gizmos.{group}")


def test_deleting_a_namespace_deletes_its_custom_objects(kubectl, widgets):
    ns = f"crd-ns-{os.urandom(2).hex()}"
    kubectl("create", "namespace", ns)
    kubectl("apply", "-n", ns, "-f", "-", input=_widget(widgets, "inside", size="small"))
    kubectl("delete", "namespace", ns, "--timeout=30s")
    out = kubectl("get", "--raw", f"/apis/{widgets}/v1/widgets")
    assert all(i["metadata"]["namespace"] != ns for i in json.loads(out.stdout)["items"])


@pytest.mark.parametrize("where, value, message", [
    ("properties", True, "properties: Invalid value: true: must be an object of schemas"),
    ("properties", {"size": 5}, "properties[size]: Invalid value: 5: must be a JSON schema object"),
    ("required", "size", 'required: Invalid value: "size": must be a list of property names'),
])
def test_a_schema_keyword_of_the_wrong_shape_is_refused_not_an_error(kubectl, where, value, message):
    crd = crd_manifest(f"s{os.urandom(3).hex()}.example.com", "shapes")
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][where] = value
    out = kubectl("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert out.returncode != 0
    assert "is invalid" in out.stderr and message in out.stderr, out.stderr
