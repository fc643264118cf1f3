"""The horizontal pod autoscaler in the real kube-controller-manager against the development API server,
driven by real kubectl. That API server has no metrics API, so what a user sees is kube's answer to
that (ScalingActive=False, FailedGetResourceMetric); min/max replicas still apply. Scaling on real CPU
use is tested on `provisioner dev cluster` (tests/controllers/test_autoscaling_e2e.py)."""

from __future__ import annotations

from .conftest import eventually


def conditions(kubectl, ns: str, name: str) -> dict[str, dict]:
    status = kubectl.json("get", "hpa", name, "-n", ns).get("status") or {}
    return {c["type"]: c for c in status.get("conditions") or []}


def test_without_metrics_api_scaling_is_inactive(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=x", "--replicas=2")
    kubectl("set", "resources", "deployment", "web", "-n", ns, "--requests=cpu=100m")
    kubectl("autoscale", "deployment", "web", "-n", ns, "--cpu=50%", "--min=1", "--max=5")
    active = eventually(lambda: conditions(kubectl, ns, "web").get("ScalingActive"), what="ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")
    assert "unable to fetch metrics from resource metrics API" in active["message"]
    assert conditions(kubectl, ns, "web")["AbleToScale"]["reason"] == "SucceededGetScale"
    row = kubectl("get", "hpa", "web", "-n", ns, "--no-headers").stdout
    assert "cpu: <unknown>/50%" in row and "Deployment/web" in row
    events = eventually(lambda: [e for e in kubectl.json("get", "events", "-n", ns)["items"]
                                 if e["reason"] == "FailedGetResourceMetric"], what="FailedGetResourceMetric event")
    assert events[0]["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
    assert kubectl.json("get", "deployment", "web", "-n", ns)["spec"]["replicas"] == 2


def test_min_replicas_raise_the_target(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=x", "--replicas=1")
    kubectl("autoscale", "deployment", "web", "-n", ns, "--cpu=50%", "--min=3", "--max=5")
    eventually(lambda: kubectl.json("get", "deployment", "web", "-n", ns)["spec"]["replicas"] == 3,
               what="the Deployment scaled to minReplicas")
    rescale = eventually(lambda: [e for e in kubectl.json("get", "events", "-n", ns)["items"]
                                  if e["reason"] == "SuccessfulRescale"], what="SuccessfulRescale event")
    assert rescale[0]["message"] == "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
    status = eventually(lambda: (kubectl.json("get", "hpa", "web", "-n", ns).get("status") or {}).get("lastScaleTime")
                        and kubectl.json("get", "hpa", "web", "-n", ns)["status"], what="lastScaleTime")
    assert status["desiredReplicas"] == 3


def test_an_average_value_target_reads_as_kubectl_prints_it(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=x", "--replicas=1")
    kubectl("autoscale", "deployment", "web", "-n", ns, "--cpu=500m", "--min=1", "--max=3")
    hpa = kubectl.json("get", "hpa", "web", "-n", ns)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "AverageValue", "averageValue": "500m"}
    eventually(lambda: conditions(kubectl, ns, "web").get("ScalingActive"), what="ScalingActive")
    assert "cpu: <unknown>/500m" in kubectl("get", "hpa", "web", "-n", ns, "--no-headers").stdout
