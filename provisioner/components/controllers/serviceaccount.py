"""The serviceaccount controller: a `default` ServiceAccount in every active namespace.

Keys are namespace names; a namespace being added, or its `default` account being deleted, makes
the controller (re)create it. Terminating namespaces are left alone (the API server refuses
creates there anyway).
"""

from __future__ import annotations

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def setup(self) -> None:
        self.namespaces = self.ctx.informer("", "v1", "namespaces")
        self.accounts = self.ctx.informer("", "v1", "serviceaccounts")
        self.namespaces.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))
        self.accounts.add_handler(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or podutil.is_terminating(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        for name in ACCOUNTS:
            if self.accounts.get(f"{key}/{name}") is not None:
                continue
            try:
                await self.api.create("", "v1", "serviceaccounts",
                                      {"apiVersion": "v1", "kind": "ServiceAccount",
                                       "metadata": {"name": name, "namespace": key}}, key)
            except ApiStatusError as exc:
                if exc.code != 409:  # exists already; anything else is retried (403 too: RBAC may change)
                    raise
