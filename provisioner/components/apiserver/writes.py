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

from . import fields, validation
from .allocator import Allocator
from .apirequest import Req, rand_suffix, without
from .errors import ApiError
from .storage import Storage

STATUS_RESET_ON_CREATE = {"Deployment", "ReplicaSet", "DaemonSet", "Job", "CertificateSigningRequest"}


class Writes:
    storage: Storage
    allocator: Allocator
    admission: list

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
        if res.kind in STATUS_RESET_ON_CREATE:
            obj.pop("status", None)
        if res.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if res.kind == "CertificateSigningRequest" and isinstance(obj.get("spec"), dict):
            # who asked is recorded by the server, never taken from the request body
            obj["spec"].update(username=req.user, groups=req.groups or ["system:authenticated"])
            obj["spec"].pop("uid", None)
            obj["spec"].pop("extra", None)
        validation.prepare_for_create(res.kind, obj)
        validation.default(res.kind, obj)
        self._validate(req, obj)
        await self._admit(req, obj)
        fields.record(meta, req.manager, "Update", res.group_version,
                      fields.field_set(without(obj, "status"), res.kind))
        if res.kind == "Service" and not req.dry_run:
            await self.allocator.allocate_service(obj)
        if req.dry_run:
            return obj
        try:
            return await self.storage.create(res.plural, req.namespace, req.name, obj)
        except ApiError as exc:
            if res.kind == "Service":
                await self.allocator.release_service(obj)
            if exc.reason == "AlreadyExists":
                raise ApiError.already_exists(res.plural, req.name, res.group) from None
            raise

    async def _admit(self, req: Req, obj: dict) -> None:
        for check in self.admission:
            await check(req, obj)

    # update ---------------------------------------------------------------------------------
    async def update(self, req: Req, mutate: Callable[[dict], dict], *, precondition_rv: str | None,
                     operation: str = "Update", create_if_missing: dict | None = None) -> tuple[dict, bool]:
        """Read-modify-write with retries on conflict; returns (object, created)."""
        res = req.res
        for _attempt in range(16):
            cur = await self.storage.get(res.plural, req.namespace, req.name or "")
            if cur is None:
                if create_if_missing is not None:
                    return await self.create(req, create_if_missing), True
                raise ApiError.not_found(res.plural, req.name or "", res.group)
            rv = int(cur["metadata"]["resourceVersion"])
            if precondition_rv and precondition_rv != str(rv):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            new = mutate(copy.deepcopy(cur))
            new = self._finish_update(req, cur, new, operation)
            await self._admit(req, new)
            if res.kind == "Service" and not req.dry_run and not req.sub:
                await self.allocator.allocate_service(new, cur)
            if req.dry_run:
                return new, False
            if without(new, "metadata") == without(cur, "metadata") and \
                    without(new["metadata"], "managedFields") == without(cur["metadata"], "managedFields"):
                return cur, False  # no-op updates do not bump the resourceVersion
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                await self.storage.delete(res.plural, req.namespace, req.name or "", rv)
                await self._after_delete(res, new)
                return new, False
            try:
                return await self.storage.update(res.plural, req.namespace, req.name or "", new, rv), False
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
        if req.sub in ("status", "approval"):
            keep = copy.deepcopy(cur)
            keep["status"] = new.get("status", {})
            if req.sub == "approval":  # approvers change conditions only, signers the rest
                keep["status"] = dict(cur.get("status") or {},
                                      conditions=(new.get("status") or {}).get("conditions") or [])
            if res.kind == "CertificateSigningRequest":
                for cond in (keep["status"].get("conditions") or []):
                    if isinstance(cond, dict):
                        cond.setdefault("lastTransitionTime", fields.now())
            for k in ("labels", "annotations", "ownerReferences", "finalizers", "managedFields"):
                keep["metadata"].pop(k, None)
                if k in meta:
                    keep["metadata"][k] = meta[k]
            new = keep
        elif res.status and req.sub is None and "status" in cur:
            new["status"] = cur["status"]
            if res.kind == "CertificateSigningRequest":  # spec is immutable after creation
                new["spec"] = cur.get("spec")
        elif res.status and req.sub is None:
            new.pop("status", None)
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
            cur.setdefault("spec", {})["replicas"] = replicas
            return cur
        req.sub = None
        out, _ = await self.update(req, mutate, precondition_rv=rv)
        return self.to_scale(req.res, out)

