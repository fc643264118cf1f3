"""Admission as kube-apiserver enables it by default, through real kubectl and the Python client:
ServiceAccount (default account, kube-api-access volume), Priority, DefaultTolerationSeconds,
LimitRanger, ResourceQuota, DefaultStorageClass, PodSecurity, with kube-apiserver's wording."""

from __future__ import annotations

import json
import os

import pytest


def _pod(name, **spec):
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}})


def _create_pod(kubectl, ns, name, check=True, **spec):
    return kubectl("create", "-n", ns, "-f", "-", input=_pod(name, **spec), check=check)


def test_service_account_token_volume(kubectl, ns):
    _create_pod(kubectl, ns, "p")
    pod = kubectl.json("get", "pod", "p", "-n", ns)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    [volume] = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(volume["name"]) == len("kube-api-access-") + 5
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert volume["projected"]["defaultMode"] == 420
    assert spec["containers"][0]["volumeMounts"] == [{"name": volume["name"], "readOnly": True,
                                                      "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]


def test_service_account_opt_out_and_missing_account(kubectl, ns):
    _create_pod(kubectl, ns, "quiet", automountServiceAccountToken=False)
    assert "volumes" not in kubectl.json("get", "pod", "quiet", "-n", ns)["spec"]
    out = _create_pod(kubectl, ns, "ghost", check=False, serviceAccountName="ghost")
    assert f'pods "ghost" is forbidden: error looking up service account {ns}/ghost: serviceaccount "ghost" ' \
           "not found" in out.stderr


def test_priority_from_priority_class(kubectl, ns):
    rows = kubectl("get", "priorityclasses", "--no-headers").stdout
    assert "system-node-critical" in rows and "2000001000" in rows and "system-cluster-critical" in rows
    _create_pod(kubectl, ns, "plain")
    plain = kubectl.json("get", "pod", "plain", "-n", ns)["spec"]
    assert (plain["priority"], plain["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    _create_pod(kubectl, ns, "critical", priorityClassName="system-node-critical")
    assert kubectl.json("get", "pod", "critical", "-n", ns)["spec"]["priority"] == 2000001000
    out = _create_pod(kubectl, ns, "unknown", check=False, priorityClassName="nope")
    assert 'pods "unknown" is forbidden: no PriorityClass with name nope was found' in out.stderr
    out = _create_pod(kubectl, ns, "forged", check=False, priority=5)
    assert "the integer value of priority (5) must not be provided in pod spec" in out.stderr


def test_priority_class_validation(kubectl):
    name = f"high-{os.urandom(2).hex()}"
    kubectl("create", "priorityclass", name, "--value=1000", "--description=test")
    assert kubectl.json("get", "pc", name)["preemptionPolicy"] == "PreemptLowerPriority"
    out = kubectl("create", "priorityclass", "too-high-" + name, "--value=2000000000", check=False)
    assert "maximum allowed value of a user defined priority is 1000000000" in out.stderr
    out = kubectl("create", "priorityclass", "system-" + name, "--value=10", check=False)
    assert "priority class names with 'system-' prefix are reserved" in out.stderr
    kubectl("delete", "pc", name)


def test_default_toleration_seconds(kubectl, ns):
    _create_pod(kubectl, ns, "p")
    tolerations = kubectl.json("get", "pod", "p", "-n", ns)["spec"]["tolerations"]
    assert tolerations == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]


def test_limit_range_defaults_and_bounds(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "defaultRequest": {"cpu": "100m"}}]}}))
    limits = kubectl.json("get", "limitrange", "limits", "-n", ns)["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "1"}  # defaulted from max, as Kubernetes does
    _create_pod(kubectl, ns, "p")
    pod = kubectl.json("get", "pod", "p", "-n", ns)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "100m"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"].startswith("LimitRanger plugin set: ")
    assert pod["status"]["qosClass"] == "Burstable"
    big = json.loads(_pod("big"))
    big["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    out = kubectl("create", "-n", ns, "-f", "-", input=json.dumps(big), check=False)
    assert 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in out.stderr


def test_resource_quota(kubectl, ns):
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=1,configmaps=20")
    _create_pod(kubectl, ns, "one")
    out = _create_pod(kubectl, ns, "two", check=False)
    assert 'pods "two" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1' \
        in out.stderr
    text = kubectl("describe", "quota", "q", "-n", ns).stdout
    assert any(line.split() == ["pods", "1", "1"] for line in text.splitlines()), text


def test_default_storage_class(kubectl, ns):
    name = f"fast-{os.urandom(2).hex()}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/fast",
        "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}))
    assert f"{name} (default)" in kubectl("get", "storageclass").stdout
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(claim))
    got = kubectl.json("get", "pvc", "data", "-n", ns)
    assert got["spec"]["storageClassName"] == name and got["status"]["phase"] == "Pending"
    kubectl("delete", "storageclass", name)


def test_pod_security_enforce_and_warn(kubectl, ns):
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline",
            "pod-security.kubernetes.io/warn=restricted")
    out = _create_pod(kubectl, ns, "host", check=False, hostNetwork=True)
    assert 'pods "host" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' \
        in out.stderr
    out = _create_pod(kubectl, ns, "ok")
    assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false ' \
           '(container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities ' \
           '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or ' \
           'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must ' \
           'set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")' in out.stderr


def test_no_creates_in_a_terminating_namespace(kubectl, ns):
    kubectl("create", "configmap", "keep", "-n", ns)
    kubectl("patch", "configmap", "keep", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":["x/y"]}}')
    kubectl("delete", "namespace", ns, "--wait=false")
    out = kubectl("create", "configmap", "late", "-n", ns, check=False)
    assert f'configmaps "late" is forbidden: unable to create new content in namespace {ns} because it is ' \
           "being terminated" in out.stderr
    kubectl("patch", "configmap", "keep", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_system_namespaces_cannot_be_deleted(kubectl, name):
    out = kubectl("delete", "namespace", name, "--dry-run=server", check=False)
    assert f'namespaces "{name}" is forbidden: this namespace may not be deleted' in out.stderr


def test_scoped_resource_quota(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "critical"},
        "spec": {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["system-cluster-critical"]}]}}}))
    _create_pod(kubectl, ns, "c1", priorityClassName="system-cluster-critical")
    out = _create_pod(kubectl, ns, "c2", check=False, priorityClassName="system-cluster-critical")
    assert "exceeded quota: critical, requested: pods=1, used: pods=1, limited: pods=1" in out.stderr
    _create_pod(kubectl, ns, "ordinary")  # outside the quota's scope
    _create_pod(kubectl, ns, "ordinary2")
