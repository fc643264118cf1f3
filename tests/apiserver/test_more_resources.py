"""The kinds a whole cluster leans on beyond the first set, through real kubectl: apply/get with
kubectl's columns, explain, scale, defaults; `kubectl get apiservices`; a PodDisruptionBudget
stopping a drain (429 from pods/eviction) until the budget allows it."""

from __future__ import annotations

import json

import pytest

from .test_kubectl import lines

TEMPLATE = {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
NAMESPACED = [
    ({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
      "spec": {"replicas": 2, "template": TEMPLATE}},
     ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["rc", "2", "0", "0"]),
    ({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pt"}, "template": TEMPLATE},
     ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"], ["pt", "c", "nginx", "app=w"]),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "sts"},
      "spec": {"serviceName": "sts", "selector": {"matchLabels": {"app": "w"}}, "template": TEMPLATE}},
     ["NAME", "READY", "AGE"], ["sts", "0/1"]),
    ({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev"}, "revision": 3,
      "data": {"spec": {}}}, ["NAME", "CONTROLLER", "REVISION", "AGE"], ["rev", "<none>", "3"]),
    ({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
      "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
          "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}},
     ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
     ["cj", "*/5", "*", "*", "*", "*", "<none>", "False", "0", "<none>"]),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
      "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "w"}}}},
     ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"], ["pdb", "1", "N/A", "0"]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
      "spec": {"podSelector": {"matchLabels": {"app": "w"}}}}, ["NAME", "POD-SELECTOR", "AGE"], ["np", "app=w"]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
      "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
          "service": {"name": "svc", "port": {"number": 80}}}}]}}]}},
     ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], ["ing", "<none>", "a.example.com", "80"]),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hpa"},
      "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}},
     ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
     ["hpa", "Deployment/web", "cpu:", "<unknown>/80%", "1", "5", "0"]),
    ({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "rq"}, "spec": {"hard": {"pods": "10"}}},
     ["NAME", "AGE", "REQUEST", "LIMIT"], None),
    ({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pvc"},
      "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}},
     ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"],
     ["pvc", "Pending", "<unset>"]),
]


@pytest.mark.parametrize("manifest,header,row", NAMESPACED, ids=[m[0]["kind"] for m in NAMESPACED])
def test_namespaced_kinds(kubectl, ns, manifest, header, row):
    kind = manifest["kind"].lower()
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    out = lines(kubectl("get", kind, manifest["metadata"]["name"], "-n", ns).stdout)
    assert out[0] == header
    if row:
        assert out[1][:len(row)] == row, out
    assert "FIELDS:" in kubectl("explain", kind).stdout
    kubectl("delete", kind, manifest["metadata"]["name"], "-n", ns)


def test_defaults_of_new_kinds(kubectl, ns):
    for manifest, _, _ in NAMESPACED[:3] + NAMESPACED[4:5]:
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    rc = kubectl.json("get", "rc", "rc", "-n", ns)
    assert rc["spec"]["selector"] == {"app": "w"} and rc["metadata"]["labels"] == {"app": "w"}
    sts = kubectl.json("get", "sts", "sts", "-n", ns)["spec"]
    assert (sts["replicas"], sts["podManagementPolicy"], sts["revisionHistoryLimit"]) == (1, "OrderedReady", 10)
    assert sts["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    cj = kubectl.json("get", "cronjob", "cj", "-n", ns)["spec"]
    assert (cj["concurrencyPolicy"], cj["successfulJobsHistoryLimit"], cj["failedJobsHistoryLimit"]) == ("Allow", 3, 1)
    kubectl("scale", "rc", "rc", "--replicas=4", "-n", ns)
    kubectl("scale", "statefulset", "sts", "--replicas=3", "-n", ns)
    assert kubectl.json("get", "rc", "rc", "-n", ns)["spec"]["replicas"] == 4
    assert kubectl.json("get", "sts", "sts", "-n", ns)["spec"]["replicas"] == 3
    bad = dict(NAMESPACED[4][0], metadata={"name": "bad"})
    bad["spec"] = dict(bad["spec"], schedule="every minute")
    out = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert "spec.schedule: Invalid value" in out.stderr


def test_kubectl_create_new_kinds(kubectl, ns):
    """kubectl create sends these as protobuf."""
    kubectl("create", "cronjob", "cj2", "-n", ns, "--image=busybox", "--schedule=0 * * * *")
    kubectl("create", "poddisruptionbudget", "pdb2", "-n", ns, "--selector=app=x", "--max-unavailable=1")
    kubectl("create", "ingress", "ing2", "-n", ns, "--rule=b.example.com/path*=svc:8080")
    assert kubectl.json("get", "cronjob", "cj2", "-n", ns)["spec"]["schedule"] == "0 * * * *"
    assert kubectl.json("get", "pdb", "pdb2", "-n", ns)["spec"]["maxUnavailable"] == 1
    rule = kubectl.json("get", "ingress", "ing2", "-n", ns)["spec"]["rules"][0]
    assert rule["host"] == "b.example.com"
    assert rule["http"]["paths"][0] == {"path": "/path", "pathType": "Prefix", "backend": {
        "service": {"name": "svc", "port": {"number": 8080}}}}


def test_ingress_and_network_policy_validation(kubectl, ns):
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad"},
           "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {}}]}}]}}
    out = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified" in out.stderr
    assert "spec.rules[0].http.paths[0].backend: Required value: resource or service backend must be specified" \
        in out.stderr
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
              "spec": {"podSelector": {}, "policyTypes": ["Sideways"]}}
    out = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(policy), check=False)
    assert 'spec.policyTypes[0]: Unsupported value: "Sideways"' in out.stderr


def test_kubectl_autoscale(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx")
    kubectl("autoscale", "deployment", "web", "-n", ns, "--min=2", "--max=5", "--cpu-percent=60")
    spec = kubectl.json("get", "hpa", "web", "-n", ns)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 5)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]


def test_cluster_scoped_kinds(kubectl, ns):
    name = f"pv-{ns[-4:]}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}}))
    row = lines(kubectl("get", "pv", name).stdout)
    assert row[1][:5] == [name, "1Gi", "RWO", "Retain", "Pending"]
    kubectl("delete", "pv", name)
    cls = f"nginx-{ns[-4:]}"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                                 "metadata": {"name": cls}, "spec": {"controller": "example.com/x"}}))
    assert lines(kubectl("get", "ingressclass", cls).stdout)[1][:3] == [cls, "example.com/x", "<none>"]
    kubectl("delete", "ingressclass", cls)


def test_api_services_list_the_built_in_groups(kubectl):
    rows = {r[0]: r for r in lines(kubectl("get", "apiservices").stdout)}
    assert rows["NAME"] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    for name in ("v1.", "v1.apps", "v1.batch", "v2.autoscaling", "v1.policy", "v1.scheduling.k8s.io"):
        assert rows[name][1:3] == ["Local", "True"], rows.get(name)
    svc = kubectl.json("get", "apiservice", "v1.apps")
    assert svc["spec"]["group"] == "apps" and svc["status"]["conditions"][0]["reason"] == "Local"


def test_api_resources_lists_the_new_kinds(kubectl):
    names = set(kubectl("api-resources", "-o", "name").stdout.split())
    assert {"replicationcontrollers", "persistentvolumes", "persistentvolumeclaims", "resourcequotas",
            "limitranges", "podtemplates", "statefulsets.apps", "controllerrevisions.apps", "cronjobs.batch",
            "poddisruptionbudgets.policy", "priorityclasses.scheduling.k8s.io", "networkpolicies.networking.k8s.io",
            "ingresses.networking.k8s.io", "ingressclasses.networking.k8s.io",
            "horizontalpodautoscalers.autoscaling", "storageclasses.storage.k8s.io",
            "apiservices.apiregistration.k8s.io"} <= names


def test_a_disruption_budget_stops_a_drain(kubectl, raw, ns):
    node = f"pdb-{ns[-4:]}"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    kubectl("run", "guarded", "-n", ns, "--image=busybox", "--labels=app=guarded")
    assert raw("POST", f"/api/v1/namespaces/{ns}/pods/guarded/binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "guarded"},
        "target": {"kind": "Node", "name": node}})[0] == 201
    kubectl("patch", "pod", "guarded", "-n", ns, "--subresource=status", "--type=merge",
            "-p", '{"status":{"phase":"Running"}}')
    kubectl("create", "pdb", "keep-one", "-n", ns, "--selector=app=guarded", "--min-available=1")

    def budget(allowed):  # what the disruption controller writes
        kubectl("patch", "pdb", "keep-one", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": 1,
                        "desiredHealthy": 1, "expectedPods": 1}}))
    budget(0)
    status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/pods/guarded/eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "guarded"}})
    doc = json.loads(body)
    assert status == 429 and doc["reason"] == "TooManyRequests"
    assert doc["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert doc["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                         "The disruption budget keep-one needs 1 healthy pods and has 1 currently"}]
    out = kubectl("drain", node, "--force", "--timeout=3s", check=False)
    assert out.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget" in out.stderr + out.stdout
    budget(1)
    out = kubectl("drain", node, "--force", "--grace-period=0", "--timeout=30s")
    assert f"node/{node} drained" in out.stdout + out.stderr
    spent = kubectl.json("get", "pdb", "keep-one", "-n", ns)["status"]
    assert spent["disruptionsAllowed"] == 0 and "guarded" in spent["disruptedPods"]
    kubectl("delete", "node", node)
