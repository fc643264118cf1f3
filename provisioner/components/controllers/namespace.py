"""The namespace controller: deleting a namespace deletes everything in it, then the namespace.

A namespace with a deletionTimestamp and the `kubernetes` finalizer is emptied resource by
resource (every namespaced resource discovery lists as deletable); its status conditions say what
is left, as upstream's do. Once nothing remains the finalizer is removed through
namespaces/{name}/finalize and the API server removes the namespace. Content that remains (pods
finishing gracefully, objects with finalizers) makes it look again a little later.
"""

from __future__ import annotations

import logging

from provisioner.components.api.client import ApiStatusError

from . import discovery, podutil
from .base import Controller

log = logging.getLogger(__name__)
FINALIZER = "kubernetes"
RECHECK = 2.0  # seconds between looks while content remains


def conditions(remaining: dict[str, int], finalizers: dict[str, int], failures: list[str],
               now: str) -> list[dict]:
    """The five namespace deletion conditions, from what is left and what failed."""
    def cond(ctype: str, true: bool, reason_true: str, msg_true: str, reason_false: str, msg_false: str) -> dict:
        return {"type": ctype, "status": "True" if true else "False", "lastTransitionTime": now,
                "reason": reason_true if true else reason_false, "message": msg_true if true else msg_false}
    left = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(remaining.items()))
    fins = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
    return [
        cond("NamespaceDeletionDiscoveryFailure", False, "", "", "ResourcesDiscovered",
             "All resources successfully discovered"),
        cond("NamespaceDeletionGroupVersionParsingFailure", False, "", "", "ParsedGroupVersions",
             "All legacy kube types successfully parsed"),
        cond("NamespaceDeletionContentFailure", bool(failures), "ContentDeletionFailed",
             "Failed to delete all resource types, " + "; ".join(failures), "ContentDeleted",
             "All content successfully deleted, may be waiting on finalization"),
        cond("NamespaceContentRemaining", bool(remaining), "SomeResourcesRemain",
             f"Some resources are remaining: {left}", "ContentRemoved", "All content successfully removed"),
        cond("NamespaceFinalizersRemaining", bool(finalizers), "SomeFinalizersRemain",
             f"Some content in the namespace has finalizers remaining: {fins}", "ContentHasNoFinalizers",
             "All content-preserving finalizers finished"),
    ]


def merge_conditions(old: list[dict], new: list[dict]) -> list[dict]:
    """Keep lastTransitionTime where a condition's status did not change."""
    before = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        prev = before.get(c["type"])
        if prev is not None and prev.get("status") == c["status"]:
            c = dict(c, lastTransitionTime=prev.get("lastTransitionTime") or c["lastTransitionTime"])
        out.append(c)
    return out


class NamespaceController(Controller):
    name = "namespace"

    def setup(self) -> None:
        self.namespaces = self.ctx.informer("", "v1", "namespaces")
        self.namespaces.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not podutil.is_terminating(ns):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        resources = [r for r in await discovery.served(self.api)
                     if r.namespaced and {"list", "delete"} <= r.verbs]
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        failures: list[str] = []
        for r in resources:
            try:
                items = (await self.api.list(r.group, r.version, r.plural, key)).get("items") or []
            except ApiStatusError as exc:
                failures.append(f"{r.plural}: {exc}")
                continue
            for obj in items:
                for f in obj["metadata"].get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
                if not podutil.is_terminating(obj):
                    try:
                        await self.api.delete(r.group, r.version, r.plural, obj["metadata"]["name"], key,
                                              propagation_policy="Background")
                    except ApiStatusError as exc:
                        if exc.code != 404:
                            failures.append(f"{r.plural}/{obj['metadata']['name']}: {exc}")
                            continue
            if items:
                left = (await self.api.list(r.group, r.version, r.plural, key)).get("items") or []
                if left:
                    remaining[f"{r.plural}.{r.group}" if r.group else r.plural] = len(left)
        await self._write_conditions(ns, conditions(remaining, finalizers, failures, podutil.rfc3339(podutil.utcnow())))
        if remaining or failures:
            self.queue.add_after(key, RECHECK)
            return
        try:
            ns = await self.api.get("", "v1", "namespaces", key)
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": key, "resourceVersion": ns["metadata"]["resourceVersion"]},
                "spec": {"finalizers": [f for f in (ns.get("spec") or {}).get("finalizers") or []
                                        if f != FINALIZER]}}
            await self.api.request("PUT", f"/api/v1/namespaces/{key}/finalize", body)
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise

    async def _write_conditions(self, ns: dict, conds: list[dict]) -> None:
        old = (ns.get("status") or {}).get("conditions") or []
        merged = merge_conditions(old, conds)
        if merged == old:
            return
        try:
            current = await self.api.get("", "v1", "namespaces", ns["metadata"]["name"])
            current.setdefault("status", {})["conditions"] = merged
            await self.api.replace("", "v1", "namespaces", current, sub="status")
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
