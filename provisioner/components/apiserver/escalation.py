"""RBAC escalation prevention: nobody grants permissions they do not hold.

Kubernetes' rule, enforced here as an admission check on every stored write of an RBAC object
(writes.Writes calls it with the final object, so create, update, patch and apply are covered):

- a Role or ClusterRole may be written only by a caller who already holds every rule it grants
  (in the role's namespace, or cluster-wide for a ClusterRole), or who has the `escalate` verb
  on that role; an aggregationRule needs `escalate` or full authority;
- a RoleBinding or ClusterRoleBinding may be written only by a caller who holds every rule of
  the role it references (in the binding's namespace, or cluster-wide), or who has the `bind`
  verb on that role.

`system:masters` is exempt, as in Kubernetes. Rules are compared after breaking them into
single verb/group/resource/name (or verb/URL) pieces, each of which some held rule must cover.
"""

from __future__ import annotations

import json
from typing import Iterator

from .apirequest import Req
from .errors import ApiError
from .rbac import SUPERUSER_GROUP, Authorizer, R, rule
from .storage import Storage

RBAC_GROUP = "rbac.authorization.k8s.io"
FULL_AUTHORITY = [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]


def _atoms(r: R) -> Iterator[R]:
    """One rule per verb x group x resource x name (or verb x URL), as Kubernetes' BreakdownRule."""
    verbs = r.get("verbs") or []
    for group in r.get("apiGroups") or []:
        for resource in r.get("resources") or []:
            for verb in verbs:
                names = r.get("resourceNames") or []
                for name in names or [None]:
                    atom: R = {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
                    if name is not None:
                        atom["resourceNames"] = [name]
                    yield atom
    for url in r.get("nonResourceURLs") or []:
        for verb in verbs:
            yield {"verbs": [verb], "nonResourceURLs": [url]}


def _covers_values(held: list[str], wanted: list[str]) -> bool:
    return "*" in held or all(w in held for w in wanted)


def _covers_resources(held: list[str], wanted: list[str]) -> bool:
    if "*" in held:
        return True
    for res in wanted:
        if res in held:
            continue
        if "/" not in res or f"*/{res.split('/', 1)[1]}" not in held:
            return False
    return True


def _covers_urls(held: list[str], wanted: list[str]) -> bool:
    for url in wanted:
        if not any(h == "*" or h == url or (h.endswith("*") and url.startswith(h[:-1])) for h in held):
            return False
    return True


def rule_covers(owner: R, atom: R) -> bool:
    """Whether the held rule `owner` grants everything the single-piece rule `atom` does."""
    names = owner.get("resourceNames") or []
    wanted_names = atom.get("resourceNames") or []
    return (_covers_values(owner.get("verbs") or [], atom.get("verbs") or [])
            and _covers_values(owner.get("apiGroups") or [], atom.get("apiGroups") or [])
            and _covers_resources(owner.get("resources") or [], atom.get("resources") or [])
            and _covers_urls(owner.get("nonResourceURLs") or [], atom.get("nonResourceURLs") or [])
            and (not names or (bool(wanted_names) and all(n in names for n in wanted_names))))


def not_held(held: list[R], requested: list[R]) -> list[R]:
    """The pieces of `requested` no rule in `held` covers (empty: no escalation)."""
    return [atom for r in requested if isinstance(r, dict) for atom in _atoms(r)
            if not any(rule_covers(h, atom) for h in held)]


def _render(atom: R) -> str:
    """A rule as Kubernetes prints it in escalation errors: {APIGroups:[""], Resources:[...], ...}."""
    def q(values: list[str]) -> str:
        return "[" + " ".join(json.dumps(v) for v in values) + "]"
    if "nonResourceURLs" in atom:
        return f"{{NonResourceURLs:{q(atom['nonResourceURLs'])}, Verbs:{q(atom['verbs'])}}}"
    out = f"{{APIGroups:{q(atom['apiGroups'])}, Resources:{q(atom['resources'])}"
    if atom.get("resourceNames"):
        out += f", ResourceNames:{q(atom['resourceNames'])}"
    return out + f", Verbs:{q(atom['verbs'])}}}"


class EscalationCheck:
    """The admission hook crud.Registry runs before storing an RBAC object."""

    def __init__(self, storage: Storage, authz: Authorizer):
        self.storage = storage
        self.authz = authz

    def _forbidden(self, req: Req, obj: dict, why: str) -> ApiError:
        name = (obj.get("metadata") or {}).get("name") or req.name or ""
        plural = req.res.plural
        return ApiError(403, "Forbidden", f'{plural}.{RBAC_GROUP} "{name}" is forbidden: {why}',
                        {"name": name, "group": RBAC_GROUP, "kind": plural})

    def _who(self, req: Req) -> str:
        groups = " ".join(json.dumps(g) for g in req.groups)
        return f'user "{req.user}" (groups=[{groups}])'

    async def __call__(self, req: Req, obj: dict) -> None:
        if req.res.group != RBAC_GROUP or SUPERUSER_GROUP in req.groups:
            return
        ns = req.namespace if req.res.namespaced else None
        name = (obj.get("metadata") or {}).get("name") or req.name
        if req.res.kind in ("Role", "ClusterRole"):
            if await self.authz.allowed(req.user, req.groups, "escalate", RBAC_GROUP, req.res.plural,
                                        None, ns, name):
                return
            held = await self.authz.rules_for(req.user, req.groups, ns)
            if obj.get("aggregationRule") and not_held(held, FULL_AUTHORITY):
                raise self._forbidden(req, obj, "must have cluster-admin privileges to use the "
                                      "aggregationRule")
            requested = obj.get("rules") or []
        else:
            ref = obj.get("roleRef") or {}
            role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
            role_name = ref.get("name") or ""
            if await self.authz.allowed(req.user, req.groups, "bind", RBAC_GROUP, role_plural, None,
                                        ns, role_name):
                return
            role = await self.storage.get(role_plural, ns if role_plural == "roles" else None, role_name)
            if role is None:
                raise self._forbidden(req, obj, f'{role_plural}.{RBAC_GROUP} "{role_name}" not found')
            held = await self.authz.rules_for(req.user, req.groups, ns)
            requested = role.get("rules") or []
        missing = not_held(held, requested)
        if missing:
            raise self._forbidden(req, obj, f"{self._who(req)} is attempting to grant RBAC permissions "
                                  "not currently held:\n" + "\n".join(_render(a) for a in missing))
