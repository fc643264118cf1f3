"""CronJobs and finished-Job TTLs through the API: a Job per schedule time, concurrencyPolicy,
history limits, ttlSecondsAfterFinished."""

from __future__ import annotations

import json

from .conftest import eventually


def cronjob(kubectl, ns: str, name: str, **spec) -> None:
    body = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": dict({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}, **spec)}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))


def test_cronjob_creates_one_job_per_schedule_time(kubectl, ns):
    # created with a last schedule time two minutes back: the most recent missed time runs now
    cronjob(kubectl, ns, "tick", concurrencyPolicy="Forbid")
    import datetime as dt
    two_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl("patch", "cronjob", "tick", "-n", ns, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"lastScheduleTime": two_ago}}))
    jobs = eventually(lambda: kubectl.json("get", "jobs", "-n", ns)["items"], what="a Job")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metadata"]["name"].startswith("tick-")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in job["metadata"]["annotations"]
    status = eventually(lambda: (lambda s: s if s.get("active") else None)(
        kubectl.json("get", "cronjob", "tick", "-n", ns).get("status", {})), what="active in status")
    assert status["active"][0]["name"] == job["metadata"]["name"] and status["lastScheduleTime"]
    assert len(kubectl.json("get", "jobs", "-n", ns)["items"]) == 1  # Forbid: nothing more meanwhile


def test_suspended_cronjob_creates_nothing_and_ttl_deletes_finished_jobs(kubectl, core, ns):
    cronjob(kubectl, ns, "paused", suspend=True)
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "short-lived"},
        "spec": {"ttlSecondsAfterFinished": 1, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}))
    pod = eventually(lambda: core.list_namespaced_pod(ns).items, what="the job's pod")[0]
    assert kubectl("get", "job", "short-lived", "-n", ns, check=False).returncode == 0  # unfinished: kept
    core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {"phase": "Succeeded"}})
    # only a finished Job is deleted by its TTL: its going proves both
    eventually(lambda: kubectl("get", "job", "short-lived", "-n", ns, check=False).returncode != 0,
               what="job deleted after its TTL")
    eventually(lambda: not core.list_namespaced_pod(ns).items, what="its pod collected")
    assert [j["metadata"]["name"] for j in kubectl.json("get", "jobs", "-n", ns)["items"]] == []
