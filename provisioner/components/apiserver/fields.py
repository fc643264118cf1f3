"""managedFields bookkeeping: the FieldsV1 set of an object and the entries of its managers.

A field set is the nested `{"f:spec": {"f:replicas": {}}}` shape Kubernetes stores; list elements
with a merge key are `k:{"name":"web"}`, other list elements `v:<value>` or the list itself.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from . import jsonwire, schemas
from .decode import parse_notation

_stamp: tuple[int, str] = (0, "")


def now() -> str:
    """The current second as Kubernetes writes timestamps. Formatted once a second: every write
    stamps its object and managedFields entry, and strftime is slow."""
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, dt.datetime.fromtimestamp(second, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _stamp[1]


_META_FIELDS = ("labels", "annotations", "finalizers", "ownerReferences")  # what managers own
_UNTYPED = ("any", "", None)


def field_set(obj: Any, type_name: str | None) -> dict:
    if not isinstance(obj, dict):
        return {}
    fields = schemas.T[type_name][1] if type_name in schemas.T else None
    out: dict = {}
    for k, v in obj.items():
        if k == "apiVersion" or k == "kind":
            continue
        if k == "metadata":
            meta = {mk: mv for mk, mv in (v or {}).items() if mk in _META_FIELDS}
            sub = field_set(meta, None)
            if sub:
                out["f:metadata"] = sub
            continue
        notation = fields.get(k) if fields else None
        shape, elem, key = parse_notation(notation) if notation else _UNTYPED
        if shape == "ref":
            out[f"f:{k}"] = field_set(v, elem)
        elif shape == "list" and key and isinstance(v, list):
            items = {}
            for x in v:
                if isinstance(x, dict) and key in x:
                    items[f"k:{jsonwire.dumps({key: x[key]}).decode()}"] = dict(
                        {".": {}}, **field_set(x, elem if elem in schemas.T else None))
            out[f"f:{k}"] = items
        elif isinstance(v, dict) and shape != "list":
            out[f"f:{k}"] = field_set(v, elem if elem in schemas.T else None)
        else:
            out[f"f:{k}"] = {}
    return out


def record(meta: dict, manager: str, operation: str, api_version: str, fields: dict,
           subresource: str = "") -> None:
    """Set this manager's entry (one per manager, operation and subresource)."""
    if not manager:
        return
    entries = [e for e in meta.get("managedFields") or []
               if not (e.get("manager") == manager and e.get("operation") == operation
                       and e.get("subresource", "") == subresource)]
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now(),
             "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)
    meta["managedFields"] = entries


def default_manager(user_agent: str) -> str:
    """Kubernetes names an unnamed manager after the user agent's program name."""
    return (user_agent or "unknown").split("/", 1)[0][:128] or "unknown"
