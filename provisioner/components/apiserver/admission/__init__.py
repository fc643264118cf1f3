"""Admission: the built-in plugins kube-apiserver enables by default, run on every write.

Order as kube-apiserver: decode and defaults, then the *mutating* phase (plugins may change the
object: default service account and token volume, priority, tolerations, limits, storage
class), then the kind's validation, then the *validating* phase (plugins may only refuse:
node restriction, quota, pod security, RBAC escalation). `--enable-admission-plugins` and
`--disable-admission-plugins` pick plugins by kube-apiserver's names; the default set is
kube-apiserver's. Each plugin is a small module here; this file is the table and the runner.

A plugin sees an Attributes: the operation (CREATE, UPDATE, DELETE), the request (resource,
subresource, namespace, name, user), the new object (None on DELETE) and the stored one.
Refusals are ApiErrors with kube-apiserver's wording (`forbidden()` below for most).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..apirequest import Req
from ..errors import ApiError
from ..storage import Storage


@dataclass
class Attributes:
    operation: str  # CREATE, UPDATE, DELETE
    req: Req
    obj: dict | None
    old: dict | None = None

    @property
    def kind(self) -> str:
        return self.req.res.kind

    @property
    def resource(self) -> tuple[str, str]:
        return self.req.res.group, self.req.res.plural

    @property
    def sub(self) -> str:
        return self.req.sub or ""

    @property
    def name(self) -> str:
        meta = (self.obj or self.old or {}).get("metadata") or {}
        return self.req.name or meta.get("name") or ""

    @property
    def dry_run(self) -> bool:
        return self.req.dry_run


def forbidden(a: Attributes, message: str) -> ApiError:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <message>`."""
    res = a.req.res
    qual = f"{res.plural}.{res.group}" if res.group else res.plural
    what = f'{qual} "{a.name}"' if a.name else qual
    return ApiError(403, "Forbidden", f"{what} is forbidden: {message}",
                    {"name": a.name, "group": res.group, "kind": res.plural})


class Plugin(Protocol):
    name: str

    async def mutate(self, a: Attributes) -> None: ...

    async def validate(self, a: Attributes) -> None: ...


class Base:
    """A plugin that does nothing in the phases it does not override."""
    name = ""

    def __init__(self, storage: Storage, **_: Any):
        self.storage = storage

    async def mutate(self, a: Attributes) -> None:
        return None

    async def validate(self, a: Attributes) -> None:
        return None


def _registry() -> dict[str, type]:
    from . import (
        lifecycle,
        limitranger,
        noderestriction,
        podsecurity,
        priority,
        quota,
        serviceaccount,
        storageclass,
        tolerations,
        webhooks,
    )
    return {
        "NamespaceLifecycle": lifecycle.NamespaceLifecycle,
        "LimitRanger": limitranger.LimitRanger,
        "ServiceAccount": serviceaccount.ServiceAccount,
        "NodeRestriction": noderestriction.NodeRestriction,
        "Priority": priority.Priority,
        "DefaultTolerationSeconds": tolerations.DefaultTolerationSeconds,
        "DefaultStorageClass": storageclass.DefaultStorageClass,
        "PodSecurity": podsecurity.PodSecurity,
        "MutatingAdmissionWebhook": webhooks.MutatingAdmissionWebhook,
        "ValidatingAdmissionWebhook": webhooks.ValidatingAdmissionWebhook,
        "ResourceQuota": quota.ResourceQuota,
    }


# kube-apiserver's default-enabled plugins that are served here, in its order (NodeRestriction is
# not on by default there, but every kubeadm cluster enables it)
DEFAULT = ["NamespaceLifecycle", "LimitRanger", "ServiceAccount", "NodeRestriction", "Priority",
           "DefaultTolerationSeconds", "DefaultStorageClass", "PodSecurity", "MutatingAdmissionWebhook",
           "ValidatingAdmissionWebhook", "ResourceQuota"]
# kube-apiserver plugins accepted by name that have nothing to do here (or are done elsewhere)
KNOWN_ELSEWHERE = {"TaintNodesByCondition", "PersistentVolumeClaimResize", "RuntimeClass",
                   "CertificateApproval", "CertificateSigning", "ClusterTrustBundleAttest",
                   "CertificateSubjectRestriction", "DefaultIngressClass", "StorageObjectInUseProtection",
                   "ValidatingAdmissionPolicy",
                   "MutatingAdmissionPolicy", "AlwaysAdmit", "NamespaceExists", "NamespaceAutoProvision"}


def plugin_names(enable: str | None, disable: str | None) -> list[str]:
    """The plugins to run: the defaults plus --enable-admission-plugins, minus --disable-...;
    one clear message for a name kube-apiserver would not know either."""
    def split(value: str | None, flag: str) -> list[str]:
        names = [n.strip() for n in (value or "").split(",") if n.strip()]
        for n in names:
            if n not in DEFAULT and n not in KNOWN_ELSEWHERE:
                raise ValueError(f"{flag}: unknown admission plugin {n!r}; known: "
                                 f"{', '.join(sorted(set(DEFAULT) | KNOWN_ELSEWHERE))}")
        return names
    enabled, disabled = split(enable, "--enable-admission-plugins"), split(disable, "--disable-admission-plugins")
    del enabled  # the defaults already hold every plugin served here
    return [n for n in DEFAULT if n not in disabled]


class Chain:
    def __init__(self, storage: Storage, names: list[str] | None = None, **options: Any):
        table = _registry()
        self.plugins: list[Plugin] = [table[n](storage, **options) for n in (names or DEFAULT) if table.get(n)]

    async def mutate(self, a: Attributes) -> None:
        for p in self.plugins:
            await p.mutate(a)

    async def validate(self, a: Attributes) -> None:
        for p in self.plugins:
            await p.validate(a)
