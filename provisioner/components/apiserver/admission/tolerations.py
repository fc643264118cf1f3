"""DefaultTolerationSeconds: pods tolerate not-ready and unreachable nodes for 300 s unless they
say otherwise, so the taint manager evicts them after five minutes (kube-apiserver's plugin)."""

from __future__ import annotations

from . import Attributes, Base

SECONDS = 300
TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _tolerates(tolerations: list, key: str) -> bool:
    for t in tolerations:
        if not isinstance(t, dict) or t.get("effect") not in (None, "", "NoExecute"):
            continue
        if t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"):
            return True
    return False


class DefaultTolerationSeconds(Base):
    name = "DefaultTolerationSeconds"

    async def mutate(self, a: Attributes) -> None:
        if a.resource != ("", "pods") or a.operation != "CREATE" or a.sub or not isinstance(a.obj, dict):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("tolerations", []), list):
            return
        tolerations = spec.get("tolerations") or []
        for key in TAINTS:
            if not _tolerates(tolerations, key):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": SECONDS})
        spec["tolerations"] = tolerations
