"""The job controller: run pods until `completions` succeed, within parallelism and limits.

Counting is exact even when finished pods are deleted: every pod carries the
`batch.kubernetes.io/job-tracking` finalizer; a finished pod is first recorded by uid in
status.uncountedTerminatedPods, then its finalizer is removed, then it moves into the
succeeded/failed counts (as upstream), so no pod is counted twice or lost across restarts.

- NonIndexed: done when `succeeded` reaches `completions` (or, with no completions, when a pod
  succeeded and none is running).
- Indexed: each pod gets an index (annotation and label `batch.kubernetes.io/job-completion-index`,
  env JOB_COMPLETION_INDEX, hostname `<job>-<index>`); done when every index succeeded
  (status.completedIndexes, "1,3-5" notation).
- Failed (condition reason BackoffLimitExceeded) after more than backoffLimit failed pods (with
  restartPolicy OnFailure, container restarts count); DeadlineExceeded after
  activeDeadlineSeconds; failed pods are replaced after a backoff of 10 s doubling to 6 minutes.
  suspend deletes running pods (condition Suspended).
- successPolicy (Indexed): the Job succeeds once a rule's succeededIndexes/succeededCount are met;
  the pods still running are deleted. Finished Jobs get SuccessCriteriaMet or FailureTarget beside
  Complete or Failed, as upstream since 1.31.
- podFailurePolicy: the first rule a failed pod matches (onExitCodes In/NotIn, onPodConditions)
  decides: FailJob fails the Job at once (reason PodFailurePolicy), Ignore does not count the pod,
  Count counts it (FailIndex, with backoffLimitPerIndex, is not done: it counts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]
TRACKING = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"
MANAGER = "kubernetes.io/job-controller"
BACKOFF = 10.0
MAX_BACKOFF = 360.0


# -- pure decisions -------------------------------------------------------------------------------
def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def format_indexes(indexes: set[int]) -> str:
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def pod_index(pod: Obj) -> int | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def backoff_delay(failures: int) -> float:
    return 0.0 if failures <= 0 else min(BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)


def wanted_active(spec: Obj, succeeded: int, completed: set[int]) -> int:
    parallelism = int(spec.get("parallelism", 1) or 0)
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed":
        return min(parallelism, int(completions or 0) - len(completed))
    if completions is None:
        return parallelism if succeeded == 0 else 0
    return max(0, min(parallelism, int(completions) - succeeded))


def missing_indexes(completions: int, completed: set[int], active: list[Obj], want: int) -> list[int]:
    running = {pod_index(p) for p in active}
    return [i for i in range(completions) if i not in completed and i not in running][:max(0, want - len(active))]


def job_pod(job: Obj, index: int | None) -> Obj:
    name = job["metadata"]["name"]
    template = (job.get("spec") or {}).get("template") or {}
    pod = podutil.pod_from_template(template, job, "batch/v1", "Job",
                                    generate_name=f"{name}-{index}-" if index is not None else f"{name}-")
    pod["metadata"]["finalizers"] = list(pod["metadata"].get("finalizers") or []) + [TRACKING]
    if index is not None:
        pod["metadata"].setdefault("annotations", {})[INDEX] = str(index)
        pod["metadata"]["labels"][INDEX] = str(index)
        pod["spec"].setdefault("hostname", f"{name}-{index}")
        for c in pod["spec"].get("containers") or []:
            env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
            env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{INDEX}']"}}})
            c["env"] = env
    return pod


def _exit_codes(pod: Obj, container: str | None) -> list[tuple[str, int]]:
    status = pod.get("status") or {}
    out = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        term = (cs.get("state") or {}).get("terminated")
        if term is not None and (container is None or cs.get("name") == container):
            out.append((cs.get("name", ""), int(term.get("exitCode", 0))))
    return out


def failure_policy(spec: Obj, pod: Obj) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule a failed pod matches, or None."""
    pod_name = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
    for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
        action = rule.get("action", "Count")
        codes = rule.get("onExitCodes")
        if codes:
            values = set(codes.get("values") or [])
            for name, code in _exit_codes(pod, codes.get("containerName")):
                hit = code in values if codes.get("operator") == "In" else (code != 0 and code not in values)
                if hit:
                    return action, (f"Container {name} for pod {pod_name} failed with exit code {code} "
                                    f"matching {action} rule at index {i}")
        for pc in rule.get("onPodConditions") or []:
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c.get("type") == pc.get("type") and c.get("status") == pc.get("status", "True"):
                    return action, f"Pod {pod_name} has condition {pc.get('type')} matching {action} rule at index {i}"
    return None


def restarts(pods: list[Obj]) -> int:
    return sum(int(cs.get("restartCount") or 0) for p in pods
               for cs in (p.get("status") or {}).get("containerStatuses") or [])


def success_policy_match(spec: Obj, completed: set[int]) -> int | None:
    """Index of the first successPolicy rule the completed indexes satisfy (Indexed Jobs)."""
    for i, rule in enumerate((spec.get("successPolicy") or {}).get("rules") or []):
        wanted = parse_indexes(rule.get("succeededIndexes")) if rule.get("succeededIndexes") else None
        count = rule.get("succeededCount")
        done = completed & wanted if wanted is not None else completed
        if (wanted is None or (count is not None or wanted <= completed)) and \
                (count is None or len(done) >= int(count)):
            return i
    return None


def ending(kind: str, reason: str, message: str, now: str) -> list[Obj]:
    """The conditions a finished Job gets, as upstream since 1.31: the target first
    (SuccessCriteriaMet / FailureTarget), then Complete / Failed."""
    target = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
    return [condition(target, reason, message, now), condition(kind, reason, message, now)]


def finished(job: Obj) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def condition(ctype: str, reason: str, message: str, now: str, status: str = "True") -> Obj:
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastProbeTime": now, "lastTransitionTime": now}


# -- the controller ---------------------------------------------------------------------------------
class JobController(Controller):
    name = "job"
    requires = (("batch", "v1", "jobs"),)

    def setup(self) -> None:
        self.jobs = self.ctx.informer("batch", "v1", "jobs")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.expect: dict[str, set[str]] = {}  # job key -> pods created, not yet seen
        self.enqueue_all(self.jobs)
        self.pods.add_handler(self._pod, lambda _o, n: self._pod(n), self._pod)

    def _pod(self, pod: Obj) -> None:
        ref = podutil.controller_ref(pod)
        if ref is not None and ref.get("kind") == "Job":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        ns, _ = split_key(key)
        if job is None:
            self.expect.pop(key, None)
            return
        if (job.get("spec") or {}).get("managedBy", MANAGER) != MANAGER:
            return  # another controller owns this Job (spec.managedBy)
        pending = {n for n in self.expect.get(key, set()) if self.pods.get(f"{ns}/{n}") is None}
        if pending:
            self.expect[key] = pending
            self.queue.add_after(key, 0.2)
            return
        self.expect.pop(key, None)
        pods = [p for p in self.pods.by_index("namespace", ns or "") if podutil.owned_by(p, job)]
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        now_dt = podutil.utcnow()
        now = podutil.rfc3339(now_dt)
        uncounted = status.get("uncountedTerminatedPods") or {}
        known = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        # 1. finished pods not yet recorded go into uncountedTerminatedPods
        new_ok = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"
                  and TRACKING in (p["metadata"].get("finalizers") or []) and p["metadata"]["uid"] not in known]
        new_bad = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"
                   and TRACKING in (p["metadata"].get("finalizers") or []) and p["metadata"]["uid"] not in known]
        completed = parse_indexes(status.get("completedIndexes"))
        verdicts = {p["metadata"]["uid"]: failure_policy(spec, p) for p in new_bad}
        ignored = [p for p in new_bad if (verdicts[p["metadata"]["uid"]] or ("",))[0] == "Ignore"]
        await asyncio.gather(*(self._release(p) for p in ignored))  # not counted, as upstream
        new_bad = [p for p in new_bad if p not in ignored]
        fatal = next((v for v in verdicts.values() if v and v[0] == "FailJob"), None)
        if fatal is not None and not finished(job):
            status["conditions"] = list(status.get("conditions") or []) + ending("Failed", "PodFailurePolicy",
                                                                                  fatal[1], now)
        if new_ok or new_bad or fatal:
            status["uncountedTerminatedPods"] = {
                "succeeded": list(uncounted.get("succeeded") or []) + [p["metadata"]["uid"] for p in new_ok],
                "failed": list(uncounted.get("failed") or []) + [p["metadata"]["uid"] for p in new_bad]}
            job = await self._write(job, status)
            status = dict(job.get("status") or {})
        # 2. their finalizers go, 3. then they are counted
        uncounted = status.get("uncountedTerminatedPods") or {}
        recorded = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        # recorded pods, and pods being deleted before they finished, let go of the finalizer
        await asyncio.gather(*(self._release(p) for p in pods if TRACKING in (p["metadata"].get("finalizers") or [])
                               and (p["metadata"]["uid"] in recorded or (
                                   podutil.is_terminating(p) and (p.get("status") or {}).get("phase")
                                   not in ("Succeeded", "Failed")))))
        if recorded:
            by_uid = {p["metadata"]["uid"]: p for p in pods}
            status["succeeded"] = int(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or [])
            status["failed"] = int(status.get("failed") or 0) + len(uncounted.get("failed") or [])
            for uid in uncounted.get("succeeded") or []:
                idx = pod_index(by_uid.get(uid) or {})
                if idx is not None:
                    completed.add(idx)
            if spec.get("completionMode") == "Indexed":
                status["completedIndexes"] = format_indexes(completed)
            status["uncountedTerminatedPods"] = {}
        active = [p for p in pods if podutil.is_active(p)]
        if finished(job):
            await self._delete(job, active)
            await self._write(job, status)
            return
        await self._reconcile(key, job, spec, status, active, completed, now, now_dt)

    async def _reconcile(self, key: str, job: Obj, spec: Obj, status: Obj, active: list[Obj], completed: set[int],
                         now: str, now_dt: dt.datetime) -> None:
        conds = [c for c in status.get("conditions") or []]
        suspended = bool(spec.get("suspend"))
        succeeded, failed = int(status.get("succeeded") or 0), int(status.get("failed") or 0)
        restart_policy = (((spec.get("template") or {}).get("spec") or {}).get("restartPolicy"))
        # with OnFailure, failures are container restarts in place: they count toward backoffLimit
        failures = failed + (restarts(active) if restart_policy == "OnFailure" else 0)
        if suspended:
            await self._delete(job, active)
            active = []
            if not any(c["type"] == "Suspended" and c["status"] == "True" for c in conds):
                conds = [c for c in conds if c["type"] != "Suspended"] + [
                    condition("Suspended", "JobSuspended", "Job suspended", now)]
                status.pop("startTime", None)
        else:
            if any(c["type"] == "Suspended" and c["status"] == "True" for c in conds):
                conds = [c for c in conds if c["type"] != "Suspended"] + [
                    condition("Suspended", "JobResumed", "Job resumed", now, "False")]
            status.setdefault("startTime", now)
        end: list[Obj] | None = None
        deadline = spec.get("activeDeadlineSeconds")
        started = podutil.parse_time(status.get("startTime"))
        if not suspended and failures > int(spec.get("backoffLimit", 6)):
            end = ending("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now)
        elif not suspended and deadline is not None and started is not None and \
                started + dt.timedelta(seconds=int(deadline)) <= now_dt:
            end = ending("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", now)
        elif spec.get("completionMode") == "Indexed" and (rule := success_policy_match(spec, completed)) is not None:
            end = ending("Complete", "SuccessPolicy", f"Matched rules at index {rule}", now)
        elif self._complete(spec, succeeded, completed, active):
            end = ending("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now)
        if end is not None:
            await self._delete(job, active)
            active = []
            conds += end
            if end[-1]["type"] == "Complete":
                status["completionTime"] = now
        elif not suspended:
            active = await self._scale(key, job, spec, succeeded, failed, completed, active)
            if deadline is not None and started is not None:
                left = (started + dt.timedelta(seconds=int(deadline)) - now_dt).total_seconds()
                self.queue.add_after(key, max(0.0, left) + 0.1)
        status["conditions"] = conds
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if podutil.is_ready(p))
        status.setdefault("succeeded", succeeded)
        status.setdefault("failed", failed)
        await self._write(job, status)

    @staticmethod
    def _complete(spec: Obj, succeeded: int, completed: set[int], active: list[Obj]) -> bool:
        completions = spec.get("completions")
        if spec.get("completionMode") == "Indexed":
            return len(completed) >= int(completions or 0)
        if completions is None:
            return succeeded > 0 and not active
        return succeeded >= int(completions)

    async def _scale(self, key: str, job: Obj, spec: Obj, succeeded: int, failed: int, completed: set[int],
                     active: list[Obj]) -> list[Obj]:
        want = wanted_active(spec, succeeded, completed)
        ns = job["metadata"]["namespace"]
        if len(active) > want:
            surplus = sorted(active, key=podutil.deletion_rank)[:len(active) - want]
            await self._delete(job, surplus)
            return [p for p in active if p not in surplus]
        if len(active) == want:
            return active
        last_failure = max((podutil.parse_time((p.get("status") or {}).get("startTime") or
                                               p["metadata"].get("creationTimestamp")) for p in self._failed(job)),
                           default=None)
        delay = backoff_delay(failed)
        if failed and last_failure is not None:
            wait = (last_failure + dt.timedelta(seconds=delay) - podutil.utcnow()).total_seconds()
            if wait > 0:
                self.queue.add_after(key, wait)
                return active
        if spec.get("completionMode") == "Indexed":
            indexes: list[int | None] = list(missing_indexes(int(spec.get("completions") or 0), completed, active, want))
        else:
            indexes = [None] * (want - len(active))
        results = await asyncio.gather(*(self.api.create("", "v1", "pods", job_pod(job, i), ns) for i in indexes),
                                       return_exceptions=True)
        made = [r for r in results if isinstance(r, dict)]
        self.expect[key] = {r["metadata"]["name"] for r in made}
        for r in made:
            self.ctx.event(job, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return active + made

    def _failed(self, job: Obj) -> list[Obj]:
        return [p for p in self.pods.by_index("namespace", job["metadata"]["namespace"])
                if podutil.owned_by(p, job) and (p.get("status") or {}).get("phase") == "Failed"]

    async def _release(self, pod: Obj) -> None:
        fins = [f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING]
        try:
            await self.api.patch("", "v1", "pods", pod["metadata"]["name"],
                                 {"metadata": {"finalizers": fins or None,
                                               "resourceVersion": pod["metadata"]["resourceVersion"]}},
                                 pod["metadata"]["namespace"])
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    async def _delete(self, job: Obj, pods: list[Obj]) -> None:
        for p in pods:
            if TRACKING in (p["metadata"].get("finalizers") or []):
                await self._release(p)
            try:
                await self.api.delete("", "v1", "pods", p["metadata"]["name"], p["metadata"]["namespace"],
                                      uid=p["metadata"]["uid"])
                self.ctx.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise

    async def _write(self, job: Obj, status: Obj) -> Obj:
        if status == (job.get("status") or {}):
            return job
        try:
            return await self.api.replace("batch", "v1", "jobs", dict(job, status=status), job["metadata"]["namespace"],
                                          sub="status")
        except ApiStatusError as exc:
            if exc.code == 404:
                return job
            raise
