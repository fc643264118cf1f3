"""LimitRanger: a namespace's LimitRanges give containers default requests and limits and bound
them (kube-apiserver's plugin and wording); claims are bounded by PersistentVolumeClaim items."""

from __future__ import annotations

from .. import quantity
from . import Attributes, Base, forbidden

ANNOTATION = "kubernetes.io/limit-ranger"


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _bounds(kind: str, item: dict, requests: dict, limits: dict) -> list[str]:
    errors = []
    for res, low in sorted((item.get("min") or {}).items()):
        got = requests.get(res)
        if got is None:
            errors.append(f"minimum {res} usage per {kind} is {low}.  No request is specified")
        elif quantity.parse(got) is not None and quantity.parse(low) is not None \
                and quantity.parse(got) < quantity.parse(low):
            errors.append(f"minimum {res} usage per {kind} is {low}, but request is {got}")
    for res, high in sorted((item.get("max") or {}).items()):
        got = limits.get(res) if kind != "PersistentVolumeClaim" else requests.get(res)
        what = "limit" if kind != "PersistentVolumeClaim" else "request"
        if got is None:
            errors.append(f"maximum {res} usage per {kind} is {high}.  No {what} is specified")
        elif quantity.parse(got) is not None and quantity.parse(high) is not None \
                and quantity.parse(got) > quantity.parse(high):
            errors.append(f"maximum {res} usage per {kind} is {high}, but {what} is {got}")
    for res, ratio in sorted((item.get("maxLimitRequestRatio") or {}).items()):
        lim, req = quantity.parse(limits.get(res)), quantity.parse(requests.get(res))
        if lim is not None and req and quantity.parse(ratio) is not None and lim / req > quantity.parse(ratio):
            errors.append(f"{res} max limit to request ratio per {kind} is {ratio}, but provided ratio is "
                          f"{lim / req:.6f}")
    return errors


def _sum(containers: list[dict], field: str) -> dict:
    total: dict = {}
    for c in containers:
        for res, value in ((c.get("resources") or {}).get(field) or {}).items():
            q = quantity.parse(value)
            if q is not None:
                total[res] = total.get(res, 0) + q
    return {k: quantity.fmt(v) for k, v in total.items()}


def _fail(a: Attributes, errors: list[str]) -> None:
    if errors:
        raise forbidden(a, errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")


class LimitRanger(Base):
    name = "LimitRanger"

    async def _items(self, a: Attributes, kind: str) -> list[dict]:
        ranges, _, _ = await self.storage.cached_list("limitranges", a.req.namespace,
                                                      memo=a.req.reads)
        return [i for r in ranges for i in (r.get("spec") or {}).get("limits") or []
                if isinstance(i, dict) and i.get("type") == kind]

    async def mutate(self, a: Attributes) -> None:
        if a.resource != ("", "pods") or a.operation != "CREATE" or a.sub or not isinstance(a.obj, dict):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict):
            return
        items = await self._items(a, "Container")
        notes = []
        for item in items:
            for c in _containers(spec):
                res = c.setdefault("resources", {})
                if not isinstance(res, dict):
                    continue
                for field, source, word in (("requests", "defaultRequest", "request"), ("limits", "default", "limit")):
                    for name, value in (item.get(source) or {}).items():
                        have = res.setdefault(field, {})
                        if isinstance(have, dict) and name not in have:
                            have[name] = value
                            notes.append(f"{name} {word} for container {c.get('name')}")
        if notes:
            meta = a.obj.setdefault("metadata", {})
            meta.setdefault("annotations", {})[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)

    async def validate(self, a: Attributes) -> None:
        if a.operation != "CREATE" or a.sub or not isinstance(a.obj, dict):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict):
            return
        errors: list[str] = []
        if a.resource == ("", "pods"):
            containers = _containers(spec)
            for item in await self._items(a, "Container"):
                for c in containers:
                    res = c.get("resources") or {}
                    errors += _bounds("Container", item, res.get("requests") or {}, res.get("limits") or {})
            for item in await self._items(a, "Pod"):
                errors += _bounds("Pod", item, _sum(containers, "requests"), _sum(containers, "limits"))
        elif a.resource == ("", "persistentvolumeclaims"):
            res = spec.get("resources") or {}
            for item in await self._items(a, "PersistentVolumeClaim"):
                errors += _bounds("PersistentVolumeClaim", item, res.get("requests") or {}, res.get("limits") or {})
        _fail(a, errors)
