"""The garbage collector: dependents go when their owners go (metadata.ownerReferences).

It watches every resource discovery lists as list/watch/delete-able (events aside) and keeps an
owner graph: uid -> object, owner uid -> dependents. Three cases, as upstream:
- background: an object all of whose owners are gone is deleted (one with some owners left only
  loses the dangling references);
- foreground: an owner being deleted with the `foregroundDeletion` finalizer has its dependents
  deleted first, and loses the finalizer once no dependent with blockOwnerDeletion remains;
- orphan: an owner being deleted with the `orphan` finalizer has its references removed from its
  dependents, then loses the finalizer.
An owner not in the caches is looked up through the API before anything is deleted, so a slow
watch never deletes a dependent whose owner exists.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from provisioner.components.api.client import ApiStatusError
from provisioner.components.api.informer import Informer, key_of

from . import discovery, podutil
from .base import Controller

log = logging.getLogger(__name__)
Obj = dict[str, Any]
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
IGNORED = {("", "events"), ("events.k8s.io", "events")}
SYNC_PATIENCE = 60
REDISCOVERY_PERIOD = 30.0


def classify_owners(obj: Obj, exists: dict[str, bool]) -> tuple[list[Obj], list[Obj]]:
    """(solid, dangling) owner references given uid -> owner exists."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    solid = [r for r in refs if exists.get(r.get("uid", ""), False)]
    dangling = [r for r in refs if not exists.get(r.get("uid", ""), False)]
    return solid, dangling


class GarbageCollector(Controller):
    name = "garbagecollector"

    def setup(self) -> None:
        self.by_uid: dict[str, tuple[Informer, str]] = {}
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self.kinds: dict[tuple[str, str], discovery.ApiResource] = {}  # (apiVersion, kind) -> resource
        self.informers: list[Informer] = []
        self.watching: set[tuple[str, str, str]] = set()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while not await self._discover():
            await asyncio.sleep(2)
        try:  # a resource that never lists (served, then gone) must not hold the collector back
            await asyncio.wait_for(asyncio.gather(*(inf.wait_synced() for inf in self.informers)), SYNC_PATIENCE)
        except asyncio.TimeoutError:
            log.warning("garbagecollector: some caches not synced after %ds; collecting anyway", SYNC_PATIENCE)
        self.ready.set()
        for uid in list(self.by_uid):
            self.queue.add(uid)
        rediscover = asyncio.ensure_future(self._rediscover())
        try:
            await super().run()
        finally:
            rediscover.cancel()

    async def _rediscover(self) -> None:
        """Resources served later (custom resources) are watched too, as upstream every 30 s."""
        while True:
            await asyncio.sleep(REDISCOVERY_PERIOD)
            await self._discover()

    async def _discover(self) -> bool:
        try:
            resources = await discovery.served(self.api)
        except Exception as exc:  # API server not there: try again later, never crash
            log.warning("garbagecollector: discovery failed (%s)", exc)
            return False
        for r in resources:
            self.kinds[(r.api_version, r.kind)] = r
            if (r.group, r.plural) in IGNORED or not {"list", "watch", "delete"} <= r.verbs or \
                    (r.group, r.version, r.plural) in self.watching:
                continue
            self.watching.add((r.group, r.version, r.plural))
            inf = self.ctx.informers.informer(r.group, r.version, r.plural)
            inf.add_handler(lambda o, inf=inf: self._observe(inf, o),
                            lambda old, new, inf=inf: self._changed(inf, old, new),
                            lambda o, inf=inf: self._gone(o))
            inf.start()
            self.informers.append(inf)
        return True

    # -- graph ---------------------------------------------------------------------------------------
    def _observe(self, inf: Informer, obj: Obj) -> None:
        uid = obj["metadata"].get("uid")
        if not uid:
            return
        self.by_uid[uid] = (inf, key_of(obj))
        for ref in obj["metadata"].get("ownerReferences") or []:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
            if ref.get("uid") not in self.by_uid and self.ready.is_set():
                self.queue.add(uid)  # an owner we have not seen: check it
        fins = obj["metadata"].get("finalizers") or []
        if podutil.is_terminating(obj) and (FOREGROUND in fins or ORPHAN in fins):
            self.queue.add(uid)

    def _changed(self, inf: Informer, old: Obj, new: Obj) -> None:
        gone = {r.get("uid") for r in old["metadata"].get("ownerReferences") or []} - \
            {r.get("uid") for r in new["metadata"].get("ownerReferences") or []}
        for owner in gone:
            deps = self.dependents.get(owner or "")
            if deps is not None:
                deps.discard(new["metadata"]["uid"])
                if owner in self.by_uid:
                    self.queue.add(owner)  # a foreground owner may be waiting on this
        self._observe(inf, new)

    def _gone(self, obj: Obj) -> None:
        uid = obj["metadata"].get("uid", "")
        self.by_uid.pop(uid, None)
        for ref in obj["metadata"].get("ownerReferences") or []:
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(uid)
                if ref.get("uid") in self.by_uid:
                    self.queue.add(ref["uid"])  # a foreground owner may be waiting on this
        for dep in self.dependents.pop(uid, set()):
            self.queue.add(dep)  # its owner is gone: check it

    def _get(self, uid: str) -> Obj | None:
        entry = self.by_uid.get(uid)
        return entry[0].get(entry[1]) if entry else None

    def _resource(self, obj: Obj) -> discovery.ApiResource | None:
        return self.kinds.get((obj.get("apiVersion", ""), obj.get("kind", "")))

    # -- decisions -------------------------------------------------------------------------------
    async def sync(self, uid: str) -> None:
        obj = self._get(uid)
        if obj is None:
            return
        fins = obj["metadata"].get("finalizers") or []
        if podutil.is_terminating(obj) and ORPHAN in fins:
            await self._orphan(obj)
            return
        if podutil.is_terminating(obj) and FOREGROUND in fins:
            await self._foreground(obj)
            return
        if not obj["metadata"].get("ownerReferences"):
            return
        exists = {r.get("uid", ""): await self._owner_exists(obj, r)
                  for r in obj["metadata"]["ownerReferences"]}
        solid, dangling = classify_owners(obj, exists)
        if not dangling:
            return
        if solid:
            await self._patch_refs(obj, solid)
        elif not podutil.is_terminating(obj):
            await self._delete(obj)

    async def _owner_exists(self, obj: Obj, ref: Obj) -> bool:
        owner = self._get(ref.get("uid", ""))
        if owner is not None:
            return True
        res = self.kinds.get((ref.get("apiVersion", ""), ref.get("kind", "")))
        if res is None:
            return True  # a kind we cannot look up: never delete on a guess
        ns = obj["metadata"].get("namespace") if res.namespaced else None
        try:
            live = await self.api.get(res.group, res.version, res.plural, ref.get("name", ""), ns)
        except ApiStatusError as exc:
            if exc.code == 404:
                return False
            raise
        return live["metadata"].get("uid") == ref.get("uid")

    async def _delete(self, obj: Obj, policy: str = "Background") -> None:
        res = self._resource(obj)
        if res is None:
            return
        try:
            await self.api.delete(res.group, res.version, res.plural, obj["metadata"]["name"],
                                  obj["metadata"].get("namespace"), propagation_policy=policy,
                                  uid=obj["metadata"]["uid"])
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _patch_refs(self, obj: Obj, refs: list[Obj]) -> None:
        res = self._resource(obj)
        if res is None:
            return
        try:
            await self.api.patch(res.group, res.version, res.plural, obj["metadata"]["name"],
                                 {"metadata": {"ownerReferences": refs or None, "uid": obj["metadata"]["uid"]}},
                                 obj["metadata"].get("namespace"))
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _remove_finalizer(self, obj: Obj, finalizer: str) -> None:
        res = self._resource(obj)
        if res is None:
            return
        current = await self.api.get(res.group, res.version, res.plural, obj["metadata"]["name"],
                                     obj["metadata"].get("namespace"))
        fins = [f for f in current["metadata"].get("finalizers") or [] if f != finalizer]
        try:
            await self.api.patch(res.group, res.version, res.plural, obj["metadata"]["name"],
                                 {"metadata": {"finalizers": fins or None,
                                               "resourceVersion": current["metadata"]["resourceVersion"]}},
                                 obj["metadata"].get("namespace"))
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    async def _orphan(self, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._get(dep_uid)
            if dep is not None:
                await self._patch_refs(dep, [r for r in dep["metadata"].get("ownerReferences") or []
                                             if r.get("uid") != uid])
        await self._remove_finalizer(owner, ORPHAN)

    async def _foreground(self, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._get(dep_uid)
            if dep is None:
                continue
            ref = next((r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not podutil.is_terminating(dep):
                # dependents that own things go foreground too, so the whole tree empties first
                await self._delete(dep, "Foreground" if self.dependents.get(dep_uid) else "Background")
        if not blocking:
            await self._remove_finalizer(owner, FOREGROUND)
