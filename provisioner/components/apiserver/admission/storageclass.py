"""DefaultStorageClass: a claim that names no storage class gets the default one (the class
annotated storageclass.kubernetes.io/is-default-class=true; the newest when several are)."""

from __future__ import annotations

from . import Attributes, Base

DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"


def is_default(sc: dict) -> bool:
    notes = (sc.get("metadata") or {}).get("annotations") or {}
    return notes.get(DEFAULT_ANNOTATION) == "true" or notes.get(BETA_ANNOTATION) == "true"


class DefaultStorageClass(Base):
    name = "DefaultStorageClass"

    async def mutate(self, a: Attributes) -> None:
        if a.resource != ("", "persistentvolumeclaims") or a.operation != "CREATE" or a.sub:
            return
        spec = (a.obj or {}).get("spec")
        if not isinstance(spec, dict) or "storageClassName" in spec:
            return  # "" is a choice: no class
        classes, _, _ = await self.storage.cached_list("storageclasses", None, predicate=is_default)
        if classes:
            newest = max(classes, key=lambda c: (c["metadata"].get("creationTimestamp", ""), c["metadata"]["name"]))
            spec["storageClassName"] = newest["metadata"]["name"]
