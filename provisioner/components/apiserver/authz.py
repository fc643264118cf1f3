"""The authorizer chain of `--authorization-mode` (Node, RBAC, AlwaysAllow, AlwaysDeny).

As kube-apiserver: each mode in order answers allow, deny or no opinion; the first allow or
deny decides, and no opinion from all of them is a denial. Requests are described by
Attributes (the same shape SubjectAccessReview carries), so HTTP requests, reviews and
admission checks ask the same question. The Node authorizer is in nodeauthz.py, RBAC in rbac.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .rbac import Authorizer as RBAC

ALLOW, DENY, NO_OPINION = "allow", "deny", "no-opinion"
MODES = ("Node", "RBAC", "AlwaysAllow", "AlwaysDeny")


@dataclass
class Attributes:
    user: str
    groups: list[str]
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    path: str | None = None  # set for non-resource requests
    field_selector: str = ""
    label_selector: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def resource_request(self) -> bool:
        return self.path is None


class Mode(Protocol):
    async def decide(self, a: Attributes) -> tuple[str, str]: ...


class RBACMode:
    def __init__(self, rbac: RBAC):
        self.rbac = rbac

    async def decide(self, a: Attributes) -> tuple[str, str]:
        if a.resource_request:
            ok = await self.rbac.allowed(a.user, a.groups, a.verb, a.group, a.resource, a.subresource,
                                         a.namespace, a.name)
        else:
            ok = await self.rbac.allowed_url(a.user, a.groups, a.verb, a.path or "")
        return (ALLOW, "") if ok else (NO_OPINION, "")


class Always:
    def __init__(self, decision: str):
        self.decision = decision

    async def decide(self, a: Attributes) -> tuple[str, str]:
        return self.decision, ""


class Chain:
    def __init__(self, modes: list[Mode]):
        self.modes = modes

    async def decide(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason): the reason of the deciding or last opinionated mode."""
        reasons = []
        for mode in self.modes:
            decision, reason = await mode.decide(a)
            if decision == ALLOW:
                return True, reason
            if reason:
                reasons.append(reason)
            if decision == DENY:
                return False, "; ".join(reasons)
        return False, "; ".join(reasons)


def parse_modes(value: str | None) -> list[str]:
    """`--authorization-mode`, comma-separated; one clear message for an unknown mode."""
    modes = [m.strip() for m in (value or "Node,RBAC").split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise ValueError(f"--authorization-mode: unknown mode {m!r}; choose from {', '.join(MODES)}")
    if len(set(modes)) != len(modes):
        raise ValueError(f"--authorization-mode: {value!r} names a mode twice")
    return modes


class Authorizer:
    """The chain behind the RBAC-shaped calls the rest of the server makes."""

    def __init__(self, chain: Chain, rbac: RBAC):
        self.chain = chain
        self.rbac = rbac

    async def allowed(self, user: str, groups: list[str], verb: str, group: str, resource: str,
                      sub: str | None, namespace: str | None, name: str | None,
                      field_selector: str = "", label_selector: str = "") -> bool:
        ok, _ = await self.chain.decide(Attributes(user, list(groups), verb, group, resource, sub, namespace,
                                                   name, field_selector=field_selector,
                                                   label_selector=label_selector))
        return ok

    async def why_not(self, a: Attributes) -> tuple[bool, str]:
        return await self.chain.decide(a)

    async def allowed_url(self, user: str, groups: list[str], verb: str, path: str) -> bool:
        ok, _ = await self.chain.decide(Attributes(user, list(groups), verb, path=path))
        return ok

    async def rules_for(self, user: str, groups: list[str], namespace: str | None) -> list:
        return await self.rbac.rules_for(user, groups, namespace)


def build(modes: list[str], rbac: RBAC, storage) -> Authorizer:  # noqa: ANN001 - storage.Storage
    from .nodeauthz import NodeAuthorizer

    table = {"Node": lambda: NodeAuthorizer(storage), "RBAC": lambda: RBACMode(rbac),
             "AlwaysAllow": lambda: Always(ALLOW), "AlwaysDeny": lambda: Always(DENY)}
    return Authorizer(Chain([table[m]() for m in modes]), rbac)
