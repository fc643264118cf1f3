"""Jobs: completions with parallelism, Indexed completion, backoffLimit, activeDeadlineSeconds;
pod phases are reported through the API as a kubelet would."""

from __future__ import annotations

import json

from .conftest import eventually


def job(kubectl, ns: str, name: str, **spec) -> None:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": dict({"template": {"spec": {"restartPolicy": "Never",
                                                "containers": [{"name": "c", "image": "busybox"}]}}}, **spec)}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))


def live_pods(core, ns: str) -> list:
    return [p for p in core.list_namespaced_pod(ns).items
            if p.status.phase not in ("Succeeded", "Failed") and not p.metadata.deletion_timestamp]


def finish(core, ns: str, pod, phase: str = "Succeeded") -> None:
    core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {"phase": phase}})


def test_completions_with_parallelism(kubectl, core, ns):
    job(kubectl, ns, "work", completions=3, parallelism=2)
    most = 0
    done = 0
    while done < 3:
        pods = eventually(lambda: live_pods(core, ns), what="a running pod")
        most = max(most, len(pods))
        finish(core, ns, pods[0])
        done += 1
        eventually(lambda: kubectl.json("get", "job", "work", "-n", ns).get("status", {}).get("succeeded", 0) >= done,
                   what=f"{done} succeeded")
    kubectl("wait", "--for=condition=complete", "job/work", "-n", ns, "--timeout=30s", timeout=60)
    status = kubectl.json("get", "job", "work", "-n", ns)["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["SuccessCriteriaMet"]["reason"] == conds["Complete"]["reason"] == "CompletionsReached"
    assert status["succeeded"] == 3 and status.get("failed", 0) == 0 and status["completionTime"]
    assert most == 2
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 3 and all(not p.metadata.finalizers for p in pods)


def test_indexed_job(kubectl, core, ns):
    job(kubectl, ns, "idx", completions=3, parallelism=3, completionMode="Indexed")
    pods = eventually(lambda: (lambda ps: ps if len(ps) == 3 else None)(live_pods(core, ns)), what="3 pods")
    indexes = sorted(int(p.metadata.annotations["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert indexes == [0, 1, 2]
    assert sorted(p.spec.hostname for p in pods) == ["idx-0", "idx-1", "idx-2"]
    env = pods[0].spec.containers[0].env[0]
    assert env.name == "JOB_COMPLETION_INDEX"
    for p in pods:
        finish(core, ns, p)
    kubectl("wait", "--for=condition=complete", "job/idx", "-n", ns, "--timeout=30s", timeout=60)
    assert kubectl.json("get", "job", "idx", "-n", ns)["status"]["completedIndexes"] == "0-2"


def test_backoff_limit(kubectl, core, ns):
    job(kubectl, ns, "flaky", backoffLimit=0)
    pod = eventually(lambda: live_pods(core, ns), what="a pod")[0]
    finish(core, ns, pod, "Failed")
    kubectl("wait", "--for=condition=failed", "job/flaky", "-n", ns, "--timeout=30s", timeout=60)
    cond = next(c for c in kubectl.json("get", "job", "flaky", "-n", ns)["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "BackoffLimitExceeded"
    assert kubectl.json("get", "job", "flaky", "-n", ns)["status"]["failed"] == 1


def test_active_deadline(kubectl, core, ns):
    job(kubectl, ns, "slow", activeDeadlineSeconds=6, parallelism=2, completions=4)
    eventually(lambda: len(live_pods(core, ns)) == 2, what="2 pods")
    kubectl("wait", "--for=condition=failed", "job/slow", "-n", ns, "--timeout=30s", timeout=60)
    cond = next(c for c in kubectl.json("get", "job", "slow", "-n", ns)["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "DeadlineExceeded"
    eventually(lambda: not live_pods(core, ns), what="running pods deleted")


def test_pod_failure_policy(kubectl, core, ns):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    job(kubectl, ns, "picky", backoffLimit=3, podFailurePolicy=policy)
    first = eventually(lambda: live_pods(core, ns), what="a pod")[0]
    core.patch_namespaced_pod_status(first.metadata.name, ns, {"status": {
        "phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True"}]}})
    second = eventually(lambda: [p for p in live_pods(core, ns) if p.metadata.name != first.metadata.name],
                        what="a replacement for the ignored failure")[0]
    assert kubectl.json("get", "job", "picky", "-n", ns)["status"].get("failed", 0) == 0
    core.patch_namespaced_pod_status(second.metadata.name, ns, {"status": {
        "phase": "Failed", "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False,
                                                  "restartCount": 0, "state": {"terminated": {"exitCode": 42}}}]}})
    kubectl("wait", "--for=condition=failed", "job/picky", "-n", ns, "--timeout=30s", timeout=60)
    cond = next(c for c in kubectl.json("get", "job", "picky", "-n", ns)["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "PodFailurePolicy" and "exit code 42" in cond["message"]

