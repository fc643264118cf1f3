"""/openapi/v3 (and /openapi/v2) from the derived schemas (schemas.py) and the registry table.

kubectl uses these documents for `kubectl explain`, for strategic-merge metadata in client-side
apply, and to learn that PATCH accepts `fieldValidation` (so it leaves validation to the server).
Documents are built once per process; the hash in each URL lets clients cache them.
"""

from __future__ import annotations

import functools
import hashlib
import json

from aiohttp import web

from . import registry, schemas
from .registry import Resource, all_resources, groups

# custom resource kinds -> (schema name, schema), kept by crd.py
CUSTOM_SCHEMAS: dict[str, tuple[str, dict]] = {}


def full_name(t: str) -> str:
    """The OpenAPI definition name of a type: the published one for built-in types."""
    if t in schemas.FULL_NAMES:
        return schemas.FULL_NAMES[t]
    if t in CUSTOM_SCHEMAS:
        return CUSTOM_SCHEMAS[t][0]
    return t


SCALARS = {"string": {"type": "string"}, "integer": {"type": "integer", "format": "int64"},
           "boolean": {"type": "boolean"}, "number": {"type": "number", "format": "double"},
           "time": {"type": "string", "format": "date-time"},
           "quantity": {"type": "string", "format": "quantity", "x-kubernetes-int-or-string": True},
           "int-or-string": {"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": True},
           "map": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
           "any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def _field(notation: str, ref: str) -> dict:
    shape, elem, key = schemas.parse(notation)
    if shape == "ref":
        if ref.startswith("#/components"):
            return {"allOf": [{"$ref": f"{ref}{full_name(elem)}"}], "default": {}}
        return {"$ref": f"{ref}{full_name(elem)}"}
    if shape == "list":
        out = {"type": "array", "items": _field(elem, ref)}
        if key:
            out.update({"x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": "merge"})
        return out
    if shape == "map":
        return {"type": "object", "additionalProperties": _field(elem, ref)}
    return dict(SCALARS.get(elem, SCALARS["any"]))


def _schema(t: str, ref: str) -> dict:
    desc, fields, required = schemas.T[t]
    docs = schemas.FIELD_DOCS.get(t, {})
    properties = {}
    for k, v in fields.items():
        properties[k] = _field(v, ref)
        if k in docs:
            properties[k]["description"] = docs[k]
    out: dict = {"type": "object", "description": desc, "properties": properties}
    if required:
        out["required"] = required
    return out


def _gvk(r: Resource) -> list[dict]:
    return [{"group": r.group, "kind": r.kind, "version": r.version}]


def _definitions(ref: str, kinds: set[str] | None = None) -> dict:
    """All schemas reachable from `kinds` (all when None)."""
    wanted = set(schemas.T) if kinds is None else set()
    todo = list(kinds or [])
    while todo:
        t = todo.pop()
        if t in wanted or t not in schemas.T:
            continue
        wanted.add(t)
        for notation in schemas.T[t][1].values():
            _, elem, _ = schemas.parse(notation)
            if elem in schemas.T:
                todo.append(elem)
    defs = {full_name(t): _schema(t, ref) for t in sorted(wanted)}
    for r in all_resources():
        if full_name(r.schema_type) in defs:
            defs[full_name(r.schema_type)]["x-kubernetes-group-version-kind"] = _gvk(r)
    if "Scale" in wanted:
        defs[full_name("Scale")]["x-kubernetes-group-version-kind"] = [
            {"group": "autoscaling", "kind": "Scale", "version": "v1"}]
    return defs


def _param(name: str, typ: str = "string") -> dict:
    return {"name": name, "in": "query", "schema": {"type": typ, "uniqueItems": True}}


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def _op(r: Resource, action: str, kind: str, gvk: list[dict], body: bool = False,
        patch: bool = False) -> dict:
    ref = {"$ref": f"#/components/schemas/{full_name(kind)}"}
    op: dict = {"operationId": f"{action}{r.kind}", "tags": [r.group or "core"],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk[0]}
    params = [_param("dryRun"), _param("fieldManager")]
    if body or patch:
        params.append(_param("fieldValidation"))
    if patch:
        params.append(_param("force", "boolean"))
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES},
                             "required": True}
    elif body:
        op["requestBody"] = {"content": {"application/json": {"schema": ref}}, "required": True}
    op["parameters"] = params
    return op


def _paths(r: Resource) -> dict:
    base = f"/api/{r.version}" if not r.group else f"/apis/{r.group}/{r.version}"
    coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    gvk = _gvk(r)
    if not r.stored:  # a review: POST only
        return {coll: {"post": _op(r, "create", r.schema_type, gvk, body=True)}}
    t = r.schema_type
    paths = {
        coll: {"get": _op(r, "list", t, gvk), "post": _op(r, "post", t, gvk, body=True)},
        f"{coll}/{{name}}": {"get": _op(r, "get", t, gvk), "put": _op(r, "put", t, gvk, body=True),
                             "patch": _op(r, "patch", t, gvk, patch=True),
                             "delete": _op(r, "delete", t, gvk)},
    }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = {"get": _op(r, "list", t, gvk)}
    for sub in r.subresources:
        if sub in ("status", "scale"):
            kind = "Scale" if sub == "scale" else r.kind
            sgvk = [{"group": "autoscaling", "kind": "Scale", "version": "v1"}] if sub == "scale" else gvk
            paths[f"{coll}/{{name}}/{sub}"] = {
                "get": _op(r, "get", kind, sgvk), "put": _op(r, "put", kind, sgvk, body=True),
                "patch": _op(r, "patch", kind, sgvk, patch=True)}
    return paths


def v3_document(gv: str) -> bytes:
    return _v3_document(gv, registry.GENERATION[0])


@functools.lru_cache(maxsize=256)
def _v3_document(gv: str, generation: int) -> bytes:
    group, _, version = gv.rpartition("/")
    res = [r for r in all_resources() if (r.group, r.version) == (group, version)]
    paths: dict = {}
    kinds = set()
    for r in res:
        paths.update(_paths(r))
        kinds.add(r.schema_type)
        if r.scale:
            kinds.add("Scale")
    defs = _definitions("#/components/schemas/", kinds)
    for r in res:
        if r.kind not in schemas.T and r.kind in CUSTOM_SCHEMAS:
            name, schema = CUSTOM_SCHEMAS[r.kind]
            defs[name] = dict(schema, **{"x-kubernetes-group-version-kind": _gvk(r)})
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
           "paths": paths, "components": {"schemas": defs}}
    return json.dumps(doc).encode()


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def v3_index() -> bytes:
    return _v3_index(registry.GENERATION[0])


@functools.lru_cache(maxsize=16)
def _v3_index(generation: int) -> bytes:
    paths = {}
    for group, versions in groups().items():
        for v in versions:
            gv = f"{group}/{v}" if group else v
            digest = hashlib.sha512(v3_document(gv)).hexdigest()[:128].upper()
            paths[_gv_path(group, v)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, v)}?hash={digest}"}
    return json.dumps({"paths": paths}).encode()


@functools.lru_cache(maxsize=None)
def v2_document() -> bytes:
    return json.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
                       "paths": {}, "definitions": _definitions("#/definitions/")}).encode()


async def handle_v3(request: web.Request) -> web.Response:
    tail = request.match_info.get("tail", "").strip("/")
    if not tail:
        return web.Response(body=v3_index(), content_type="application/json")
    parts = tail.split("/")
    gv = None
    if parts[0] == "api" and len(parts) == 2:
        gv = parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        gv = f"{parts[1]}/{parts[2]}"
    if gv is None or (gv.rpartition("/")[0], gv.rpartition("/")[2]) not in \
            {(r.group, r.version) for r in all_resources()}:
        return web.Response(status=404, text="404 page not found\n")
    headers = {"Cache-Control": "public, immutable" if "hash" in request.query else "no-cache, private"}
    return web.Response(body=v3_document(gv), content_type="application/json", headers=headers)


async def handle_v2(request: web.Request) -> web.Response:
    if "protobuf" in request.headers.get("Accept", ""):
        # kubectl validates create-only kinds (reviews) on the client with the protobuf v2
        # document; no gnostic encoder is kept here, so an empty (valid) Document is served,
        # with which kubectl leaves validation to the server, where it happens anyway
        return web.Response(body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    return web.Response(body=v2_document(), content_type="application/json")
