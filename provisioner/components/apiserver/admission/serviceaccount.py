"""ServiceAccount: pods run as a service account that exists, and get its token as a projected
volume (kube-apiserver's plugin and layout).

A pod without serviceAccountName runs as `default`; the account must exist (`error looking up
service account ns/name`). Unless the pod or the account opts out (automountServiceAccountToken:
false), a volume `kube-api-access-<5 random>` is added, projecting a bound token (3607 s, renewed
by the kubelet), the cluster CA from the `kube-root-ca.crt` ConfigMap and the namespace, mounted
read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container. Mirror pods
are left alone: a kubelet's static pods cannot use service accounts. A pod naming no
imagePullSecrets gets the account's.
"""

from __future__ import annotations

from ..apirequest import rand_suffix
from ..validation import MIRROR_ANNOTATION
from . import Attributes, Base, forbidden

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SECONDS = 3607
VOLUME_PREFIX = "kube-api-access-"


def token_volume(name: str) -> dict:
    return {"name": name, "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}],
        "defaultMode": 420}}


class ServiceAccount(Base):
    name = "ServiceAccount"

    @staticmethod
    def _applies(a: Attributes) -> bool:
        if a.resource != ("", "pods") or a.operation != "CREATE" or a.sub or not isinstance(a.obj, dict):
            return False
        notes = (a.obj.get("metadata") or {}).get("annotations") or {}
        return MIRROR_ANNOTATION not in notes and isinstance(a.obj.get("spec"), dict)

    async def mutate(self, a: Attributes) -> None:
        if not self._applies(a):
            return
        assert a.obj is not None
        spec = a.obj["spec"]
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        sa = await self.storage.cached_get("serviceaccounts", a.req.namespace, name)
        if sa is None:
            raise forbidden(a, f'error looking up service account {a.req.namespace}/{name}: serviceaccount '
                               f'"{name}" not found')
        inherited = [{"name": ref["name"]} for ref in sa.get("imagePullSecrets") or []
                     if isinstance(ref, dict) and ref.get("name")]
        if inherited and not spec.get("imagePullSecrets"):
            spec["imagePullSecrets"] = inherited   # as kube-apiserver: the account's, if none
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa.get("automountServiceAccountToken")
        if automount is False:
            return
        containers = [c for key in ("initContainers", "containers") for c in spec.get(key) or []
                      if isinstance(c, dict)]
        if any(m.get("mountPath") == MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []
               if isinstance(m, dict)):
            return  # the pod mounts something of its own there
        volumes = spec.get("volumes") or []
        if not isinstance(volumes, list):
            return
        taken = {v.get("name") for v in volumes if isinstance(v, dict)}
        volume = VOLUME_PREFIX + rand_suffix()
        while volume in taken:
            volume = VOLUME_PREFIX + rand_suffix()
        volumes.append(token_volume(volume))
        spec["volumes"] = volumes
        for c in containers:
            mounts = c.get("volumeMounts") or []
            if isinstance(mounts, list):
                mounts.append({"name": volume, "readOnly": True, "mountPath": MOUNT_PATH})
                c["volumeMounts"] = mounts
