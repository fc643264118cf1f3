"""Create, update (read-modify-write), replace and scale: the write paths of the registry.

A mixin of crud.Registry: it relies on the registry's storage, allocator and helpers
(_check_type, _namespace_ok, _validate, to_scale) and on deletion.py for updates that finish a
deletion. Every write goes through storage.py's revision-checked transactions; the admission
hook (the RBAC escalation check) sees the final object just before it is stored.
"""

from __future__ import annotations

import copy
import uuid
from typing import Callable

from . import admission, crd, fields, strategies, validation
from .allocator import Allocator
from .apirequest import Req, rand_suffix, without
from .errors import ApiError
from .storage import Storage

_SCALARS = (str, int, float, bool, type(None))


def json_copy(obj):
    """A deep copy of a decoded JSON tree, about four times faster than copy.deepcopy (no memo;
    every update copies the stored object twice, so this is a good part of a pod binding's cost).
    Anything that is not a dict, list or scalar is handed to deepcopy."""
    kind = type(obj)
    if kind is dict:
        return {k: json_copy(v) for k, v in obj.items()}
    if kind is list:
        return [json_copy(v) for v in obj]
    return obj if kind in _SCALARS else copy.deepcopy(obj)


class Writes:
    storage: Storage
    allocator: Allocator
    admission: list
    admission_chain: admission.Chain

    # create ---------------------------------------------------------------------------------
    async def create(self, req: Req, obj: dict) -> dict:
        res = req.res
        self._check_type(req, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != req.namespace:
                raise ApiError.bad_request("the namespace of the provided object does not match "
                                           "the namespace sent on the request")
            meta["namespace"] = req.namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + rand_suffix()
        req.name = meta.get("name", "")
        await self._namespace_ok(req, creating=True)
        for k in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "managedFields", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = fields.now()
        meta["generation"] = 1
        strategy = strategies.for_resource(res)
        # kube-apiserver's order: defaults at decoding, mutating admission, then the strategy
        validation.default(res.kind, obj)
        await self.admission_chain.mutate(admission.Attributes("CREATE", req, obj))
        strategy.prepare_for_create(req, obj)
        validation.prepare_for_create(res.kind, obj)
        validation.default(res.kind, obj)  # what admission and the strategy added gets its defaults too
        self._validate(req, obj)
        await self._admit(req, obj)
        fields.record(meta, req.manager, "Update", res.group_version,
                      fields.field_set(without(obj, "status"), res.kind))
        await strategy.before_store(self, req, obj, None)
        if req.dry_run:
            return obj
        try:
            out = await self.storage.create(res.store, req.namespace, req.name, obj)
        except ApiError as exc:
            await strategy.store_failed(self, req, obj)
            if exc.reason == "AlreadyExists":
                raise ApiError.already_exists(res.plural, req.name, res.group) from None
            raise
        await strategy.after_create(self, req, out)
        return out

    async def _admit(self, req: Req, obj: dict, old: dict | None = None) -> None:
        """The validating phase: the admission plugins, then the registry's own checks."""
        await self.admission_chain.validate(admission.Attributes("UPDATE" if old else "CREATE", req, obj, old))
        for check in self.admission:
            await check(req, obj)

    # update ---------------------------------------------------------------------------------
    async def update(self, req: Req, mutate: Callable[[dict], dict], *, precondition_rv: str | None,
                     operation: str = "Update", create_if_missing: dict | None = None) -> tuple[dict, bool]:
        """Read-modify-write with retries on conflict; returns (object, created)."""
        res = req.res
        for _attempt in range(16):
            cur = await self.storage.get(res.store, req.namespace, req.name or "")
            if cur is None:
                if create_if_missing is not None:
                    return await self.create(req, create_if_missing), True
                raise ApiError.not_found(res.plural, req.name or "", res.group)
            rv = int(cur["metadata"]["resourceVersion"])
            if precondition_rv and precondition_rv != str(rv):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            stored = cur
            cur = crd.as_version(res, cur)  # a custom object written through another of its versions
            new = mutate(json_copy(cur))
            new = self._finish_update(req, cur, new, operation)
            before = json_copy(new)
            await self.admission_chain.mutate(admission.Attributes("UPDATE", req, new, cur))
            if new != before:  # mutating webhooks changed it: the kind's rules apply again
                self._validate(req, new, check_name=False)
            await self._admit(req, new, cur)
            await strategies.for_resource(res).before_store(self, req, new, cur)
            if req.dry_run:
                return new, False
            if without(new, "metadata") == without(stored, "metadata") and \
                    without(new["metadata"], "managedFields") == without(stored["metadata"], "managedFields"):
                return cur, False  # no-op updates do not bump the resourceVersion
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                await self.storage.delete(res.store, req.namespace, req.name or "", rv)
                await self._after_delete(res, new)
                return new, False
            try:
                return await self.storage.update(res.store, req.namespace, req.name or "", new, rv), False
            except ApiError as exc:
                if exc.reason != "Conflict" or precondition_rv:
                    raise ApiError.conflict(res.plural, req.name or "", res.group) from None
        raise ApiError.conflict(res.plural, req.name or "", res.group)

    def _finish_update(self, req: Req, cur: dict, new: dict, operation: str) -> dict:
        res = req.res
        if not isinstance(new, dict):
            raise ApiError.bad_request("the patched object is not a JSON object")
        self._check_type(req, new)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        old = cur["metadata"]
        if meta.get("name", old["name"]) != old["name"]:
            raise ApiError.bad_request(f'the name of the object ({meta.get("name")}) does not match '
                                       f'the name on the URL ({old["name"]})')
        if res.namespaced and meta.get("namespace", req.namespace) != req.namespace:
            raise ApiError.bad_request("the namespace of the provided object does not match the "
                                       "namespace sent on the request")
        # system fields always come from storage
        for k in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp",
                  "deletionGracePeriodSeconds"):
            if k in old:
                meta[k] = old[k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = old["resourceVersion"]
        if old.get("deletionTimestamp") and len(meta.get("finalizers") or []) > len(old.get("finalizers") or []):
            new_f = set(meta.get("finalizers") or []) - set(old.get("finalizers") or [])
            raise ApiError.invalid(res.kind, old["name"], [("metadata.finalizers", f"Forbidden: no new "
                                   f"finalizers can be added if the object is being deleted, found new "
                                   f"finalizers []string{{{', '.join(repr(f) for f in sorted(new_f))}}}")],
                                   res.group)
        strategy = strategies.for_resource(res)
        if req.sub in ("status", "approval"):
            new = strategies.status_update(req, cur, new, meta, strategy)
        else:
            if res.status and req.sub is None and "status" in cur:
                new["status"] = cur["status"]
            elif res.status and req.sub is None:
                new.pop("status", None)
            if req.sub is None:
                strategy.prepare_for_update(req, new, cur)
        validation.default(res.kind, new)
        self._validate(req, new, check_name=False)
        if without(new, "metadata", "status") != without(cur, "metadata", "status"):
            meta["generation"] = old.get("generation", 1) + 1
        status_only = req.sub in ("status", "approval")
        manager_fields = fields.field_set(new.get("status") if status_only else without(new, "status"),
                                          None if status_only else res.kind)
        fields.record(new["metadata"], req.manager, operation, res.group_version, manager_fields,
                      req.sub or "")
        return new

    async def replace(self, req: Req, obj: dict) -> dict:
        rv = (obj.get("metadata") or {}).get("resourceVersion") if isinstance(obj.get("metadata"), dict) else None
        if req.sub == "scale":
            return await self._scale(req, lambda s: obj, rv)
        if req.sub == "finalize" and req.res.kind == "Namespace":
            req.sub = None
            fin = (obj.get("spec") or {}).get("finalizers") or []
            out, _ = await self.update(req, lambda cur: (cur.setdefault("spec", {}).__setitem__("finalizers", fin), cur)[1],
                                       precondition_rv=rv)
            await self._maybe_finish_namespace(req.name or "")
            return out
        out, _ = await self.update(req, lambda cur: obj, precondition_rv=rv)
        return out

    async def _scale(self, req: Req, change: Callable[[dict], dict], rv: str | None) -> dict:
        def mutate(cur: dict) -> dict:
            scale = change(self.to_scale(req.res, cur))
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError.invalid("Scale", req.name or "", [(
                    "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
                    "autoscaling")
            served = crd.served_for(req.res)
            if served is not None:
                crd.set_replicas(served, cur, replicas)
            else:
                cur.setdefault("spec", {})["replicas"] = replicas
            return cur
        req.sub = None
        out, _ = await self.update(req, mutate, precondition_rv=rv)
        return self.to_scale(req.res, out)

