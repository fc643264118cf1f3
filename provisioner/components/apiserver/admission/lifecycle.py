"""NamespaceLifecycle: the namespaces every cluster relies on cannot be deleted.

(Refusing creates in a terminating or missing namespace is the registry's own check,
crud._namespace_ok, since every namespaced write needs it before anything else.)
"""

from __future__ import annotations

from . import Attributes, Base, forbidden

IMMORTAL = ("default", "kube-system", "kube-public")


class NamespaceLifecycle(Base):
    name = "NamespaceLifecycle"

    async def validate(self, a: Attributes) -> None:
        if a.operation == "DELETE" and a.resource == ("", "namespaces") and not a.sub and a.name in IMMORTAL:
            raise forbidden(a, "this namespace may not be deleted")
