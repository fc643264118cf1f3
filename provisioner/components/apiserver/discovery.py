"""Discovery documents, all derived from the registry table.

Legacy discovery (/api, /api/v1, /apis, /apis/G, /apis/G/V) and aggregated discovery
(apidiscovery.k8s.io/v2, served from /api and /apis when the Accept header asks for it, as
kubectl 1.37 does), plus /version.
"""

from __future__ import annotations

import hashlib
import json
import platform

from aiohttp import web

from .registry import Resource, all_resources, groups

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
VERSION = {"major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
           "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
           "gitVersion": "v1.37.0-provisioner", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
           "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
           "platform": f"linux/{platform.machine()}"}
# groups served by other servers through available APIServices, kept by apiservices.py:
# group -> versions (preferred first), and their apidiscovery.k8s.io/v2 APIGroupDiscovery items
REMOTE_GROUPS: dict[str, list[str]] = {}
REMOTE_AGGREGATED: list[dict] = []


def _json(obj: object, ctype: str = "application/json", status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), headers={"Content-Type": ctype}, status=status)


def _sub_kind(res: Resource, sub: str) -> dict:
    if sub == "scale":
        return {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    if sub == "binding":
        return {"group": "", "version": "v1", "kind": "Binding"}
    if sub == "eviction":
        return {"group": "policy", "version": "v1", "kind": "Eviction"}
    if sub == "token":
        return {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}
    return {"group": res.group, "version": res.version, "kind": res.kind}


def _sub_verbs(sub: str) -> list[str]:
    return ["create"] if sub in ("binding", "eviction", "token") else (["update"] if sub in ("finalize",) else
                                                              ["get", "patch", "update"])


def _hash(res: Resource) -> str:
    return hashlib.sha256(f"{res.group}/{res.version}/{res.kind}".encode()).digest()[:8].hex()


def resource_list(group: str, version: str) -> dict:
    out = []
    for r in all_resources():
        if (r.group, r.version) != (group, version):
            continue
        entry = {"name": r.plural, "singularName": r.singular_name, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs), "storageVersionHash": _hash(r)}
        if r.short:
            entry["shortNames"] = list(r.short)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            k = _sub_kind(r, sub)
            e = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                 "kind": k["kind"], "verbs": _sub_verbs(sub)}
            if sub in ("scale", "token", "eviction"):  # drain looks for the Eviction group here
                e["group"], e["version"] = k["group"], k["version"]
            out.append(e)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def aggregated(core: bool) -> dict:
    items = []
    for group, versions in groups().items():
        if (group == "") != core:
            continue
        vs = []
        for v in versions:
            resources = []
            for r in all_resources():
                if (r.group, r.version) != (group, v):
                    continue
                entry = {"resource": r.plural,
                         "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                         "scope": "Namespaced" if r.namespaced else "Cluster",
                         "singularResource": r.singular_name, "verbs": list(r.verbs)}
                if r.short:
                    entry["shortNames"] = list(r.short)
                if r.categories:
                    entry["categories"] = list(r.categories)
                if r.subresources:
                    entry["subresources"] = [{"subresource": s, "responseKind": _sub_kind(r, s),
                                              "verbs": _sub_verbs(s)} for s in r.subresources]
                resources.append(entry)
            vs.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": vs})
    if not core:
        items += REMOTE_AGGREGATED
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def _group(group: str, versions: list[str]) -> dict:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def wants_aggregated(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "g=apidiscovery.k8s.io" in accept and "v=v2" in accept.replace("v=v2beta1", "")


def handle(request: web.Request, api_root: str, parts: list[str]) -> web.Response | None:
    """A discovery response for this path, or None when the path names a resource."""
    if request.method != "GET":
        return None
    all_groups = groups()
    if api_root == "api":
        if not parts:
            if wants_aggregated(request):
                return _json(aggregated(core=True), AGGREGATED)
            host = request.host or "127.0.0.1"
            return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
        if parts == ["v1"]:
            return _json(resource_list("", "v1"))
        return None
    if not parts:
        if wants_aggregated(request):
            return _json(aggregated(core=False), AGGREGATED)
        return _json({"kind": "APIGroupList", "apiVersion": "v1",
                      "groups": [_group(g, v) for g, v in {**all_groups, **REMOTE_GROUPS}.items() if g]})
    if len(parts) == 1:
        if parts[0] in all_groups and parts[0]:
            return _json(dict(_group(parts[0], all_groups[parts[0]]), kind="APIGroup", apiVersion="v1"))
        return _json({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                      "code": 404, "message": "the server could not find the requested resource"},
                     status=404)
    if len(parts) == 2 and parts[0] in all_groups and parts[1] in all_groups[parts[0]]:
        return _json(resource_list(parts[0], parts[1]))
    return None


async def version(request: web.Request) -> web.Response:
    return _json(VERSION)
