"""Fuzz pass (hypothesis) against the session's API server: malformed JSON and protobuf, wrong
kinds and apiVersions, random values at random places of valid objects, huge and deeply nested
bodies, bad selectors, bad resourceVersions and list options, bad patch bodies, odd paths and
content types. Whatever is sent, the answer is a Status object and never a 5xx or a dropped
connection; inputs that cannot be valid must get a 4xx.

Bounded: a few dozen examples per property, no example database, one server for the session.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "40")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
query_text = st.text(alphabet=string.printable + "éß\u2603", max_size=30)


def check(status: int, body: bytes, *, must_fail: bool) -> dict | None:
    """The invariant: no 5xx; a failure is a Status whose code is the HTTP status."""
    assert status < 500, body[:500]
    if status < 400:
        assert not must_fail, (status, body[:300])
        return None
    doc = json.loads(body)
    assert doc["kind"] == "Status" and doc["status"] == "Failure" and doc["code"] == status, doc
    assert isinstance(doc["message"], str) and doc["message"]
    return doc


@pytest.fixture(scope="module")
def fuzz_ns(kubectl):
    kubectl("create", "namespace", "fuzz")
    kubectl("create", "configmap", "target", "-n", "fuzz", "--from-literal=a=b")
    kubectl("create", "deployment", "target", "-n", "fuzz", "--image=nginx")
    from .test_crd import crd_manifest
    kubectl("apply", "-f", "-", input=json.dumps(crd_manifest("fuzz.example.com", "fuzzwidgets")))
    yield "fuzz"
    kubectl("delete", "crd", "fuzzwidgets.fuzz.example.com", "--wait=false")
    kubectl("delete", "namespace", "fuzz", "--wait=false")


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"a": "b"}},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "nginx",
                                                             "ports": [{"containerPort": 80}]}]}}}}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
       "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}],
                                "resources": {"limits": {"cpu": "1"}}}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": 80}]}}
STATEFULSET = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
               "spec": {"serviceName": "x", "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                        "template": DEPLOYMENT["spec"]["template"],
                        "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {
                            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}
CRONJOB = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
           "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": {
               "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
       "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}}
INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"},
           "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "t"}], "rules": [{"host": "a.example.com", "http": {
               "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}
HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "minReplicas": 1,
                "maxReplicas": 3}}
PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x"},
       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
LIMITS = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "x"},
          "spec": {"limits": [{"type": "Container", "max": {"cpu": "4"}, "min": {"cpu": "1m"}}]}}
QUOTA = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "x"},
         "spec": {"hard": {"pods": "1000", "requests.cpu": "1000"}}}
PRIORITY = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "x"}, "value": 10}
WIDGET = {"apiVersion": "fuzz.example.com/v1", "kind": "Widget", "metadata": {"name": "x"},
          "spec": {"size": "small", "replicas": 2, "color": "red"}, "status": {"replicas": 1, "conditions": [{"a": 1}]}}
TARGETS = [("/apis/apps/v1/namespaces/fuzz/deployments", DEPLOYMENT), ("/api/v1/namespaces/fuzz/pods", POD),
           ("/api/v1/namespaces/fuzz/services", SERVICE), ("/apis/apps/v1/namespaces/fuzz/statefulsets", STATEFULSET),
           ("/apis/batch/v1/namespaces/fuzz/cronjobs", CRONJOB), ("/apis/policy/v1/namespaces/fuzz/poddisruptionbudgets", PDB),
           ("/apis/networking.k8s.io/v1/namespaces/fuzz/ingresses", INGRESS),
           ("/apis/autoscaling/v2/namespaces/fuzz/horizontalpodautoscalers", HPA),
           ("/api/v1/namespaces/fuzz/persistentvolumeclaims", PVC), ("/api/v1/namespaces/fuzz/limitranges", LIMITS),
           ("/api/v1/namespaces/fuzz/resourcequotas", QUOTA), ("/apis/scheduling.k8s.io/v1/priorityclasses", PRIORITY),
           ("/apis/fuzz.example.com/v1/namespaces/fuzz/fuzzwidgets", WIDGET),
           ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", None)]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    out = json.loads(json.dumps(obj))
    cur = out
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return out


@st.composite
def mutated_objects(draw):
    url, base = draw(st.sampled_from(TARGETS))
    if base is None:  # a CRD: its random name never matches plural.group, so none is ever served
        from .test_crd import crd_manifest
        base = crd_manifest("fuzz.example.com", "fuzzwidgets")
    path = draw(st.sampled_from([p for p in _paths(base) if p[:2] != ("metadata", "name")]))
    obj = _replace(base, path, draw(json_values))
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"]["name"] = "f" + draw(st.text(alphabet="abcdef0123456789", min_size=8, max_size=8))
    return url, obj


@FUZZ
@given(body=st.binary(max_size=200))
def test_random_bytes_as_a_body(raw, fuzz_ns, body):
    check(*raw("POST", "/api/v1/namespaces/fuzz/configmaps", body)[::2], must_fail=True)


@FUZZ
@given(text=st.text(max_size=60), method=st.sampled_from(["POST", "PUT"]))
def test_malformed_json(raw, fuzz_ns, text, method):
    body = "{" + text  # never a complete JSON document
    path = "/api/v1/namespaces/fuzz/configmaps" + ("/target" if method == "PUT" else "")
    check(*raw(method, path, body)[::2], must_fail=True)


@FUZZ
@given(case=mutated_objects())
def test_random_values_inside_valid_objects(raw, fuzz_ns, case):
    url, obj = case
    check(*raw("POST", url, json.dumps(obj))[::2], must_fail=False)


@FUZZ
@given(kind=st.text(max_size=20), api_version=st.text(max_size=20) | st.sampled_from(["v1", "apps/v1", "v2"]))
def test_wrong_kind_or_api_version(raw, fuzz_ns, kind, api_version):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "wrong-kind"}, "data": {}}
    valid = kind in ("", "ConfigMap") and api_version in ("", "v1")
    check(*raw("POST", "/api/v1/namespaces/fuzz/configmaps", json.dumps(obj))[::2], must_fail=not valid)
    if not valid:
        return
    raw("DELETE", "/api/v1/namespaces/fuzz/configmaps/wrong-kind")


@pytest.mark.parametrize("size", [3 * 1024 * 1024 + 1, 8 * 1024 * 1024])
def test_huge_bodies_are_413(raw, fuzz_ns, size):
    value = "x" * size
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"a": value}})
    doc = check(*raw("POST", "/api/v1/namespaces/fuzz/configmaps", body)[::2], must_fail=True)
    assert doc["code"] == 413 and doc["reason"] == "RequestEntityTooLarge"


@pytest.mark.parametrize("depth", [1000, 100000])
def test_deeply_nested_bodies(raw, fuzz_ns, depth):
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":' + "[" * depth + "]" * depth + "}"
    check(*raw("POST", "/api/v1/namespaces/fuzz/configmaps", body)[::2], must_fail=True)
    patch = "[" * depth + "]" * depth
    check(*raw("PATCH", "/api/v1/namespaces/fuzz/configmaps/target", patch,
               {"Content-Type": "application/merge-patch+json"})[::2], must_fail=True)


@FUZZ
@given(label=query_text, fields=query_text)
def test_selectors(raw, fuzz_ns, label, fields):
    from urllib.parse import urlencode

    query = urlencode({"labelSelector": label, "fieldSelector": fields})
    for path in ("/api/v1/namespaces/fuzz/pods", "/api/v1/events", "/apis/apps/v1/deployments"):
        check(*raw("GET", f"{path}?{query}")[::2], must_fail=False)


@FUZZ
@given(rv=query_text | st.integers(-5, 2**70).map(str), match=st.sampled_from(["", "Exact", "NotOlderThan", "bad"]),
       limit=query_text | st.integers(-5, 2**70).map(str), cont=query_text)
def test_list_options(raw, fuzz_ns, rv, match, limit, cont):
    from urllib.parse import urlencode

    query = urlencode({"resourceVersion": rv, "resourceVersionMatch": match, "limit": limit, "continue": cont})
    status, _, body = raw("GET", f"/api/v1/namespaces/fuzz/configmaps?{query}")
    if status == 504:  # a revision etcd has not reached: Kubernetes' retryable "too large" answer
        doc = json.loads(body)
        assert doc["reason"] == "Timeout" and doc["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        return
    check(status, body, must_fail=False)


@FUZZ
@given(rv=query_text | st.integers(-5, 2**70).map(str), bookmarks=st.sampled_from(["true", "x", ""]))
def test_watch_resource_versions(raw, fuzz_ns, rv, bookmarks):
    from urllib.parse import urlencode

    query = urlencode({"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": bookmarks,
                       "timeoutSeconds": "1"})
    status, _, body = raw("GET", f"/api/v1/namespaces/fuzz/configmaps?{query}", timeout=15)
    if status == 200:  # an accepted watch: newline-delimited events; an ERROR event carries a Status
        for line in body.splitlines():
            event = json.loads(line)
            if event["type"] == "ERROR":
                assert 400 <= event["object"]["code"] < 500, event
        return
    check(status, body, must_fail=True)


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
json_patch_ops = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
     "path": st.sampled_from(["/spec/replicas", "/spec/template/spec/containers/0", "/metadata/labels/x",
                              "/spec/template/spec/containers/-", "", "/", "/~2", "/spec/x/y/z", "/metadata"])},
    optional={"value": json_values, "from": st.sampled_from(["/spec", "/metadata/name", "/nope", ""])}), max_size=4)


@FUZZ
@given(ctype=st.sampled_from(PATCH_TYPES), doc=json_values | json_patch_ops, target=st.sampled_from(
    ["/api/v1/namespaces/fuzz/configmaps/target", "/apis/apps/v1/namespaces/fuzz/deployments/target",
     "/apis/apps/v1/namespaces/fuzz/deployments/target/scale",
     "/apis/apps/v1/namespaces/fuzz/deployments/target/status"]))
def test_patch_bodies(raw, fuzz_ns, ctype, doc, target):
    from urllib.parse import quote

    query = "?fieldManager=fuzz" if ctype.startswith("application/apply") else ""
    check(*raw("PATCH", quote(target) + query, json.dumps(doc), {"Content-Type": ctype})[::2], must_fail=False)


@FUZZ
@given(segments=st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-._~%:", min_size=1, max_size=12),
                         min_size=1, max_size=7),
       root=st.sampled_from(["/api", "/apis", "/api/v1", "/apis/apps/v1", "/api/v1/namespaces/fuzz"]),
       method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
def test_odd_paths_and_methods(raw, fuzz_ns, segments, root, method):
    path = root + "/" + "/".join(segments)
    status, _, body = raw(method, path, "{}" if method in ("POST", "PUT", "PATCH") else None)
    assert status < 500, body[:300]
    if status >= 400 and body:
        check(status, body, must_fail=True)


@FUZZ
@given(ctype=st.text(alphabet=string.ascii_letters + string.digits + " /+;=.-*", max_size=40),
       body=st.binary(max_size=64))
def test_content_types_and_protobuf(raw, fuzz_ns, ctype, body):
    for content_type, payload in ((ctype, b'{"data":{}}'), ("application/vnd.kubernetes.protobuf", b"k8s\x00" + body)):
        status, _, out = raw("POST", "/api/v1/namespaces/fuzz/configmaps", payload, {"Content-Type": content_type})
        check(status, out, must_fail=True)


@FUZZ
@given(spec=json_values, path=st.sampled_from([
    "/apis/authentication.k8s.io/v1/tokenreviews", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    "/apis/authorization.k8s.io/v1/namespaces/fuzz/localsubjectaccessreviews",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]))
def test_review_bodies(raw, fuzz_ns, spec, path):
    kind = {"tokenreviews": "TokenReview", "subjectaccessreviews": "SubjectAccessReview",
            "localsubjectaccessreviews": "LocalSubjectAccessReview",
            "selfsubjectaccessreviews": "SelfSubjectAccessReview"}[path.rsplit("/", 1)[1]]
    group = path.split("/")[2]
    body = {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}
    check(*raw("POST", path, json.dumps(body))[::2], must_fail=False)

