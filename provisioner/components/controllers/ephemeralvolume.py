"""The ephemeral-volume controller: a pod's generic ephemeral volumes get their claims.

For each `spec.volumes[].ephemeral.volumeClaimTemplate` the claim `<pod>-<volume>` is created in
the pod's namespace, owned by the pod (so it goes with it through the garbage collector). A claim
of that name owned by someone else is left alone and reported as an event, as upstream.
"""

from __future__ import annotations

import copy
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

Obj = dict[str, Any]


def claims_for(pod: Obj) -> list[Obj]:
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        template = (v.get("ephemeral") or {}).get("volumeClaimTemplate")
        if template is None:
            continue
        meta = template.get("metadata") or {}
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"{pod['metadata']['name']}-{v['name']}",
                                 "namespace": pod["metadata"]["namespace"],
                                 "labels": dict(meta.get("labels") or {}),
                                 "annotations": dict(meta.get("annotations") or {}),
                                 "ownerReferences": [podutil.owner_ref(pod, "v1", "Pod")]},
                    "spec": copy.deepcopy(template.get("spec") or {})})
    return out


class EphemeralVolumeController(Controller):
    name = "ephemeral-volume"
    requires = (("", "v1", "persistentvolumeclaims"),)

    def setup(self) -> None:
        self.pods = self.ctx.informer("", "v1", "pods")
        self.claims = self.ctx.informer("", "v1", "persistentvolumeclaims")
        self.pods.add_handler(self._pod, lambda _o, n: self._pod(n))
        self.claims.add_handler(on_delete=self._claim_gone)

    def _pod(self, pod: Obj) -> None:
        if any(v.get("ephemeral") for v in (pod.get("spec") or {}).get("volumes") or []):
            self.enqueue(pod)

    def _claim_gone(self, claim: Obj) -> None:
        for ref in claim["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Pod":
                self.queue.add(f"{claim['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or podutil.is_terminating(pod):
            return
        for claim in claims_for(pod):
            existing = self.claims.get(f"{claim['metadata']['namespace']}/{claim['metadata']['name']}")
            if existing is not None:
                if not podutil.owned_by(existing, pod):
                    self.ctx.event(pod, "Warning", "FailedBinding",
                                   f"PVC {claim['metadata']['name']} was not created for pod {key} "
                                   "(pod is not owner)")
                continue
            try:
                await self.api.create("", "v1", "persistentvolumeclaims", claim, claim["metadata"]["namespace"])
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
