"""PATCH: JSON patch, merge patch, strategic merge patch and server-side apply.

A mixin of crud.Registry; every patch becomes a mutate function for writes.Writes.update, so
patches get the same conflict retries, defaulting, validation and admission as updates.
"""

from __future__ import annotations

import copy

import yaml

from . import conversion, decode, fields, patch
from .apirequest import Req
from .errors import ApiError
from .storage import Storage


class Patching:
    storage: Storage

    # patch ----------------------------------------------------------------------------------
    async def patch(self, req: Req, ctype: str, body: bytes) -> tuple[dict, bool]:
        res = req.res
        ctype = ctype.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            if req.view is not None:  # server-side apply is not offered through conversions yet
                raise ApiError.unsupported_media(ctype)
            return await self.apply(req, body)
        if ctype not in ("application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json"):
            raise ApiError.unsupported_media(ctype)
        doc = decode.parse_json(body)
        if ctype == "application/json-patch+json" and not isinstance(doc, list):
            raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        if ctype != "application/json-patch+json" and not isinstance(doc, dict):
            raise ApiError.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        view = req.view  # patches are written against the client's view of a converted kind
        type_name = "Scale" if req.sub == "scale" else (view.schema_type if view else res.kind)

        def apply_patch(cur: dict) -> dict:
            cur = conversion.to_external(view, cur)
            if ctype == "application/json-patch+json":
                out = patch.json_patch(cur, doc)
            elif ctype == "application/merge-patch+json":
                out = patch.merge_patch(cur, doc)
            else:
                out = patch.strategic_merge(cur, doc, type_name)
            if not isinstance(out, dict):
                raise ApiError.bad_request("the patched object is not a JSON object")
            out, warnings = decode.prune(out, type_name, req.query.get("fieldValidation") or "Warn")
            req.warnings[:] = warnings
            return conversion.to_internal(view, out)

        if req.sub == "scale":
            return await self._scale(req, apply_patch, None), False
        return await self.update(req, apply_patch, precondition_rv=None)

    async def apply(self, req: Req, body: bytes) -> tuple[dict, bool]:
        """Server-side apply: merge the applied configuration, record the manager's fields."""
        if not req.query.get("fieldManager"):
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                           "Required value: is required for apply patch")
        try:
            applied = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ApiError.bad_request(f"error decoding YAML: {exc}")
        if not isinstance(applied, dict):
            raise ApiError.bad_request("error decoding YAML: the apply patch is not an object")
        applied, warnings = decode.prune(applied, req.res.kind, req.query.get("fieldValidation") or "Strict")
        req.warnings += warnings
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise ApiError.bad_request(f'the name of the object ({meta["name"]}) does not match the '
                                       f'name on the URL ({req.name})')
        if not applied.get("kind") or not applied.get("apiVersion"):
            raise ApiError.bad_request("invalid object type: /, Kind=")
        applied_fields = fields.field_set(applied, req.res.kind)

        def mutate(cur: dict) -> dict:
            return patch.strategic_merge(cur, applied, req.res.kind)

        create = copy.deepcopy(applied)
        create.setdefault("metadata", {})["name"] = req.name
        obj, created = await self.update(req, mutate, precondition_rv=None, operation="Apply",
                                         create_if_missing=create)
        if created or True:
            entries = [e for e in obj["metadata"].get("managedFields") or []
                       if e.get("manager") != req.manager]
            obj_meta = obj["metadata"]
            obj_meta["managedFields"] = entries
            fields.record(obj_meta, req.manager, "Apply", req.res.group_version, applied_fields,
                          req.sub or "")
            if not req.dry_run:
                cur_rv = int(obj_meta["resourceVersion"])
                try:
                    obj = await self.storage.update(req.res.store, req.namespace, req.name or "", obj, cur_rv)
                except ApiError as exc:
                    if exc.reason != "Conflict":
                        raise  # a concurrent writer winning is fine: the applied content is stored
        return obj, created

