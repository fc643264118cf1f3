"""The disruption controller: PodDisruptionBudget status, which evictions consult.

expectedPods is the sum of `replicas` of the controllers (ReplicaSet, ReplicationController,
StatefulSet) owning the selected pods, or the number of selected pods when none owns them;
desiredHealthy comes from minAvailable, or expectedPods minus maxUnavailable (percentages of
expectedPods rounded up); currentHealthy counts ready pods not being deleted;
disruptionsAllowed = currentHealthy - desiredHealthy (at least 0), with the DisruptionAllowed
condition (SufficientPods / InsufficientPods).
"""

from __future__ import annotations

import math
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

Obj = dict[str, Any]
OWNERS = {"ReplicaSet": ("apps", "v1", "replicasets"), "StatefulSet": ("apps", "v1", "statefulsets"),
          "ReplicationController": ("", "v1", "replicationcontrollers")}


def scaled_up(value: Any, total: int) -> int:
    text = str(value)
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text)


def budget(pdb: Obj, pods: list[Obj], expected: int) -> Obj:
    spec = pdb.get("spec") or {}
    healthy = sum(1 for p in pods if podutil.is_ready(p) and not podutil.is_terminating(p))
    if spec.get("minAvailable") is not None:
        desired = scaled_up(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(0, expected - scaled_up(spec["maxUnavailable"], expected))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    return {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            "disruptionsAllowed": allowed}


class DisruptionController(Controller):
    name = "disruption"
    requires = (("policy", "v1", "poddisruptionbudgets"),)

    def setup(self) -> None:
        self.pdbs = self.ctx.informer("policy", "v1", "poddisruptionbudgets")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.owners = {kind: self.ctx.informer(*gvr) for kind, gvr in OWNERS.items()}
        self.enqueue_all(self.pdbs)
        self.pods.add_handler(self._pod, lambda o, n: (self._pod(o), self._pod(n)), self._pod)

    def _pod(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace") or ""
        for pdb in self.pdbs.by_index("namespace", ns):
            if podutil.selector_matches((pdb.get("spec") or {}).get("selector"), pod["metadata"].get("labels")):
                self.enqueue(pdb)

    def _expected(self, pods: list[Obj]) -> int:
        seen: dict[str, int] = {}
        unowned = 0
        for p in pods:
            ref = podutil.controller_ref(p)
            inf = self.owners.get((ref or {}).get("kind", ""))
            owner = inf.get(f"{p['metadata']['namespace']}/{ref['name']}") if inf is not None and ref else None
            if owner is None:
                unowned += 1
            else:
                seen[owner["metadata"]["uid"]] = int((owner.get("spec") or {}).get("replicas", 1))
        return unowned + sum(seen.values())

    async def sync(self, key: str) -> None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        ns = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.by_index("namespace", ns)
                if podutil.selector_matches((pdb.get("spec") or {}).get("selector"), p["metadata"].get("labels"))]
        old = pdb.get("status") or {}
        status = dict(old, observedGeneration=pdb["metadata"].get("generation", 1),
                      **budget(pdb, pods, self._expected(pods)))
        status.setdefault("disruptedPods", {})
        ok = status["disruptionsAllowed"] > 0
        cond = {"type": "DisruptionAllowed", "status": "True" if ok else "False",
                "reason": "SufficientPods" if ok else "InsufficientPods", "message": "",
                "observedGeneration": status["observedGeneration"]}
        prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        cond["lastTransitionTime"] = prev["lastTransitionTime"] if prev and prev.get("status") == cond["status"] \
            else podutil.rfc3339(podutil.utcnow())
        status["conditions"] = [cond]
        if status == old:
            return
        try:
            await self.api.replace("policy", "v1", "poddisruptionbudgets", dict(pdb, status=status), ns, sub="status")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
