"""The deployment controller seen through real kubectl: rollout status|history|undo|pause|resume|
restart, scaling, Recreate, progress deadline and revision history limit."""

from __future__ import annotations

import json

from .conftest import eventually


def rs_of(kubectl, ns: str, deploy: str) -> list[dict]:
    items = kubectl.json("get", "rs", "-n", ns)["items"]
    return [rs for rs in items if any(r.get("name") == deploy for r in rs["metadata"].get("ownerReferences", []))]


def deploy(kubectl, ns: str, name: str = "web", replicas: int = 3, image: str = "nginx:1.25",
           strategy: str = "", extra: str = "") -> None:
    kubectl("create", "deployment", name, "-n", ns, f"--image={image}", f"--replicas={replicas}")
    if strategy:
        kubectl("patch", "deploy", name, "-n", ns, "--type=merge", "-p", strategy)
    if extra:
        kubectl("patch", "deploy", name, "-n", ns, "--type=merge", "-p", extra)


def rollout_status(kubectl, ns: str, name: str = "web", timeout: str = "60s"):
    return kubectl("rollout", "status", f"deploy/{name}", "-n", ns, f"--timeout={timeout}", timeout=90)


def test_rollout_status_waits_until_pods_are_ready(kubectl, ns, core):
    deploy(kubectl, ns)
    pods = eventually(lambda: core.list_namespaced_pod(ns).items if len(core.list_namespaced_pod(ns).items) == 3
                      else None, what="3 pods")
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)
    out = kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=2s", check=False)
    assert out.returncode != 0 and "0 of 3 updated replicas are available" in out.stdout
    from .conftest import FakeKubelet
    with FakeKubelet(core, ns):
        assert 'deployment "web" successfully rolled out' in rollout_status(kubectl, ns).stdout
    d = kubectl.json("get", "deploy", "web", "-n", ns)
    assert d["status"]["availableReplicas"] == 3 and d["status"]["observedGeneration"] == d["metadata"]["generation"]
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def test_rolling_update_history_and_undo(kubectl, ns, kubelet):
    deploy(kubectl, ns, replicas=4)
    rollout_status(kubectl, ns)
    first = rs_of(kubectl, ns, "web")[0]["metadata"]["name"]
    kubectl("set", "image", "deploy/web", "nginx=nginx:1.26", "-n", ns)
    kubectl("annotate", "deploy/web", "-n", ns, "kubernetes.io/change-cause=to 1.26")
    rollout_status(kubectl, ns)
    rss = {rs["metadata"]["name"]: rs for rs in rs_of(kubectl, ns, "web")}
    assert len(rss) == 2 and rss[first]["spec"]["replicas"] == 0
    (second,) = [n for n in rss if n != first]
    assert rss[second]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    history = [line.split(None, 1) for line in
               kubectl("rollout", "history", "deploy/web", "-n", ns).stdout.splitlines()[2:] if line.strip()]
    assert history == [["1", "<none>"], ["2", "to 1.26"]]
    kubectl("rollout", "undo", "deploy/web", "-n", ns)
    rollout_status(kubectl, ns)
    d = kubectl.json("get", "deploy", "web", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    rss = {rs["metadata"]["name"]: rs for rs in rs_of(kubectl, ns, "web")}
    assert rss[first]["spec"]["replicas"] == 4 and rss[second]["spec"]["replicas"] == 0
    ann = rss[first]["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "3"
    assert ann["deployment.kubernetes.io/revision-history"] == "1"
    revisions = [line.split()[0] for line in kubectl("rollout", "history", "deploy/web", "-n", ns).stdout.splitlines()[2:]
                 if line.strip()]
    assert revisions == ["2", "3"]


def test_rolling_update_respects_max_surge_and_unavailable(kubectl, ns, core, apps):
    """maxSurge 1, maxUnavailable 0 on 3 replicas: never more than 4 pods, never fewer than 3 ready."""
    from .conftest import FakeKubelet
    deploy(kubectl, ns, strategy=json.dumps({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1,
                                                                                       "maxUnavailable": 0}}}}))
    with FakeKubelet(core, ns):
        rollout_status(kubectl, ns)
    kubectl("set", "image", "deploy/web", "nginx=nginx:1.26", "-n", ns)
    seen_max, seen_min_ready = 0, 99
    kubelet = FakeKubelet(core, ns)
    with kubelet:
        def done():
            nonlocal seen_max, seen_min_ready
            pods = [p for p in core.list_namespaced_pod(ns).items if not p.metadata.deletion_timestamp]
            seen_max = max(seen_max, len(pods))
            ready = sum(1 for p in pods if p.status.phase == "Running")
            seen_min_ready = min(seen_min_ready, ready)
            d = apps.read_namespaced_deployment("web", ns)
            return d.status.observed_generation == d.metadata.generation and d.status.updated_replicas == 3 \
                and d.status.replicas == 3 and d.status.available_replicas == 3
        eventually(done, timeout=60, what="rollout to finish")
    assert seen_max <= 4
    assert seen_min_ready >= 2  # a surged pod is counted before the fake kubelet reports it; never below 3 available
    d = apps.read_namespaced_deployment("web", ns)
    assert d.status.unavailable_replicas in (None, 0)


def test_recreate_scales_old_to_zero_before_new(kubectl, ns, kubelet, apps):
    deploy(kubectl, ns, replicas=2, strategy=json.dumps({"spec": {"strategy": {"type": "Recreate",
                                                                                "rollingUpdate": None}}}))
    rollout_status(kubectl, ns)
    kubectl("set", "image", "deploy/web", "nginx=nginx:1.26", "-n", ns)
    rollout_status(kubectl, ns)
    rss = rs_of(kubectl, ns, "web")
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]


def test_pause_resume_and_restart(kubectl, ns, kubelet):
    deploy(kubectl, ns, replicas=2)
    rollout_status(kubectl, ns)
    kubectl("rollout", "pause", "deploy/web", "-n", ns)
    kubectl("set", "image", "deploy/web", "nginx=nginx:1.26", "-n", ns)

    def paused_condition():
        d = kubectl.json("get", "deploy", "web", "-n", ns)
        cond = next((c for c in d["status"].get("conditions", []) if c["type"] == "Progressing"), {})
        return d if cond.get("reason") == "DeploymentPaused" and cond.get("status") == "Unknown" else None
    eventually(paused_condition, what="Progressing=Unknown DeploymentPaused")
    assert len(rs_of(kubectl, ns, "web")) == 1  # no rollout while paused
    kubectl("rollout", "resume", "deploy/web", "-n", ns)
    rollout_status(kubectl, ns)
    assert len(rs_of(kubectl, ns, "web")) == 2
    kubectl("rollout", "restart", "deploy/web", "-n", ns)
    rollout_status(kubectl, ns)
    rss = rs_of(kubectl, ns, "web")
    assert len(rss) == 3
    current = [rs for rs in rss if rs["spec"]["replicas"] == 2]
    assert "kubectl.kubernetes.io/restartedAt" in current[0]["spec"]["template"]["metadata"]["annotations"]


def test_scale_and_revision_history_limit(kubectl, ns, kubelet):
    deploy(kubectl, ns, replicas=1, extra=json.dumps({"spec": {"revisionHistoryLimit": 1}}))
    rollout_status(kubectl, ns)
    kubectl("scale", "deploy/web", "--replicas=3", "-n", ns)
    rollout_status(kubectl, ns)
    assert kubectl.json("get", "deploy", "web", "-n", ns)["status"]["readyReplicas"] == 3
    for image in ("nginx:1.26", "nginx:1.27"):
        kubectl("set", "image", "deploy/web", f"nginx={image}", "-n", ns)
        rollout_status(kubectl, ns)
    eventually(lambda: len(rs_of(kubectl, ns, "web")) == 2, what="history pruned to 1 old ReplicaSet")
    kubectl("scale", "deploy/web", "--replicas=0", "-n", ns)
    eventually(lambda: not [p for p in kubectl.json("get", "pods", "-n", ns)["items"]], what="all pods gone")


def test_progress_deadline_exceeded(kubectl, ns):
    deploy(kubectl, ns, replicas=1, extra=json.dumps({"spec": {"progressDeadlineSeconds": 2}}))
    out = kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=60s", check=False, timeout=90)
    assert out.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in out.stderr
    d = kubectl.json("get", "deploy", "web", "-n", ns)
    cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
