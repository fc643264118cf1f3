"""The cronjob controller: Jobs created on a cron schedule.

At each sync the most recent schedule time not yet acted on (since status.lastScheduleTime, else
the CronJob's creation) is found (croniter; spec.timeZone honoured); it is skipped when older
than startingDeadlineSeconds. concurrencyPolicy decides what happens with Jobs still running:
Allow runs another, Forbid skips this time, Replace deletes them first. A Job is named
`<cronjob>-<scheduled unix time in minutes>` (so one schedule time can only ever make one Job),
carries the jobTemplate and the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation and
is owned by the CronJob. Finished Jobs beyond successful/failedJobsHistoryLimit are deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key
from .job import finished

Obj = dict[str, Any]
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def zone(cronjob: Obj) -> dt.tzinfo:
    name = (cronjob.get("spec") or {}).get("timeZone")
    if not name:
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def schedule_expr(cronjob: Obj) -> str:
    expr = ((cronjob.get("spec") or {}).get("schedule") or "").strip()
    if expr.startswith("TZ=") or expr.startswith("CRON_TZ="):
        expr = expr.split(None, 1)[1] if " " in expr else ""
    return MACROS.get(expr, expr)


def most_recent(cronjob: Obj, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime, int]:
    """(latest schedule time in (last, now] or None, the next one after now, how many were missed)."""
    meta = cronjob.get("metadata") or {}
    last = podutil.parse_time((cronjob.get("status") or {}).get("lastScheduleTime")) or \
        podutil.parse_time(meta.get("creationTimestamp")) or now
    tz = zone(cronjob)
    it = croniter(schedule_expr(cronjob), last.astimezone(tz))
    latest, missed, jumped = None, 0, False
    while True:
        t = it.get_next(dt.datetime)
        if t > now:
            return latest, t, missed
        latest, missed = t, missed + 1
        if missed > MAX_MISSED and not jumped:  # a very old lastScheduleTime: only the latest counts
            jumped = True
            it = croniter(schedule_expr(cronjob), (now - dt.timedelta(hours=1)).astimezone(tz))


def job_name(cronjob: Obj, scheduled: dt.datetime) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_for(cronjob: Obj, scheduled: dt.datetime) -> Obj:
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = podutil.rfc3339(scheduled)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cronjob, scheduled), "namespace": cronjob["metadata"]["namespace"],
                         "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [podutil.owner_ref(cronjob, "batch/v1", "CronJob")]},
            "spec": dict(template.get("spec") or {})}


def history_to_delete(jobs: list[Obj], successful_limit: int, failed_limit: int) -> list[Obj]:
    out = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        done = sorted((j for j in jobs if finished(j) == kind),
                      key=lambda j: (j.get("status") or {}).get("startTime") or j["metadata"].get("creationTimestamp") or "")
        out += done[:max(0, len(done) - limit)]
    return out


class CronJobController(Controller):
    name = "cronjob"
    requires = (("batch", "v1", "cronjobs"), ("batch", "v1", "jobs"))

    def setup(self) -> None:
        self.cronjobs = self.ctx.informer("batch", "v1", "cronjobs")
        self.jobs = self.ctx.informer("batch", "v1", "jobs")
        self.enqueue_all(self.cronjobs)
        self.jobs.add_handler(self._job, lambda _o, n: self._job(n), self._job)

    def _job(self, job: Obj) -> None:
        ref = podutil.controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return
        ns, _ = split_key(key)
        spec = cj.get("spec") or {}
        jobs = [j for j in self.jobs.by_index("namespace", ns or "") if podutil.owned_by(j, cj)]
        active = [j for j in jobs if not finished(j)]
        status = dict(cj.get("status") or {})
        status["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j["metadata"]["name"],
                             "namespace": ns, "uid": j["metadata"]["uid"],
                             "resourceVersion": j["metadata"]["resourceVersion"]} for j in active] or None
        successes = [(j.get("status") or {}).get("completionTime") for j in jobs if finished(j) == "Complete"]
        if any(successes):
            status["lastSuccessfulTime"] = max(s for s in successes if s)
        for j in history_to_delete(jobs, int(spec.get("successfulJobsHistoryLimit", 3)),
                                   int(spec.get("failedJobsHistoryLimit", 1))):
            await self._delete(j)
        now = podutil.utcnow()
        try:
            scheduled, upcoming, _missed = most_recent(cj, now)
        except (ValueError, KeyError) as exc:
            self.ctx.event(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r}: {exc}")
            return
        if not spec.get("suspend") and scheduled is not None:
            deadline = spec.get("startingDeadlineSeconds")
            too_late = deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now
            name = job_name(cj, scheduled)
            already = any(j["metadata"]["name"] == name for j in jobs)
            policy = spec.get("concurrencyPolicy") or "Allow"
            if too_late:
                self.ctx.event(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: "
                               f"{podutil.rfc3339(scheduled)}")
                status["lastScheduleTime"] = podutil.rfc3339(scheduled)
            elif not already and policy == "Forbid" and active:
                self.ctx.event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is "
                               "running and concurrency policy is Forbid")
            elif not already:
                if policy == "Replace":
                    for j in active:
                        await self._delete(j)
                        self.ctx.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {j['metadata']['name']}")
                try:
                    made = await self.api.create("batch", "v1", "jobs", job_for(cj, scheduled), ns)
                    self.ctx.event(cj, "Normal", "SuccessfulCreate", f"Created job {made['metadata']['name']}")
                    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": made["metadata"]["name"], "namespace": ns,
                           "uid": made["metadata"]["uid"], "resourceVersion": made["metadata"]["resourceVersion"]}
                    status["active"] = [a for a in status.get("active") or []
                                        if policy != "Replace"] + [ref]
                except ApiStatusError as exc:
                    if exc.code != 409:  # 409: made on an earlier pass; the name guards against twice
                        raise
                status["lastScheduleTime"] = podutil.rfc3339(scheduled)
        status = {k: v for k, v in status.items() if v is not None}
        if status != (cj.get("status") or {}):
            try:
                await self.api.replace("batch", "v1", "cronjobs", dict(cj, status=status), ns, sub="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        self.queue.add_after(key, max(0.0, (upcoming - podutil.utcnow()).total_seconds()) + 0.05)

    async def _delete(self, job: Obj) -> None:
        try:
            await self.api.delete("batch", "v1", "jobs", job["metadata"]["name"], job["metadata"]["namespace"],
                                  propagation_policy="Background")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
