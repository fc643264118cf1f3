"""The registry: generic create/read/update/patch/delete over any registered resource.

Plays the role of kube-apiserver's generic registry store: metadata (uid, creationTimestamp,
generation, managedFields), subresource rules (status ignores spec and vice versa, scale,
binding), finalizers and deletionTimestamp, namespace lifecycle, all through storage.py's
revision-checked transactions. Registry holds reads, shared helpers and the small subresource
actions; the write paths are mixins: writes.py (create/update/replace/scale), patching.py
(PATCH and server-side apply) and deletion.py (delete, namespace finalization, eviction).
HTTP concerns stay in rest.py.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from . import admission, crd, decode, fields, validation
from .allocator import Allocator
from .apirequest import Req, dumps
from .deletion import Deletion
from .errors import ApiError
from .patching import Patching
from .registry import BY_KIND, Resource
from .storage import Storage
from .writes import Writes

__all__ = ["Registry", "Req", "dumps"]

# called with the request and the final object before a create or update is stored
Admission = Callable[[Req, dict], Awaitable[None]]


class Registry(Writes, Patching, Deletion):
    def __init__(self, storage: Storage, allocator: Allocator, admission_plugins: list[str] | None = None):
        self.storage = storage
        self.allocator = allocator
        self.background: set[asyncio.Task] = set()
        self.admission: list[Admission] = []
        self.admission_chain = admission.Chain(storage, admission_plugins)

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
        # NamespaceLifecycle reads through the watch cache, as kube-apiserver's informer
        ns = await self.storage.cached_get("namespaces", None, req.namespace or "", req.reads)
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
        obj = await self.storage.get(req.res.store, req.namespace, req.name or "")
        if obj is None:
            raise ApiError.not_found(req.res.plural, req.name or "", req.res.group)
        if req.sub == "scale":
            return self.to_scale(req.res, obj)
        return crd.as_version(req.res, obj)

    def to_scale(self, res: Resource, obj: dict) -> dict:
        from . import crd
        from .selectors import format_label_selector

        served = crd.served_for(res)
        if served is not None:
            return crd.to_scale(served, obj)
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": format_label_selector((obj.get("spec") or {}).get("selector"))}}

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

    async def _create_if_absent(self, req: Req, obj: dict) -> None:
        """Create a default object; another server (or a controller) having made it first is
        fine, any other failure is the caller's to see."""
        if await self.storage.get(req.res.store, req.namespace, obj["metadata"]["name"]) is not None:
            return
        try:
            await self.create(req, obj)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise

    async def ensure_service_account(self, namespace: str, name: str) -> None:
        await self._create_if_absent(Req(BY_KIND[("", "ServiceAccount")], namespace, user_agent="apiserver"),
                                     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})

    async def ensure_defaults(self) -> None:
        """The namespaces (with their default service accounts), the kubernetes Service and the
        built-in priority classes every cluster has; idempotent and safe with several servers."""
        from .admission.priority import builtin_classes

        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await self._create_if_absent(Req(BY_KIND[("", "Namespace")], None, user_agent="apiserver"),
                                         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await self.ensure_service_account(ns, "default")  # namespaces made by an older server
        for pc in builtin_classes():
            await self._create_if_absent(Req(BY_KIND[("scheduling.k8s.io", "PriorityClass")], None,
                                             user_agent="apiserver"), pc)
        await self.ensure_api_services()
        await self._serve_custom_resources()
        first = str(self.allocator.net.network_address + 1)
        await self._create_if_absent(Req(BY_KIND[("", "Service")], "default", user_agent="apiserver"), {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first, "ports": [{"name": "https", "port": 443, "targetPort": 6443,
                                                    "protocol": "TCP"}]}})

    async def ensure_api_services(self) -> None:
        """An APIService per served group/version, Local and Available, as kube-apiserver's
        aggregator registers them on start (`kubectl get apiservices`)."""
        from .registry import groups

        res = BY_KIND[("apiregistration.k8s.io", "APIService")]
        for group, versions in groups().items():
            for version in versions:
                name = f"{version}.{group}"
                group_min, version_prio = API_SERVICE_PRIORITY.get(group, (16000, 15))
                await self._create_if_absent(Req(res, None, user_agent="apiserver"), {
                    "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": name, "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                    "spec": {"group": group, "version": version, "groupPriorityMinimum": group_min,
                             "versionPriority": version_prio}})
                current = await self.storage.get("apiservices", None, name)
                if current and not (current.get("status") or {}).get("conditions"):
                    def available(cur: dict) -> dict:
                        cur["status"] = {"conditions": [{
                            "type": "Available", "status": "True", "lastTransitionTime": fields.now(),
                            "reason": "Local", "message": "Local APIServices are always available"}]}
                        return cur
                    await self.update(Req(res, None, name, "status", user_agent="apiserver"), available,
                                      precondition_rv=None)


    async def _serve_custom_resources(self) -> None:
        """The CRDs in storage are served from start, and followed afterwards (crd.py)."""
        from . import crd

        await crd.sync(self)
        if not getattr(self, "_crd_follower", None):
            self._crd_follower = asyncio.get_running_loop().create_task(crd.keep_in_sync(self))
            self.background.add(self._crd_follower)

# kube-apiserver's priorities of the built-in groups (groupPriorityMinimum, versionPriority)
API_SERVICE_PRIORITY = {
    "": (18000, 1), "apps": (17800, 15), "events.k8s.io": (17750, 15), "authentication.k8s.io": (17700, 15),
    "authorization.k8s.io": (17600, 15), "autoscaling": (17500, 30), "batch": (17400, 15),
    "certificates.k8s.io": (17300, 15), "networking.k8s.io": (17200, 15), "policy": (17100, 15),
    "rbac.authorization.k8s.io": (17000, 15), "storage.k8s.io": (16800, 15),
    "admissionregistration.k8s.io": (16700, 15), "apiextensions.k8s.io": (16700, 15),
    "scheduling.k8s.io": (16600, 15), "coordination.k8s.io": (16500, 15), "node.k8s.io": (16300, 15),
    "discovery.k8s.io": (16200, 15), "flowcontrol.apiserver.k8s.io": (16100, 21),
    "apiregistration.k8s.io": (18000, 1),
}
