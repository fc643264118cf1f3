"""/metrics: kube-apiserver's metric names and labels in Prometheus text format, behind RBAC's
nonResourceURLs. Read with real kubectl (`get --raw /metrics`) and parsed with prometheus-client's
own text parser, as a scraper would."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from .conftest import eventually


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(found: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in found.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_requests_storage_and_etcd_are_measured_with_kube_apiserver_labels(kubectl, ns):
    kubectl("create", "configmap", "counted", "-n", ns, "--from-literal=a=b")
    kubectl("get", "configmap", "counted", "-n", ns)
    kubectl("get", "configmap", "missing", "-n", ns, check=False)
    found = samples(kubectl("get", "--raw", "/metrics").stdout)
    assert value(found, "apiserver_request_total", verb="POST", resource="configmaps", scope="namespace",
                 group="", version="v1", component="apiserver", code="201", dry_run="", subresource="") >= 1
    assert value(found, "apiserver_request_total", verb="GET", resource="configmaps", scope="resource",
                 code="404") >= 1
    assert value(found, "apiserver_request_duration_seconds_count", verb="GET", resource="configmaps",
                 scope="resource") >= 2
    assert value(found, "apiserver_storage_objects", resource="configmaps") >= 1
    assert value(found, "apiserver_storage_objects", resource="clusterroles.rbac.authorization.k8s.io") > 10
    assert value(found, "etcd_request_duration_seconds_count", operation="create", type="configmaps") >= 1
    assert value(found, "apiserver_current_inflight_requests", request_kind="readOnly") >= 1  # this scrape
    assert value(found, "apiserver_current_inflight_requests", request_kind="mutating") >= 0


def test_watch_events_are_counted_by_group_version_kind(kubectl, ns):
    before = value(samples(kubectl("get", "--raw", "/metrics").stdout), "apiserver_watch_events_total",
                   group="apps", version="v1", kind="Deployment")
    # the list's own resourceVersion (kubectl get -o json of an empty list reports "")
    rv = json.loads(kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments").stdout)["metadata"][
        "resourceVersion"]
    watch = kubectl.popen("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments?watch=true&"
                                         f"resourceVersion={rv}&timeoutSeconds=30")
    try:
        kubectl("create", "deployment", "watched", "-n", ns, "--image=nginx")
        line = json.loads(watch.stdout.readline())
        assert line["type"] == "ADDED" and line["object"]["metadata"]["name"] == "watched"
    finally:
        watch.kill()
        watch.wait()
    after = value(samples(kubectl("get", "--raw", "/metrics").stdout), "apiserver_watch_events_total",
                  group="apps", version="v1", kind="Deployment")
    assert after >= before + 1, f"watch from {rv}, event at {line['object']['metadata']['resourceVersion']}"


def test_metrics_need_get_on_the_metrics_non_resource_url(kubectl, user_kubectl):
    dave = user_kubectl("metrics-dave")
    refused = dave("get", "--raw", "/metrics", check=False)
    assert refused.returncode != 0
    assert 'User "metrics-dave" cannot get path "/metrics"' in refused.stderr
    kubectl("create", "clusterrole", "metrics-reader-test", "--verb=get", "--non-resource-url=/metrics")
    kubectl("create", "clusterrolebinding", "metrics-reader-test", "--clusterrole=metrics-reader-test",
            "--user=metrics-dave")
    assert eventually(lambda: "apiserver_request_total" in dave("get", "--raw", "/metrics", check=False).stdout)
