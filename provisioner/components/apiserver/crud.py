"""Generic create/read/update/patch/delete over any registered resource.

Plays the role of kube-apiserver's generic registry store: metadata (uid, creationTimestamp,
generation, managedFields), subresource rules (status ignores spec and vice versa, scale,
binding), finalizers and deletionTimestamp, namespace lifecycle, all through storage.py's
revision-checked transactions. HTTP concerns stay in rest.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from . import decode, fields, patch, validation
from .allocator import Allocator
from .errors import ApiError
from .registry import BY_KIND, RESOURCES, Resource
from .storage import Storage

STATUS_RESET_ON_CREATE = {"Deployment", "ReplicaSet", "DaemonSet", "Job", "CertificateSigningRequest"}


@dataclass
class Req:
    res: Resource
    namespace: str | None
    name: str | None = None
    sub: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    user: str = ""
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    @property
    def manager(self) -> str:
        return self.query.get("fieldManager") or fields.default_manager(self.user_agent)

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


def _rand_suffix() -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def _without(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


class Registry:
    def __init__(self, storage: Storage, allocator: Allocator):
        self.storage = storage
        self.allocator = allocator
        self.background: set[asyncio.Task] = set()

    # helpers --------------------------------------------------------------------------------
    def _api_version(self, res: Resource) -> str:
        return res.group_version

    def _check_type(self, req: Req, obj: dict) -> None:
        res = req.res
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != res.kind:
            raise ApiError.bad_request(
                f'{kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                f'no kind "{kind}" is registered for version "{res.group_version}" in scheme')
        if av and av != res.group_version:
            raise ApiError.bad_request(f"the API version in the data ({av}) does not match the "
                                       f"expected API version ({res.group_version})")
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind

    async def _namespace_ok(self, req: Req, creating: bool) -> None:
        if not req.res.namespaced:
            return
        ns = await self.storage.get("namespaces", None, req.namespace or "")
        if ns is None:
            raise ApiError.not_found("namespaces", req.namespace or "")
        if creating and (ns.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden", f'{req.res.plural} "{req.name or ""}" is forbidden: '
                           f"unable to create new content in namespace {req.namespace} because it "
                           "is being terminated", {"name": req.name or "", "kind": req.res.plural})

    def decode_body(self, req: Req, body: bytes, kind: str | None = None) -> dict:
        obj, warnings = decode.decode(body, kind or req.res.kind, req.query.get("fieldValidation"))
        req.warnings += warnings
        return obj

    def _validate(self, req: Req, obj: dict, check_name: bool = True) -> None:
        causes = validation.validate(req.res.kind, obj, check_name_format=check_name)
        if causes:
            raise ApiError.invalid(req.res.kind, obj["metadata"].get("name", ""), causes, req.res.group)

    # reads ----------------------------------------------------------------------------------
    async def get(self, req: Req) -> dict:
        obj = await self.storage.get(req.res.plural, req.namespace, req.name or "")
        if obj is None:
            raise ApiError.not_found(req.res.plural, req.name or "", req.res.group)
        if req.sub == "scale":
            return self.to_scale(req.res, obj)
        return obj

    def to_scale(self, res: Resource, obj: dict) -> dict:
        from .selectors import format_label_selector
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": format_label_selector((obj.get("spec") or {}).get("selector"))}}

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
            meta["name"] = meta["generateName"] + _rand_suffix()
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
        fields.record(meta, req.manager, "Update", res.group_version,
                      fields.field_set(_without(obj, "status"), res.kind))
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
            if res.kind == "Service" and not req.dry_run and not req.sub:
                await self.allocator.allocate_service(new, cur)
            if req.dry_run:
                return new, False
            if _without(new, "metadata") == _without(cur, "metadata") and \
                    _without(new["metadata"], "managedFields") == _without(cur["metadata"], "managedFields"):
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
        if _without(new, "metadata", "status") != _without(cur, "metadata", "status"):
            meta["generation"] = old.get("generation", 1) + 1
        status_only = req.sub in ("status", "approval")
        manager_fields = fields.field_set(new.get("status") if status_only else _without(new, "status"),
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

    # patch ----------------------------------------------------------------------------------
    async def patch(self, req: Req, ctype: str, body: bytes) -> tuple[dict, bool]:
        res = req.res
        ctype = ctype.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return await self.apply(req, body)
        if ctype not in ("application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json"):
            raise ApiError.unsupported_media(ctype)
        doc = decode.parse_json(body)
        if ctype == "application/json-patch+json" and not isinstance(doc, list):
            raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        if ctype != "application/json-patch+json" and not isinstance(doc, dict):
            raise ApiError.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        type_name = "Scale" if req.sub == "scale" else res.kind

        def apply_patch(cur: dict) -> dict:
            if ctype == "application/json-patch+json":
                out = patch.json_patch(cur, doc)
            elif ctype == "application/merge-patch+json":
                out = patch.merge_patch(cur, doc)
            else:
                out = patch.strategic_merge(cur, doc, type_name)
            if not isinstance(out, dict):
                raise ApiError.bad_request("the patched object is not a JSON object")
            out, warnings = decode.prune(out, type_name, req.query.get("fieldValidation") or "Warn")
            req.warnings[:] = warnings
            return out

        if req.sub == "scale":
            return await self._scale(req, apply_patch, None), False
        return await self.update(req, apply_patch, precondition_rv=None)

    async def apply(self, req: Req, body: bytes) -> tuple[dict, bool]:
        """Server-side apply: merge the applied configuration, record the manager's fields."""
        if not req.query.get("fieldManager"):
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                           "Required value: is required for apply patch")
        try:
            applied = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ApiError.bad_request(f"error decoding YAML: {exc}")
        if not isinstance(applied, dict):
            raise ApiError.bad_request("error decoding YAML: the apply patch is not an object")
        applied, warnings = decode.prune(applied, req.res.kind, req.query.get("fieldValidation") or "Strict")
        req.warnings += warnings
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise ApiError.bad_request(f'the name of the object ({meta["name"]}) does not match the '
                                       f'name on the URL ({req.name})')
        if not applied.get("kind") or not applied.get("apiVersion"):
            raise ApiError.bad_request("invalid object type: /, Kind=")
        applied_fields = fields.field_set(applied, req.res.kind)

        def mutate(cur: dict) -> dict:
            return patch.strategic_merge(cur, applied, req.res.kind)

        create = copy.deepcopy(applied)
        create.setdefault("metadata", {})["name"] = req.name
        obj, created = await self.update(req, mutate, precondition_rv=None, operation="Apply",
                                         create_if_missing=create)
        if created or True:
            entries = [e for e in obj["metadata"].get("managedFields") or []
                       if e.get("manager") != req.manager]
            obj_meta = obj["metadata"]
            obj_meta["managedFields"] = entries
            fields.record(obj_meta, req.manager, "Apply", req.res.group_version, applied_fields,
                          req.sub or "")
            if not req.dry_run:
                cur_rv = int(obj_meta["resourceVersion"])
                try:
                    obj = await self.storage.update(req.res.plural, req.namespace, req.name or "", obj, cur_rv)
                except ApiError:
                    pass  # a concurrent writer won; the applied content itself is stored
        return obj, created

    # delete ---------------------------------------------------------------------------------
    async def delete(self, req: Req, options: dict) -> tuple[dict, bool]:
        """Returns (object, deleted now); objects with finalizers only get a deletionTimestamp."""
        res = req.res
        pre = options.get("preconditions") or {}
        for _attempt in range(16):
            cur = await self.storage.get(res.plural, req.namespace, req.name or "")
            if cur is None:
                raise ApiError.not_found(res.plural, req.name or "", res.group)
            meta = cur["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise ApiError.conflict(res.plural, req.name or "", res.group)
            rv = int(meta["resourceVersion"])
            graceful = await self._graceful(res, cur, options)
            if res.kind == "Namespace" or meta.get("finalizers") or graceful:
                if meta.get("deletionTimestamp") and not graceful:
                    return cur, False
                new = copy.deepcopy(cur)
                new["metadata"]["deletionTimestamp"] = meta.get("deletionTimestamp") or fields.now()
                new["metadata"]["deletionGracePeriodSeconds"] = graceful or 0
                if res.kind == "Namespace":
                    new.setdefault("status", {})["phase"] = "Terminating"
                if req.dry_run:
                    return new, False
                try:
                    out = await self.storage.update(res.plural, req.namespace, req.name or "", new, rv)
                except ApiError:
                    continue
                if res.kind == "Namespace":
                    self._spawn(self._finalize_namespace(req.name or ""))
                return out, False
            if req.dry_run:
                return cur, True
            try:
                await self.storage.delete(res.plural, req.namespace, req.name or "", rv)
            except ApiError:
                continue
            await self._after_delete(res, cur)
            return cur, True
        raise ApiError.conflict(res.plural, req.name or "", res.group)

    async def _graceful(self, res: Resource, cur: dict, options: dict) -> int:
        """Grace period for pods bound to an existing node (their kubelet finishes the delete)."""
        if res.kind != "Pod":
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = (cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        node = (cur.get("spec") or {}).get("nodeName")
        if not grace or not node or (cur.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if cur["metadata"].get("deletionTimestamp"):
            return 0 if grace == 0 else int(cur["metadata"].get("deletionGracePeriodSeconds") or grace)
        return int(grace) if await self.storage.get("nodes", None, node) else 0

    async def _after_delete(self, res: Resource, obj: dict) -> None:
        if res.kind == "Service":
            await self.allocator.release_service(obj)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _finalize_namespace(self, name: str) -> None:
        """The namespace controller's job, done here until the controller manager exists."""
        for r in RESOURCES:
            if not r.namespaced:
                continue
            items, _, _ = await self.storage.list(r.plural, name)
            for obj in items:
                req = Req(r, name, obj["metadata"]["name"])
                try:
                    cur = await self.storage.get(r.plural, name, req.name or "")
                    if cur and cur["metadata"].get("finalizers"):
                        continue
                    await self.delete(req, {"gracePeriodSeconds": 0})
                except ApiError:
                    pass
        ns_req = Req(BY_KIND[("", "Namespace")], None, name)

        def drop_kubernetes(cur: dict) -> dict:
            fin = [f for f in (cur.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]
            cur.setdefault("spec", {})["finalizers"] = fin
            return cur
        try:
            await self.update(ns_req, drop_kubernetes, precondition_rv=None)
        except ApiError:
            return
        await self._maybe_finish_namespace(name)

    async def _maybe_finish_namespace(self, name: str) -> None:
        ns = await self.storage.get("namespaces", None, name)
        if ns and ns["metadata"].get("deletionTimestamp") and not (ns.get("spec") or {}).get("finalizers") \
                and not ns["metadata"].get("finalizers"):
            try:
                await self.storage.delete("namespaces", None, name, int(ns["metadata"]["resourceVersion"]))
            except ApiError:
                pass

    # subresource actions ---------------------------------------------------------------------
    async def bind(self, req: Req, binding: dict) -> dict:
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise ApiError.invalid("Binding", req.name or "", [("target.name", "Required value")])

        def mutate(cur: dict) -> dict:
            if (cur.get("spec") or {}).get("nodeName"):
                raise ApiError.conflict("pods/binding", req.name or "")
            if cur["metadata"].get("deletionTimestamp"):
                raise ApiError.conflict("pods/binding", req.name or "")
            cur.setdefault("spec", {})["nodeName"] = node
            conds = [c for c in (cur.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": fields.now()})
            cur.setdefault("status", {})["conditions"] = conds
            return cur
        req.sub = "binding"
        out, _ = await self.update(req, mutate, precondition_rv=None)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def evict(self, req: Req, eviction: dict) -> dict:
        """pods/eviction: a delete honouring the Eviction's DeleteOptions (no disruption budgets
        are served, so nothing can refuse it)."""
        if eviction.get("kind") not in (None, "", "Eviction"):
            raise ApiError.bad_request(f'{eviction["kind"]} is not an Eviction')
        name = (eviction.get("metadata") or {}).get("name")
        if name and name != req.name:
            raise ApiError.bad_request(f"name in URL does not match name in Eviction object ({name} != {req.name})")
        options = eviction.get("deleteOptions") or {}
        if not isinstance(options, dict):
            raise ApiError.bad_request("Eviction.deleteOptions must be an object")
        req.sub = None
        await self.delete(req, options)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def ensure_defaults(self) -> None:
        """The namespaces every cluster has; idempotent and safe with several servers."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if await self.storage.get("namespaces", None, ns) is None:
                try:
                    await self.create(Req(BY_KIND[("", "Namespace")], None, user_agent="apiserver"),
                                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                except ApiError:
                    pass
        if await self.storage.get("services", "default", "kubernetes") is None:
            first = str(self.allocator.net.network_address + 1)
            try:
                await self.create(Req(BY_KIND[("", "Service")], "default", user_agent="apiserver"), {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "kubernetes", "labels": {"component": "apiserver",
                                                                  "provider": "kubernetes"}},
                    "spec": {"clusterIP": first, "ports": [{"name": "https", "port": 443,
                                                            "targetPort": 6443, "protocol": "TCP"}]}})
            except ApiError:
                pass


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
