"""Priority: a pod's spec.priority comes from its priorityClassName (kube-apiserver's plugin).

The built-in classes system-node-critical (2000001000) and system-cluster-critical (2000000000)
always exist (the server creates them at start, crud.ensure_defaults); a class marked
globalDefault names the priority of pods without a class; otherwise it is 0. PriorityClass
writes are checked too: only one global default.
"""

from __future__ import annotations

from . import Attributes, Base, forbidden

SYSTEM_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
DEFAULT_PREEMPTION = "PreemptLowerPriority"


def builtin_classes() -> list[dict]:
    descriptions = {"system-node-critical": "Used for system critical pods that must not be moved from their "
                    "current node.", "system-cluster-critical": "Used for system critical pods that must run "
                    "in the cluster, but can be moved to another node if necessary."}
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "description": descriptions[name], "preemptionPolicy": DEFAULT_PREEMPTION}
            for name, value in SYSTEM_CLASSES.items()]


class Priority(Base):
    name = "Priority"

    async def mutate(self, a: Attributes) -> None:
        if a.resource != ("", "pods") or a.operation != "CREATE" or a.sub or not isinstance(a.obj, dict):
            return
        spec = a.obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        name = spec.get("priorityClassName") or ""
        if name:
            pc = await self.storage.cached_get("priorityclasses", None, name)
            if pc is None:
                raise forbidden(a, f"no PriorityClass with name {name} was found")
            value, policy = pc.get("value", 0), pc.get("preemptionPolicy") or DEFAULT_PREEMPTION
        else:
            default = await self._global_default()
            value = default.get("value", 0) if default else 0
            policy = (default or {}).get("preemptionPolicy") or DEFAULT_PREEMPTION
            if default:
                spec["priorityClassName"] = default["metadata"]["name"]
        if spec.get("priority") is not None and spec["priority"] != value:
            raise forbidden(a, f"the integer value of priority ({spec['priority']}) must not be provided in "
                               f"pod spec; priority admission controller computed {value} from the given "
                               "PriorityClass name")
        spec["priority"] = value
        spec.setdefault("preemptionPolicy", policy)

    async def _global_default(self) -> dict | None:
        classes, _, _ = await self.storage.cached_list("priorityclasses", None, predicate=lambda c: c.get("globalDefault") is True)
        # several can exist after races; Kubernetes takes the one with the lowest value
        return min(classes, key=lambda c: c.get("value", 0)) if classes else None

    async def validate(self, a: Attributes) -> None:
        if a.resource != ("scheduling.k8s.io", "priorityclasses") or a.operation not in ("CREATE", "UPDATE"):
            return
        if not isinstance(a.obj, dict) or a.obj.get("globalDefault") is not True:
            return
        other = await self._global_default()
        if other and other["metadata"]["name"] != a.name:
            raise forbidden(a, f"PriorityClass {other['metadata']['name']} is already marked as default. "
                               "Only one default can exist")
