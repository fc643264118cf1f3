"""DELETE: finalizers and deletionTimestamp, pod grace periods, namespace finalization, eviction.

A mixin of crud.Registry. Objects with finalizers (and namespaces, and pods bound to a live
node) only get a deletionTimestamp; the rest are removed in one revision-checked transaction.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from . import admission, fields, propagation, strategies
from . import eviction as eviction_budget
from .apirequest import Req
from .errors import ApiError
from .registry import BY_KIND, Resource, all_resources
from .storage import Storage

log = logging.getLogger("apiserver")
# storage answers that mean "someone else changed it first": read again (or leave it to them)
RETRYABLE = ("Conflict", "NotFound")


class Deletion:
    storage: Storage
    background: set[asyncio.Task]

    # delete ---------------------------------------------------------------------------------
    async def delete(self, req: Req, options: dict) -> tuple[dict, bool]:
        """Returns (object, deleted now); objects with finalizers only get a deletionTimestamp."""
        res = req.res
        propagation.validate(options)
        pre = options.get("preconditions") or {}
        for _attempt in range(16):
            cur = await self.storage.get(res.store, req.namespace, req.name or "")
            if cur is None:
                raise ApiError.not_found(res.plural, req.name or "", res.group)
            meta = cur["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            rv = int(meta["resourceVersion"])
            strategy = strategies.for_resource(res)
            if _attempt == 0:
                await self.admission_chain.validate(admission.Attributes("DELETE", req, None, cur))
            graceful = await strategy.grace_period(self, cur, options)  # type: ignore[arg-type]
            collector = propagation.finalizers_on_delete(res.group, res.version, res.plural,
                                                         meta.get("finalizers") or [], options)
            finalizers = meta.get("finalizers") if collector is None else collector
            if strategy.marks_on_delete or finalizers or graceful:
                if meta.get("deletionTimestamp") and not graceful and collector is None:
                    return cur, False
                new = copy.deepcopy(cur)
                if collector:
                    new["metadata"]["finalizers"] = collector
                elif collector is not None:
                    new["metadata"].pop("finalizers", None)
                new["metadata"]["deletionTimestamp"] = meta.get("deletionTimestamp") or fields.now()
                new["metadata"]["deletionGracePeriodSeconds"] = graceful or 0
                strategy.prepare_for_delete_mark(new)
                if req.dry_run:
                    return new, False
                try:
                    out = await self.storage.update(res.store, req.namespace, req.name or "", new, rv)
                except ApiError as exc:
                    if exc.reason not in RETRYABLE:
                        raise
                    continue  # changed or gone meanwhile: read it again
                strategy.after_delete_mark(self, out)  # type: ignore[arg-type]
                return out, False
            if req.dry_run:
                return cur, True
            try:
                await self.storage.delete(res.store, req.namespace, req.name or "", rv)
            except ApiError as exc:
                if exc.reason not in RETRYABLE:
                    raise
                continue
            await self._after_delete(res, cur)
            return cur, True
        raise ApiError.conflict(res.plural, req.name or "", res.group)

    async def _after_delete(self, res: Resource, obj: dict) -> None:
        await strategies.for_resource(res).after_delete(self, obj)  # type: ignore[arg-type]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _finalize_namespace(self, name: str) -> None:
        """The namespace controller's job, done here until the controller manager does it:
        delete everything in the namespace, then wait (polling) until objects held by
        finalizers are gone too, and only then let the namespace go, as Kubernetes does."""
        delay = 0.2
        while await self._delete_namespace_content(name):
            if await self.storage.get("namespaces", None, name) is None:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        ns_req = Req(BY_KIND[("", "Namespace")], None, name)

        def drop_kubernetes(cur: dict) -> dict:
            fin = [f for f in (cur.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]
            cur.setdefault("spec", {})["finalizers"] = fin
            return cur
        try:
            await self.update(ns_req, drop_kubernetes, precondition_rv=None)
        except ApiError as exc:
            if exc.code != 404:  # gone already is fine; anything else is worth a line in the log
                log.warning("namespace %s: cannot remove the kubernetes finalizer: %s", name, exc.message)
            return
        await self._maybe_finish_namespace(name)

    async def _delete_namespace_content(self, name: str) -> int:
        """Delete (or mark) what is left in the namespace; the number of objects still there."""
        left = 0
        for r in self._namespaced_stores():
            items, _, _ = await self.storage.list(r.store, name)
            left += len(items)
            for obj in items:
                if obj["metadata"].get("deletionTimestamp"):
                    continue  # already marked: its finalizers' owners finish it
                try:
                    await self.delete(Req(r, name, obj["metadata"]["name"]),
                                      {"gracePeriodSeconds": 0, "propagationPolicy": "Background"})
                except ApiError as exc:
                    if exc.code != 404:
                        log.warning("namespace %s: cannot delete %s/%s: %s", name, r.plural,
                                    obj["metadata"]["name"], exc.message)
        return left and sum([len((await self.storage.list(r.store, name))[0]) for r in self._namespaced_stores()])

    @staticmethod
    def _namespaced_stores() -> list[Resource]:
        """One resource per stored collection of namespaced objects, custom resources included."""
        seen: dict[str, Resource] = {}
        for r in all_resources():
            if r.namespaced and r.stored and r.store not in seen:
                seen[r.store] = r
        return list(seen.values())

    async def _maybe_finish_namespace(self, name: str) -> None:
        ns = await self.storage.get("namespaces", None, name)
        if ns and ns["metadata"].get("deletionTimestamp") and not (ns.get("spec") or {}).get("finalizers") \
                and not ns["metadata"].get("finalizers"):
            try:
                await self.storage.delete("namespaces", None, name, int(ns["metadata"]["resourceVersion"]))
            except ApiError as exc:
                if exc.reason not in RETRYABLE:  # changed or removed by another server: its job now
                    raise

    async def evict(self, req: Req, eviction: dict) -> dict:
        """pods/eviction: a delete honouring the Eviction's DeleteOptions, refused with 429 while
        a PodDisruptionBudget allows no disruption (eviction.py)."""
        if eviction.get("kind") not in (None, "", "Eviction"):
            raise ApiError.bad_request(f'{eviction["kind"]} is not an Eviction')
        name = (eviction.get("metadata") or {}).get("name")
        if name and name != req.name:
            raise ApiError.bad_request(f"name in URL does not match name in Eviction object ({name} != {req.name})")
        options = eviction.get("deleteOptions") or {}
        if not isinstance(options, dict):
            raise ApiError.bad_request("Eviction.deleteOptions must be an object")
        pod = await self.storage.get("pods", req.namespace, req.name or "")
        if pod is None:
            raise ApiError.not_found("pods", req.name or "")
        await self.admission_chain.validate(admission.Attributes("CREATE", req, eviction, pod))
        await eviction_budget.spend_budget(self.storage, pod, req.dry_run or options.get("dryRun") == ["All"])
        req.sub = None
        await self.delete(req, options)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

