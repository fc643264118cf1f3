"""The clusterrole-aggregation controller: a ClusterRole with an aggregationRule gets the rules of
every ClusterRole its selectors match (itself excluded), deduplicated, in role-name order."""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

Obj = dict[str, Any]


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj]:
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    out: list[Obj] = []
    for other in sorted(roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == role["metadata"]["name"]:
            continue
        if any(podutil.selector_matches(s, other["metadata"].get("labels")) for s in selectors):
            for rule in other.get("rules") or []:
                if rule not in out:
                    out.append(rule)
    return out


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation"

    def setup(self) -> None:
        self.roles = self.ctx.informer("rbac.authorization.k8s.io", "v1", "clusterroles")
        self.roles.add_handler(self._changed, lambda _o, n: self._changed(n), self._changed)

    def _changed(self, _role: Obj) -> None:
        for r in self.roles.list():  # any role may feed any aggregate
            if r.get("aggregationRule"):
                self.enqueue(r)

    async def sync(self, key: str) -> None:
        role = self.roles.get(key)
        if role is None or not role.get("aggregationRule"):
            return
        rules = aggregated_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return
        try:
            await self.api.replace("rbac.authorization.k8s.io", "v1", "clusterroles", dict(role, rules=rules))
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
