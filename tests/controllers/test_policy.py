"""ResourceQuota usage, PodDisruptionBudget status and ClusterRole aggregation."""

from __future__ import annotations

import json
import os

from .conftest import FakeKubelet, eventually


def test_quota_usage(kubectl, ns):
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=5,requests.cpu=1,requests.memory=1Gi,configmaps=10,"
            "count/deployments.apps=2,services=3")
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "200m",
                                                                                       "memory": "64Mi"}}},
                                {"name": "b", "image": "x", "resources": {"requests": {"cpu": "100m",
                                                                                       "memory": "16Mi"}}}]}}))
    kubectl("create", "deployment", "d", "-n", ns, "--image=x", "--replicas=0")
    kubectl("create", "configmap", "c", "-n", ns)

    def usage():
        u = kubectl.json("get", "quota", "q", "-n", ns).get("status", {}).get("used", {})
        return u if u.get("count/deployments.apps") == "1" and u.get("configmaps") == "2" else None
    u = eventually(usage, what="quota usage")
    assert u == {"pods": "1", "requests.cpu": "300m", "requests.memory": "80Mi", "configmaps": "2",
                 "count/deployments.apps": "1", "services": "0"}


def test_pod_disruption_budget_status(kubectl, core, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=3")
    kubectl("create", "pdb", "web", "-n", ns, "--selector=app=web", "--min-available=2")
    with FakeKubelet(core, ns):
        def status():
            s = kubectl.json("get", "pdb", "web", "-n", ns).get("status", {})
            return s if s.get("currentHealthy") == 3 else None
        s = eventually(status, what="3 healthy")
    assert (s["desiredHealthy"], s["expectedPods"], s["disruptionsAllowed"]) == (2, 3, 1)
    assert s["conditions"][0]["reason"] == "SufficientPods"


def test_cluster_role_aggregation(kubectl, kcm):
    tag = os.urandom(3).hex()
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"agg-{tag}"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {f"example.com/agg-{tag}": "true"}}]},
        "rules": []}))
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": f"part-{tag}", "labels": {f"example.com/agg-{tag}": "true"}}, "rules": [rule]}))
    eventually(lambda: kubectl.json("get", "clusterrole", f"agg-{tag}").get("rules") == [rule], what="aggregated")
    kubectl("delete", "clusterrole", f"part-{tag}")
    eventually(lambda: not kubectl.json("get", "clusterrole", f"agg-{tag}").get("rules"), what="rules withdrawn")
    kubectl("delete", "clusterrole", f"agg-{tag}")


def test_quota_refusal_shows_as_replica_failure(kubectl, ns):
    kubectl("create", "quota", "tight", "-n", ns, "--hard=pods=1")
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=2")

    def failure():
        conds = kubectl.json("get", "deploy", "web", "-n", ns).get("status", {}).get("conditions", [])
        return next((c for c in conds if c["type"] == "ReplicaFailure"), None)
    cond = eventually(failure, what="ReplicaFailure on the deployment")
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate" and "exceeded quota" in cond["message"]
    assert len(kubectl.json("get", "pods", "-n", ns)["items"]) == 1
