"""CustomResourceDefinitions and the custom resources they serve.

A CRD is stored like any object; its strategy (CRDStrategy) checks the definition, marks it
NamesAccepted and Established at once, and keeps registry.CUSTOM, the table of served custom
resources, in step with what is stored (also on start and every few seconds, for CRDs another
server wrote). Everything generic reads that table as it reads the built-in one: routes,
discovery, OpenAPI (`kubectl explain`), storage and watch. Per custom kind:
- CustomResourceStrategy prunes unknown fields (fieldValidation Strict refuses them), applies
  schema defaults and validates with crdschema.py; with a status subresource, status is reset on
  create and kept apart from spec as for built-in kinds;
- scale goes through the CRD's specReplicasPath/statusReplicasPath/labelSelectorPath;
- additionalPrinterColumns become the table columns (tables.CUSTOM_COLUMNS).
Deleting a CRD deletes its objects first (finalizer customresourcecleanup.apiextensions.k8s.io),
then the definition. Custom objects are kept under /registry/<group>/<plural>/ as
kube-apiserver keeps them, so two groups may serve the same plural; a CRD naming a plural its
group already serves built in is refused.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import crdschema, fields, openapi, registry, tables
from .apirequest import Req
from .errors import ApiError
from .registry import Resource
from .strategies import Strategy

if TYPE_CHECKING:
    from .crud import Registry

log = logging.getLogger("apiserver")
GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
REFRESH_SECONDS = 3.0


@dataclass
class Served:
    """One served version of a custom resource."""
    resource: Resource
    schema: dict
    columns: list
    scale: dict | None
    storage_version: str = ""


SERVED: dict[tuple[str, str, str], Served] = {}


# the definition ------------------------------------------------------------------------------
def _names(crd: dict) -> dict:
    names = dict(((crd.get("spec") or {}).get("names") or {}))
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    return names


def check_definition(crd: dict) -> list[tuple[str, str]]:
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    group, plural = spec.get("group") or "", names.get("plural") or ""
    causes: list[tuple[str, str]] = []
    name = (crd.get("metadata") or {}).get("name", "")
    if name != f"{plural}.{group}":
        causes.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if not group:
        causes.append(("spec.group", "Required value"))
    elif "." not in group:
        causes.append(("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append((f"spec.names.{key}", "Required value"))
    if plural and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plural):
        causes.append(("spec.names.plural", f'Invalid value: "{plural}": a lowercase RFC 1123 label must consist of '
                       "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
                       "character"))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", f'Unsupported value: "{scope or ""}": supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") if isinstance(spec.get("versions"), list) else []
    if not versions:
        causes.append(("spec.versions", "Invalid value: null: must have exactly one version marked as storage version"))
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage") is True]
    if versions and len(storage) != 1:
        causes.append(("spec.versions", f"Invalid value: {len(storage)}: must have exactly one version marked "
                       "as storage version"))
    for i, v in enumerate(versions):
        if not isinstance(v, dict) or not v.get("name"):
            causes.append((f"spec.versions[{i}].name", "Required value"))
            continue
        for flag in ("served", "storage"):
            if not isinstance(v.get(flag), bool):
                causes.append((f"spec.versions[{i}].{flag}", "Required value"))
        causes += crdschema.check_structural((v.get("schema") or {}).get("openAPIV3Schema"),
                                             f"spec.versions[{i}].schema.openAPIV3Schema")
    return causes


class CRDStrategy(Strategy):
    marks_on_delete = False

    def prepare_for_create(self, req: Req, obj: dict) -> None:
        meta = obj.setdefault("metadata", {})
        finalizers = meta.setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        obj["status"] = _status(obj, None)

    def prepare_for_update(self, req: Req, new: dict, old: dict) -> None:
        new["status"] = _status(new, old)

    async def before_store(self, registry_: "Registry", req: Req, new: dict, old: dict | None) -> None:
        causes = check_definition(new)
        if causes:
            raise ApiError.invalid("CustomResourceDefinition", new["metadata"].get("name", ""), causes, GROUP)
        if new["metadata"].get("deletionTimestamp"):
            return
        plural, group = new["spec"]["names"]["plural"], new["spec"]["group"]
        if any(r.group == group and r.plural == plural for r in registry.RESOURCES):
            raise ApiError.invalid("CustomResourceDefinition", new["metadata"]["name"], [(
                "spec.names.plural", f'Invalid value: "{plural}": already served by the built-in '
                f'API of group "{group or "core"}"')], GROUP)

    async def after_create(self, registry_: "Registry", req: Req, obj: dict) -> None:
        await sync(registry_)

    def after_delete_mark(self, registry_: "Registry", obj: dict) -> None:
        registry_._spawn(_clean_up(registry_, obj["metadata"]["name"]))

    async def after_delete(self, registry_: "Registry", obj: dict) -> None:
        await sync(registry_)


def _status(crd: dict, old: dict | None) -> dict:
    """Names accepted and established at once (no competing definitions to wait for)."""
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    stored = list(((old or {}).get("status") or {}).get("storedVersions") or [])
    for v in spec.get("versions") or []:
        if isinstance(v, dict) and v.get("storage") and v.get("name") not in stored:
            stored.append(v["name"])
    previous = {c.get("type"): c for c in ((old or {}).get("status") or {}).get("conditions") or []}

    def cond(kind: str, reason: str, message: str) -> dict:
        keep = previous.get(kind)
        return {"type": kind, "status": "True", "lastTransitionTime": (keep or {}).get("lastTransitionTime")
                or fields.now(), "reason": reason, "message": message}
    return {"conditions": [cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                           cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
            "acceptedNames": _names(crd), "storedVersions": stored}


# serving ---------------------------------------------------------------------------------------
def _served_versions(crd: dict) -> dict[tuple[str, str, str], Served]:
    spec = crd.get("spec") or {}
    names = _names(crd)
    out = {}
    if crd["metadata"].get("deletionTimestamp") or check_definition(crd):
        return out
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = v.get("subresources") or {}
        res = Resource(spec["group"], v["name"], names["kind"], names["plural"], spec.get("scope") == "Namespaced",
                       tuple(names.get("shortNames") or ()), status="status" in subs, scale="scale" in subs,
                       categories=tuple(names.get("categories") or ()), singular=names.get("singular", ""),
                       custom=True)
        storage = next((x["name"] for x in spec.get("versions") or [] if x.get("storage")), v["name"])
        out[(res.group, res.version, res.plural)] = Served(
            res, copy.deepcopy((v.get("schema") or {}).get("openAPIV3Schema") or {}),
            list(v.get("additionalPrinterColumns") or []), subs.get("scale"), storage)
    return out


async def sync(registry_: "Registry") -> None:
    """Serve exactly the established CRDs in storage."""
    crds, _, _ = await registry_.storage.list("customresourcedefinitions", None)
    served: dict[tuple[str, str, str], Served] = {}
    for crd in sorted(crds, key=lambda c: c["metadata"].get("creationTimestamp", "")):
        served.update(_served_versions(crd))
    SERVED.clear()
    SERVED.update(served)
    registry.set_custom({k: s.resource for k, s in served.items()})
    openapi.CUSTOM_SCHEMAS.clear()
    tables.CUSTOM_COLUMNS.clear()
    for s in served.values():
        r = s.resource
        group_path = ".".join(reversed(r.group.split(".")))
        openapi.CUSTOM_SCHEMAS[r.kind] = (f"{group_path}.{r.version}.{r.kind}", _document_schema(s.schema))
        tables.CUSTOM_COLUMNS[r.kind] = _columns(s.columns)


async def keep_in_sync(registry_: "Registry") -> None:
    """CRDs written through another API server are served here within a few seconds."""
    while True:
        try:
            await sync(registry_)
        except Exception as exc:  # noqa: BLE001 - etcd away: keep serving what is known
            log.warning("custom resource definitions not refreshed: %s", exc)
        await asyncio.sleep(REFRESH_SECONDS)


def _document_schema(schema: dict) -> dict:
    out = copy.deepcopy(schema) or {"type": "object"}
    props = out.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion defines the versioned schema "
                                    "of this representation of an object."})
    props.setdefault("kind", {"type": "string", "description": "Kind is a string value representing the REST "
                              "resource this object represents."})
    props["metadata"] = {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
                         "description": "Standard object's metadata."}
    return out


async def _clean_up(registry_: "Registry", name: str) -> None:
    """Delete every object of the definition, then let the definition go."""
    crd_res = registry.BY_KIND[(GROUP, "CustomResourceDefinition")]
    crd = await registry_.storage.get("customresourcedefinitions", None, name)
    if crd is None:
        return
    spec = crd.get("spec") or {}
    plural = ((spec.get("names") or {}).get("plural")) or ""
    await sync(registry_)  # stop serving it: no new objects while they are deleted
    if plural and spec.get("group"):
        store = Resource(spec["group"], "", "", plural, custom=True).store
        items, _, _ = await registry_.storage.list(store, None)
        for obj in items:
            meta = obj["metadata"]
            try:
                await registry_.storage.delete(store, meta.get("namespace"), meta["name"],
                                               int(meta["resourceVersion"]))
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    def release(cur: dict) -> dict:
        cur["metadata"]["finalizers"] = [f for f in cur["metadata"].get("finalizers") or []
                                         if f != CLEANUP_FINALIZER]
        return cur
    try:
        await registry_.update(Req(crd_res, None, name, user_agent="apiserver"), release, precondition_rv=None)
    except ApiError as exc:
        if exc.code != 404:
            raise


# custom objects --------------------------------------------------------------------------------
def served_for(res: Resource) -> Served | None:
    return SERVED.get((res.group, res.version, res.plural))


def read_through_other_version(res: Resource) -> bool:
    """Whether reads of this custom resource version differ from the stored bytes (apiVersion)."""
    served = served_for(res)
    return served is not None and served.storage_version != res.version


def as_version(res: Resource, obj: dict) -> dict:
    """A custom object as the version it is read through: versions of a CRD hold the same
    fields (conversion strategy None), so only apiVersion changes; the same dict when nothing does."""
    if not isinstance(obj, dict) or obj.get("apiVersion") in (None, res.group_version) or \
            obj.get("kind") != res.kind or (res.group, res.version, res.plural) not in SERVED:
        return obj
    return dict(obj, apiVersion=res.group_version)


class CustomResourceStrategy(Strategy):
    def __init__(self, served: Served):
        self.served = served

    def _to_storage_version(self, obj: dict) -> None:
        """Objects are kept in the CRD's storage version, as kube-apiserver keeps them."""
        obj["apiVersion"] = f"{self.served.resource.group}/{self.served.storage_version}"

    def _schema_pass(self, req: Req, obj: dict) -> None:
        unknown: list[str] = []
        crdschema.prune(obj, self.served.schema, "", unknown, root=True)
        mode = req.query.get("fieldValidation") or "Warn"
        if unknown and mode == "Strict":
            raise ApiError.bad_request("strict decoding error: " + ", ".join(
                f'unknown field "{u}"' for u in unknown))
        if unknown and mode == "Warn":
            req.warnings += [f'unknown field "{u}"' for u in unknown]
        crdschema.default(obj, self.served.schema)
        causes = crdschema.validate(obj, self.served.schema, "", root=True)
        if causes:
            res = self.served.resource
            raise ApiError.invalid(res.kind, (obj.get("metadata") or {}).get("name", ""), causes, res.group)

    def prepare_for_create(self, req: Req, obj: dict) -> None:
        if self.served.resource.status:
            obj.pop("status", None)
        self._schema_pass(req, obj)
        self._to_storage_version(obj)

    def prepare_for_update(self, req: Req, new: dict, old: dict) -> None:
        self._schema_pass(req, new)
        self._to_storage_version(new)

    def prepare_for_status_update(self, req: Req, new: dict, old: dict) -> None:
        self._schema_pass(req, new)
        self._to_storage_version(new)


def _path(obj: Any, path: str) -> Any:
    cur = obj
    for part in [p for p in path.split(".") if p]:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _set_path(obj: dict, path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def to_scale(served: Served, obj: dict) -> dict:
    meta = obj["metadata"]
    scale = served.scale or {}
    out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                        if k in meta},
           "spec": {"replicas": _path(obj, scale.get("specReplicasPath", ".spec.replicas")) or 0},
           "status": {"replicas": _path(obj, scale.get("statusReplicasPath", ".status.replicas")) or 0}}
    if scale.get("labelSelectorPath"):
        selector = _path(obj, scale["labelSelectorPath"])
        if isinstance(selector, str) and selector:
            out["status"]["selector"] = selector
    return out


def set_replicas(served: Served, obj: dict, replicas: int) -> None:
    _set_path(obj, (served.scale or {}).get("specReplicasPath", ".spec.replicas"), replicas)


# printer columns ------------------------------------------------------------------------------
FILTER = re.compile(r'^\[\?\(@\.([\w.-]+)\s*==\s*["\']([^"\']*)["\']\)\]$')


def jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: .a.b, [n], [?(@.k=="v")]."""
    tokens = re.findall(r"\[[^\]]*\]|[^.\[\]]+", path.strip().lstrip("{").rstrip("}").lstrip("$"))
    cur = obj
    for tok in tokens:
        if cur is None:
            return None
        m = FILTER.match(tok)
        if m:
            cur = next((x for x in cur if isinstance(x, dict) and str(_path(x, m.group(1))) == m.group(2)), None) \
                if isinstance(cur, list) else None
        elif tok.startswith("["):
            try:
                cur = cur[int(tok[1:-1])] if isinstance(cur, list) else None
            except (ValueError, IndexError):
                return None
        else:
            cur = cur.get(tok) if isinstance(cur, dict) else None
    return cur


def _cell(column: dict) -> Any:
    path, kind = column.get("jsonPath", ""), column.get("type", "string")

    def cell(obj: dict) -> Any:
        value = jsonpath(obj, path)
        if value is None:
            return "<none>" if kind not in ("integer", "number", "boolean") else None
        if kind == "date":
            return tables.age({"metadata": {"creationTimestamp": value}})
        if kind == "boolean":
            return bool(value)
        return value
    return cell


def _columns(columns: list) -> list:
    if not columns:
        return [tables.NAME, tables.AGE]
    return [tables.NAME] + [(c.get("name", ""), c.get("type", "string"), int(c.get("priority") or 0), _cell(c))
                            for c in columns if isinstance(c, dict)]
