"""TokenRequest's binding of a service-account token to an object (spec.boundObjectRef).

A token bound to a Pod, Secret or Node carries that object's name and uid in its
`kubernetes.io` claims (for a pod, also the node it runs on), and stops authenticating as soon
as the object is gone or replaced (auth.py checks). The object must exist with the given uid,
and a pod must run as the service account asked for, as kube-apiserver's TokenRequest REST
requires. A kubelet (NodeRestriction) may only ask for tokens bound to pods on its node.
"""

from __future__ import annotations

from .errors import ApiError
from .nodeauthz import node_name
from .storage import Storage

BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def _forbidden(sa: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'serviceaccounts "{sa}" is forbidden: {message}',
                    {"name": sa, "kind": "serviceaccounts"})


async def bound_claims(storage: Storage, user: str, groups: list[str], namespace: str, sa: str,
                       ref: object) -> tuple[dict, dict | None]:
    """(claims to add under "kubernetes.io", the boundObjectRef to echo) for a TokenRequest."""
    node = node_name(user, groups)
    if not ref:
        if node is not None:
            raise _forbidden(sa, "node requested token not bound to a pod")
        return {}, None
    if not isinstance(ref, dict):
        raise ApiError.bad_request("spec.boundObjectRef must be an object")
    kind, name, uid = ref.get("kind") or "", ref.get("name") or "", ref.get("uid") or ""
    causes = []
    if kind not in BINDABLE:
        causes.append(("spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported values: "Node", '
                       '"Pod", "Secret"'))
    if ref.get("apiVersion") not in (None, "", "v1"):
        causes.append(("spec.boundObjectRef.apiVersion", f'Unsupported value: "{ref.get("apiVersion")}": supported '
                       'values: "v1"'))
    if not name:
        causes.append(("spec.boundObjectRef.name", "Required value"))
    if causes:
        raise ApiError.invalid("TokenRequest", sa, causes, "authentication.k8s.io")
    plural = BINDABLE[kind]
    obj = await storage.get(plural, None if kind == "Node" else namespace, name)
    if obj is None:
        raise ApiError.not_found(plural, name)
    actual = obj["metadata"].get("uid", "")
    if uid and uid != actual:
        raise ApiError(409, "Conflict", f"the UID in the bound object reference ({uid}) does not match the UID in "
                       "record. The object might have been deleted and then recreated",
                       {"name": name, "kind": plural})
    claims: dict = {kind.lower(): {"name": name, "uid": actual}}
    if kind == "Pod":
        spec = obj.get("spec") or {}
        if (spec.get("serviceAccountName") or "default") != sa:
            raise ApiError.bad_request(f'cannot bind token for serviceaccount "{sa}" to pod running with different '
                                       "serviceaccount name.")
        if node is not None and spec.get("nodeName") != node:
            raise _forbidden(sa, "node requested token bound to a pod scheduled on a different node")
        if spec.get("nodeName"):
            node_obj = await storage.get("nodes", None, spec["nodeName"])
            if node_obj is not None:
                claims["node"] = {"name": spec["nodeName"], "uid": node_obj["metadata"].get("uid", "")}
    elif node is not None:
        raise _forbidden(sa, "node requested token not bound to a pod")
    return claims, {"kind": kind, "apiVersion": "v1", "name": name, "uid": actual}


async def binding_alive(storage: Storage, namespace: str, claims: dict) -> bool:
    """Whether the objects a bound token names still exist with the same uids."""
    for kind, plural in BINDABLE.items():
        ref = claims.get(kind.lower())
        if not isinstance(ref, dict) or kind == "Node" and "pod" in claims:
            continue  # a pod's node is informational: the pod binding decides
        getter = getattr(storage, "cached_get", storage.get)
        obj = await getter(plural, None if kind == "Node" else namespace, ref.get("name", ""))
        if obj is None or (ref.get("uid") and obj["metadata"].get("uid") != ref["uid"]):
            return False
    return True
