"""Questions a user asks about themselves: `kubectl auth can-i` and `kubectl auth whoami`.

authorization.k8s.io/v1 SelfSubjectAccessReview (may I do this?) and SelfSubjectRulesReview
(what may I do in this namespace?), answered by the RBAC authorizer for the caller, and
authentication.k8s.io/v1 SelfSubjectReview (who am I?). Create-only and never stored, as in
Kubernetes; every authenticated user may ask (the default system:basic-user role).
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from . import protobuf
from .decode import parse_json
from .errors import ApiError
from .rbac import SUPERUSER_GROUP, Authorizer

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"
# (group, plural) -> kind; served at /apis/<group>/v1/<plural>
KINDS = {(AUTHZ, "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
         (AUTHZ, "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
         (AUTHN, "selfsubjectreviews"): "SelfSubjectReview"}
MAX_BODY = 1024 * 1024


def served(parts: list[str]) -> tuple[str, str] | None:
    """(group, plural) when the path after /apis names one of these reviews."""
    if len(parts) == 3 and parts[1] == "v1" and (parts[0], parts[2]) in KINDS:
        return parts[0], parts[2]
    return None


async def _read(request: web.Request, group: str, kind: str) -> dict:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
    if ctype not in ("", "application/json", "*/*", "application/vnd.kubernetes.protobuf"):
        raise ApiError.unsupported_media(ctype)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError.too_large()
    body = protobuf.decode(raw) if ctype == "application/vnd.kubernetes.protobuf" else parse_json(raw or b"{}")
    if not isinstance(body, dict):
        raise ApiError.bad_request(f"a {kind} must be a JSON object")
    if body.get("kind") not in (None, "", kind) or body.get("apiVersion") not in (None, "", f"{group}/v1"):
        raise ApiError.bad_request(f'{body.get("kind")} in version "v1" cannot be handled as a {kind}')
    return body


def _string(spec: dict, key: str) -> str:
    value = spec.get(key) or ""
    if not isinstance(value, str):
        raise ApiError.bad_request(f"{key} must be a string")
    return value


async def handle(request: web.Request, authz: Authorizer, group: str, plural: str) -> web.Response:
    from .rest import json_response

    kind = KINDS[(group, plural)]
    user, groups = request["user"]
    if request.method != "POST":
        raise ApiError.method_not_allowed()
    if not await authz.allowed(user, groups, "create", group, plural, None, None, None):
        raise ApiError.forbidden(user, "create", plural, group, None)
    body = await _read(request, group, kind)
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise ApiError.bad_request("spec must be an object")
    out: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/v1",
                           "metadata": {"creationTimestamp": None}, "spec": copy.deepcopy(spec)}
    if kind == "SelfSubjectReview":
        out.pop("spec")
        out["status"] = {"userInfo": {"username": user, "groups": list(groups)}}
    elif kind == "SelfSubjectAccessReview":
        out["status"] = await _access(authz, user, groups, spec)
    else:
        out["status"] = await _rules(authz, user, groups, _string(spec, "namespace"))
    return json_response(out, 201)


async def _access(authz: Authorizer, user: str, groups: list[str], spec: dict) -> dict:
    res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(res, dict) == isinstance(nonres, dict):
        raise ApiError.invalid("SelfSubjectAccessReview", "", [(
            "spec.resourceAttributes", "Invalid value: \"null\": exactly one of nonResourceAttributes "
            "or resourceAttributes must be specified")], AUTHZ)
    if isinstance(nonres, dict):
        allowed = await authz.allowed_url(user, groups, _string(nonres, "verb"), _string(nonres, "path"))
    else:
        allowed = await authz.allowed(user, groups, _string(res, "verb"), _string(res, "group"),
                                      _string(res, "resource"), _string(res, "subresource") or None,
                                      _string(res, "namespace") or None, _string(res, "name") or None)
    return {"allowed": allowed}  # RBAC gives no reason for a denial (nothing matched)


async def _rules(authz: Authorizer, user: str, groups: list[str], namespace: str) -> dict:
    if not namespace:
        raise ApiError.invalid("SelfSubjectRulesReview", "", [(
            "spec.namespace", "Required value: namespace is required")], AUTHZ)
    if SUPERUSER_GROUP in groups:
        held = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    else:
        held = await authz.rules_for(user, groups, namespace)
    resource_rules, url_rules = [], []
    for r in held:
        if r.get("nonResourceURLs"):
            url_rules.append({"verbs": r.get("verbs") or [], "nonResourceURLs": r["nonResourceURLs"]})
        else:
            entry = {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
            resource_rules.append(entry)
    return {"resourceRules": resource_rules, "nonResourceRules": url_rules, "incomplete": False}
