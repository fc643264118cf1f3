"""ResourceQuota: creates in a namespace stay within its quotas (kube-apiserver's plugin and wording).

Object counts (`pods`, `services`, `configmaps`, ..., `count/<resource>[.<group>]`) and pod
compute (`requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`, `limits.memory`) and
claim storage (`requests.storage`, `persistentvolumeclaims`) are counted from storage at the
moment of the request; the admitted use is written to the quota's status (hard and used), as
kube-apiserver's quota evaluator does, so `kubectl describe quota` shows it. Terminal pods
(Succeeded/Failed) do not count.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from .. import quantity
from . import Attributes, Base, forbidden

COUNTED = {("", "pods"): "pods", ("", "services"): "services", ("", "configmaps"): "configmaps",
           ("", "secrets"): "secrets", ("", "persistentvolumeclaims"): "persistentvolumeclaims",
           ("", "replicationcontrollers"): "replicationcontrollers", ("", "resourcequotas"): "resourcequotas"}
POD_COMPUTE = {"requests.cpu": ("requests", "cpu"), "cpu": ("requests", "cpu"),
               "requests.memory": ("requests", "memory"), "memory": ("requests", "memory"),
               "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory"),
               "requests.ephemeral-storage": ("requests", "ephemeral-storage"),
               "limits.ephemeral-storage": ("limits", "ephemeral-storage")}


def _live_pod(p: dict) -> bool:
    return (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def pod_usage(pod: dict, hard_key: str) -> Decimal:
    field, res = POD_COMPUTE[hard_key]
    total = Decimal(0)
    for c in _containers(pod):
        q = quantity.parse(((c.get("resources") or {}).get(field) or {}).get(res))
        total += q or 0
    return total


def _count_keys(group: str, plural: str) -> list[str]:
    keys = [f"count/{plural}.{group}" if group else f"count/{plural}"]
    if (group, plural) in COUNTED:
        keys.append(COUNTED[(group, plural)])
    return keys


def _scope_matches(scope: str, pod: dict, operator: str = "Exists", values: list | None = None) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope in ("BestEffort", "NotBestEffort"):
        best = all(not (c.get("resources") or {}).get("requests") and not (c.get("resources") or {}).get("limits")
                   for c in _containers(pod))
        return best == (scope == "BestEffort")
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        return {"In": name in (values or []), "NotIn": name not in (values or []),
                "Exists": bool(name), "DoesNotExist": not name}.get(operator, False)
    return False


def in_scopes(quota: dict, obj: dict, resource: tuple[str, str] = ("", "pods")) -> bool:
    """Whether a quota's scopes (spec.scopes, spec.scopeSelector) take this object in: scoped
    quotas count pods only, as Kubernetes' quota evaluators do."""
    spec = quota.get("spec") or {}
    scopes = [(s, "Exists", None) for s in spec.get("scopes") or []]
    scopes += [(e.get("scopeName"), e.get("operator"), e.get("values"))
               for e in ((spec.get("scopeSelector") or {}).get("matchExpressions") or []) if isinstance(e, dict)]
    if not scopes:
        return True
    if resource != ("", "pods"):
        return False
    return all(_scope_matches(s, obj, op, vals) for s, op, vals in scopes)


class ResourceQuota(Base):
    name = "ResourceQuota"

    async def _usage(self, a: Attributes, key: str, quota: dict) -> Decimal:
        ns = a.req.namespace

        def counted_pod(p: dict) -> bool:
            return _live_pod(p) and in_scopes(quota, p)
        group, plural = a.resource
        if key in _count_keys(group, plural):
            pred = counted_pod if plural == "pods" and not group else None
            items, _, _ = await self.storage.list(plural, ns, predicate=pred)
            return Decimal(len(items))
        if key in POD_COMPUTE:
            pods, _, _ = await self.storage.list("pods", ns, predicate=counted_pod)
            return sum((pod_usage(p, key) for p in pods), Decimal(0))
        if key == "requests.storage":
            claims, _, _ = await self.storage.list("persistentvolumeclaims", ns)
            return sum((quantity.parse((((c.get("spec") or {}).get("resources") or {}).get("requests") or {})
                                       .get("storage")) or 0 for c in claims), Decimal(0))
        return Decimal(0)

    def _requested(self, a: Attributes, key: str) -> Decimal | None:
        group, plural = a.resource
        if key in _count_keys(group, plural):
            return Decimal(1)
        if plural == "pods" and not group and key in POD_COMPUTE:
            return pod_usage(a.obj or {}, key)
        if plural == "persistentvolumeclaims" and not group and key == "requests.storage":
            spec = (a.obj or {}).get("spec") or {}
            return quantity.parse(((spec.get("resources") or {}).get("requests") or {}).get("storage")) or Decimal(0)
        return None

    async def validate(self, a: Attributes) -> None:
        if a.operation != "CREATE" or a.sub or not a.req.namespace or not isinstance(a.obj, dict) or a.dry_run:
            return
        quotas, _, _ = await self.storage.cached_list("resourcequotas", a.req.namespace)
        for q in sorted(quotas, key=lambda q: q["metadata"]["name"]):
            hard = (q.get("spec") or {}).get("hard") or {}
            relevant = {k: v for k, v in hard.items() if self._requested(a, k) is not None}
            if not relevant or not in_scopes(q, a.obj, a.resource):
                continue
            name = q["metadata"]["name"]
            if a.resource == ("", "pods"):
                missing = sorted(k for k in relevant if k in POD_COMPUTE and any(
                    POD_COMPUTE[k][1] not in ((c.get("resources") or {}).get(POD_COMPUTE[k][0]) or {})
                    for c in _containers(a.obj)))
                if missing:
                    who = ",".join(str(c.get("name")) for c in _containers(a.obj))
                    raise forbidden(a, f"failed quota: {name}: must specify {','.join(missing)} for: {who}")
            used = {k: await self._usage(a, k, q) for k in relevant}
            over = sorted(k for k, limit in relevant.items()
                          if quantity.parse(limit) is not None
                          and used[k] + (self._requested(a, k) or 0) > quantity.parse(limit))
            if over:
                def show(values: dict) -> str:
                    return ",".join(f"{k}={values[k]}" for k in over)
                requested = {k: quantity.fmt(self._requested(a, k) or Decimal(0)) for k in over}
                raise forbidden(a, f"exceeded quota: {name}, requested: {show(requested)}, used: "
                                   f"{show({k: quantity.fmt(used[k]) for k in over})}, limited: {show(relevant)}")
            await self._record(q, {k: quantity.fmt(used[k] + (self._requested(a, k) or 0)) for k in relevant})

    async def _record(self, q: dict, used: dict) -> None:
        """The admitted use as the quota's status; a concurrent writer wins (the next request
        recomputes from storage anyway)."""
        new = copy.deepcopy(q)
        status = new.setdefault("status", {})
        status["hard"] = dict((q.get("spec") or {}).get("hard") or {})
        status["used"] = dict(status.get("used") or {}, **used)
        if new != q:
            try:
                await self.storage.update("resourcequotas", q["metadata"]["namespace"], q["metadata"]["name"], new,
                                          int(q["metadata"]["resourceVersion"]))
            except Exception as exc:  # noqa: BLE001 - a lost race only delays the status
                if getattr(exc, "reason", "") != "Conflict":
                    raise
