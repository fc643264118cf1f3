"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Two or three control-plane hosts each run a scheduler and a controller manager; only the holder of
the Lease (kube-system/kube-scheduler, kube-system/kube-controller-manager) acts. The record lives in
the Lease's spec: holderIdentity (`<hostname>_<uuid>`), leaseDurationSeconds, acquireTime,
renewTime, leaseTransitions. Writes use the Lease's resourceVersion, so two candidates cannot both
win a round (the loser gets 409 Conflict).

Timing follows kube-scheduler's defaults: lease 15 s, renew deadline 10 s, retry every 2 s (with
jitter while campaigning). Expiry is judged on this process's own clock from when it last saw the
record change, never by comparing renewTime with local time, so clock skew between hosts does not
matter.

Losing the lease (no successful renewal within the renew deadline) cancels the leading work and
awaits its end before anything else happens, so the process never acts twice. Unlike kube-scheduler
(which exits and relies on kubelet/systemd to restart it), `LeaderElector.run` then campaigns again
and restarts the work when it wins: the process waits and resumes, never crash-loops. A clean
shutdown (cancelling run) releases the lease so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from prometheus_client import Gauge

from .client import ApiStatusError, Client

# client-go's leader-election gauge, one per process whichever component elects: 1 while this
# process holds the lease called `name`, 0 while it stands by.
MASTER_STATUS = Gauge("leader_election_master_status",
                      "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
                      "backup, 1 indicates master. 'name' is the string used to identify the lease.",
                      ["name"])

log = logging.getLogger(__name__)

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER = 1.2


def micro_time(when: dt.datetime | None = None) -> str:
    """A metav1.MicroTime string: RFC 3339 with microseconds, UTC."""
    return (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class LeaderElector:
    client: Client
    name: str
    namespace: str = "kube-system"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    on_started_leading: Callable[[], Awaitable[Any]] | None = None  # the work; cancelled on loss
    on_stopped_leading: Callable[[], Any] | None = None
    on_new_leader: Callable[[str], Any] | None = None
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        self.leading = False
        self.observed_holder = ""
        self._observed_record: dict | None = None
        self._observed_at = 0.0  # loop time when the record last changed
        self._lease: dict | None = None
        self._last_renew = 0.0  # loop time of the last successful acquire/renew

    # -- one attempt -------------------------------------------------------------------------
    async def try_acquire_or_renew(self) -> bool:
        """One round: create, take over an expired lease, or renew ours. True if we hold it now."""
        loop = asyncio.get_running_loop()
        now = micro_time()
        try:
            lease = await self.client.get("coordination.k8s.io", "v1", "leases", self.name, self.namespace)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                    "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            try:
                self._lease = await self.client.create("coordination.k8s.io", "v1", "leases", body, self.namespace)
            except ApiStatusError as exc2:
                if exc2.code == 409:
                    return False
                raise
            self._observe(spec, loop.time())
            self._last_renew = loop.time()
            return True
        spec = lease.get("spec") or {}
        if spec != self._observed_record:
            self._observe(spec, loop.time())
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        held_by_other = holder and holder != self.identity
        if held_by_other and self._observed_at + duration > loop.time():
            return False  # someone else holds a lease that has not expired by our clock
        new = dict(spec, holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_duration),
                   renewTime=now)
        if holder != self.identity:
            new["acquireTime"] = now
            new["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = new
        try:
            self._lease = await self.client.replace("coordination.k8s.io", "v1", "leases", lease, self.namespace)
        except ApiStatusError as exc:
            if exc.code == 409:  # another candidate wrote first
                return False
            raise
        self._observe(new, loop.time())
        self._last_renew = loop.time()
        return True

    def healthy(self, tolerance: float = 20.0) -> bool:
        """For /healthz: false when we lead but have not renewed for lease duration + tolerance
        (the process is stuck), as kube-scheduler's leaderElection check."""
        if not self.leading:
            return True
        return asyncio.get_event_loop().time() - self._last_renew <= self.lease_duration + tolerance

    def _observe(self, spec: dict, at: float) -> None:
        self._observed_record = spec
        self._observed_at = at
        holder = spec.get("holderIdentity") or ""
        if holder != self.observed_holder:
            self.observed_holder = holder
            if holder and self.on_new_leader is not None:
                self.on_new_leader(holder)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # API server away: this round fails, the loop decides what it means
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc or type(exc).__name__)
            return False

    # -- loops -------------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Campaign until we hold the lease."""
        while not await self._attempt():
            await asyncio.sleep(self.retry_period * random.uniform(1.0, JITTER))
        log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)

    async def renew_until_lost(self) -> None:
        """Renew every retry period; return once no renewal succeeded within the renew deadline."""
        loop = asyncio.get_running_loop()
        last_ok = loop.time()
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = last_ok + self.renew_deadline
            while loop.time() < deadline:
                try:
                    ok = await asyncio.wait_for(self._attempt(), max(0.1, deadline - loop.time()))
                except asyncio.TimeoutError:
                    ok = False
                if ok:
                    last_ok = loop.time()
                    break
                await asyncio.sleep(min(self.retry_period / 4, max(0.0, deadline - loop.time())))
            else:
                log.error("lease %s/%s lost by %s", self.namespace, self.name, self.identity)
                return

    async def run(self) -> None:
        """Campaign, lead while the lease holds, stop the work when it is lost, campaign again."""
        try:
            while True:
                await self.acquire()
                self.leading = True
                work = asyncio.ensure_future(self.on_started_leading()) if self.on_started_leading else None
                renew = asyncio.ensure_future(self.renew_until_lost())
                waits = {renew} | ({work} if work else set())
                try:
                    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in waits:
                        task.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)
                    self.leading = False
                    if self.on_stopped_leading is not None:
                        self.on_stopped_leading()
                if work is not None and work in done and not work.cancelled() and work.exception():
                    raise work.exception()
                if work is not None and work in done:
                    return  # the work finished by itself: nothing left to lead
        finally:
            if self.release_on_cancel and self._lease is not None and self.observed_holder == self.identity:
                await asyncio.shield(self.release())

    async def release(self) -> None:
        """Give the lease up (holder emptied, duration 1 s) so a standby takes over without waiting."""
        lease = self._lease
        if lease is None:
            return
        spec = dict(lease.get("spec") or {}, holderIdentity="", leaseDurationSeconds=1,
                    renewTime=micro_time())
        try:
            await self.client.replace("coordination.k8s.io", "v1", "leases", dict(lease, spec=spec), self.namespace)
            self.observed_holder = ""
        except Exception as exc:  # best effort: the lease expires on its own
            log.info("lease %s/%s not released: %s", self.namespace, self.name, exc)
