"""The ttl-after-finished controller: finished Jobs with ttlSecondsAfterFinished are deleted that
long after they finished (their pods follow through the garbage collector)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]


def expires_at(job: Obj) -> dt.datetime | None:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None:
        return None
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            when = podutil.parse_time(c.get("lastTransitionTime")) or \
                podutil.parse_time((job.get("status") or {}).get("completionTime"))
            return None if when is None else when + dt.timedelta(seconds=int(ttl))
    return None


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    requires = (("batch", "v1", "jobs"),)

    def setup(self) -> None:
        self.jobs = self.ctx.informer("batch", "v1", "jobs")
        self.jobs.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or podutil.is_terminating(job):
            return
        when = expires_at(job)
        if when is None:
            return
        left = (when - podutil.utcnow()).total_seconds()
        if left > 0:
            self.queue.add_after(key, left + 0.05)
            return
        ns, name = split_key(key)
        try:
            await self.api.delete("batch", "v1", "jobs", name, ns, propagation_policy="Foreground",
                                  uid=job["metadata"]["uid"])
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
