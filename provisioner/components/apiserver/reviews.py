"""Delegated authentication and authorization: TokenReview, SubjectAccessReview and
LocalSubjectAccessReview, as a kubelet's webhook authentication/authorization asks them.

- authentication.k8s.io/v1 TokenReview: is this bearer token valid (for these audiences), and
  whose is it? Answered by the same authenticator requests go through (auth.py).
- authorization.k8s.io/v1 SubjectAccessReview: may user/groups do this? LocalSubjectAccessReview
  is the same question scoped to the namespace in its URL. Answered by the authorizer chain of
  --authorization-mode (authz.py), so a node's question gets the Node authorizer's answer.
Create-only and never stored, as in Kubernetes; the caller needs `create` on the review
resource (the default roles system:auth-delegator and system:node grant it).
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .auth import Authenticator
from .authz import Attributes, Chain
from .errors import ApiError
from .selfsubject import AUTHN, AUTHZ, _read, _string

KINDS = {(AUTHN, "tokenreviews"): "TokenReview",
         (AUTHZ, "subjectaccessreviews"): "SubjectAccessReview",
         (AUTHZ, "localsubjectaccessreviews"): "LocalSubjectAccessReview"}


def served(parts: list[str]) -> tuple[str, str, str | None] | None:
    """(group, plural, namespace) when the path after /apis names one of these reviews."""
    if len(parts) == 3 and parts[1] == "v1" and (parts[0], parts[2]) in KINDS \
            and parts[2] != "localsubjectaccessreviews":
        return parts[0], parts[2], None
    if len(parts) == 5 and parts[1] == "v1" and parts[2] == "namespaces" \
            and (parts[0], parts[4]) == (AUTHZ, "localsubjectaccessreviews"):
        return parts[0], parts[4], parts[3]
    return None


async def handle(request: web.Request, authn: Authenticator, chain: Chain, group: str, plural: str,
                 namespace: str | None) -> web.Response:
    from .rest import json_response

    kind = KINDS[(group, plural)]
    user, groups = request["user"]
    if request.method != "POST":
        raise ApiError.method_not_allowed()
    allowed, _ = await chain.decide(Attributes(user, list(groups), "create", group, plural,
                                               namespace=namespace))
    if not allowed:
        raise ApiError.forbidden(user, "create", plural, group, namespace)
    body = await _read(request, group, kind)
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise ApiError.bad_request("spec must be an object")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    out: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/v1",
                           "metadata": {"creationTimestamp": None}, "spec": copy.deepcopy(spec)}
    if namespace:
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request("the namespace of the provided object does not match the "
                                       "namespace sent on the request")
        out["metadata"]["namespace"] = namespace
    if kind == "TokenReview":
        out["status"] = await _token(authn, spec)
    else:
        out["status"] = await _access(chain, kind, spec, namespace)
    return json_response(out, 201)


async def _token(authn: Authenticator, spec: dict) -> dict:
    token = _string(spec, "token")
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ApiError.bad_request("spec.audiences must be a list of strings")
    if not token:
        raise ApiError.invalid("TokenReview", "", [("spec.token", "Required value: token must be specified")],
                               AUTHN)
    found = await authn.review(token, audiences or None)
    if found is None:
        return {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
    info: dict[str, Any] = {"username": found.name}
    if found.uid:
        info["uid"] = found.uid
    info["groups"] = list(found.groups)
    if found.extra:
        info["extra"] = found.extra
    return {"authenticated": True, "user": info, "audiences": found.audiences}


def _attributes(kind: str, spec: dict, namespace: str | None) -> Attributes:
    user, groups = _string(spec, "user"), spec.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ApiError.bad_request("spec.groups must be a list of strings")
    res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes = []
    if isinstance(res, dict) == isinstance(nonres, dict):
        causes.append(("spec.resourceAttributes", 'Invalid value: "null": exactly one of '
                       "nonResourceAttributes or resourceAttributes must be specified"))
    if not user and not groups:
        causes.append(("spec.user", 'Invalid value: "": at least one of user or group must be specified'))
    if namespace is not None:
        if isinstance(nonres, dict):
            causes.append(("spec.nonResourceAttributes", "Invalid value: \"\": disallowed on this kind of request"))
        elif isinstance(res, dict) and (res.get("namespace") or "") != namespace:
            causes.append(("spec.resourceAttributes.namespace",
                           f'Invalid value: "{res.get("namespace") or ""}": must match metadata.namespace'))
    if causes:
        raise ApiError.invalid(kind, "", causes, AUTHZ)
    extra = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
    if isinstance(nonres, dict):
        return Attributes(user, groups, _string(nonres, "verb"), path=_string(nonres, "path"), extra=extra)
    assert isinstance(res, dict)
    selectors = {k: res.get(k) for k in ("fieldSelector", "labelSelector")}
    return Attributes(user, groups, _string(res, "verb"), _string(res, "group"), _string(res, "resource"),
                      _string(res, "subresource") or None, _string(res, "namespace") or None,
                      _string(res, "name") or None, extra=extra,
                      field_selector=_raw_selector(selectors["fieldSelector"]),
                      label_selector=_raw_selector(selectors["labelSelector"]))


def _raw_selector(sel: Any) -> str:
    """A SubjectAccessReview's selector ({rawSelector} or {requirements}) as selector text."""
    if not isinstance(sel, dict):
        return ""
    if isinstance(sel.get("rawSelector"), str):
        return sel["rawSelector"]
    parts = []
    for req in sel.get("requirements") or []:
        if not isinstance(req, dict):
            continue
        op, key, values = req.get("operator"), req.get("key", ""), req.get("values") or []
        if op == "In" and len(values) == 1:
            parts.append(f"{key}={values[0]}")
        elif op == "NotIn" and len(values) == 1:
            parts.append(f"{key}!={values[0]}")
    return ",".join(parts)


async def _access(chain: Chain, kind: str, spec: dict, namespace: str | None) -> dict:
    allowed, reason = await chain.decide(_attributes(kind, spec, namespace))
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status
