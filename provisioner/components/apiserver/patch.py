"""PATCH bodies: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch.

Strategic merge follows the merge keys declared in schemas.py (`[Container@name]`): such lists
are merged element by element, other lists replaced; it honours the directives client-side
`kubectl apply` sends ($patch, $setElementOrder/, $deleteFromPrimitiveList/, $retainKeys).
Server-side apply is built on it in handlers (apply.py).
"""

from __future__ import annotations

import copy
from typing import Any

from . import schemas
from .errors import ApiError


# JSON patch ----------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our "
                       f"request: invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(p: str) -> int:
    """A JSON pointer array index: digits only (no sign, so -1 never means 'the last one')."""
    if not p.isdigit():
        raise ValueError(p)
    return int(p)


def _walk(doc: Any, parts: list[str]) -> tuple[Any, str]:
    if not parts:
        raise ApiError(422, "Invalid", "the whole document cannot be removed or moved")
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            try:
                cur = cur[_index(p)]
            except (ValueError, IndexError):
                raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}")
        elif isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}: missing value")
    return cur, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, last = _walk(doc, parts)
    try:
        return parent[_index(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, ValueError, IndexError, TypeError):
        raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}: missing value")


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _walk(doc, parts)
    try:
        if isinstance(parent, list):
            return parent.pop(_index(last))
        return parent.pop(last)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        raise ApiError(422, "Invalid", f"Unable to remove nonexistent key: {last}: missing value")


def _add(doc: Any, parts: list[str], value: Any, replace: bool = False) -> Any:
    if not parts:
        return value
    parent, last = _walk(doc, parts)
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
            return doc
        try:
            i = _index(last)
        except ValueError:
            raise ApiError(422, "Invalid", f"invalid array index {last!r}")
        if not 0 <= i <= len(parent) - (1 if replace else 0):
            raise ApiError(422, "Invalid", f"add operation does not apply: index {i} out of bounds")
        if replace:
            parent[i] = value
        else:
            parent.insert(i, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(422, "Invalid", f"replace operation does not apply: doc is missing key: "
                           f"/{'/'.join(parts)}: missing value")
        parent[last] = value
    else:
        raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise ApiError.bad_request("the server rejected our request due to an error in our request")
        kind, parts = op["op"], _pointer(str(op.get("path", "")))
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), replace=True)
        elif kind in ("move", "copy"):
            src = _pointer(str(op.get("from", "")))
            val = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, parts, val)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value /{'/'.join(parts)} failed: test failed")
        else:
            raise ApiError(422, "Invalid", f"Unexpected kind: {kind}")
    return doc


# merge patch ---------------------------------------------------------------------------------
def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# strategic merge patch -------------------------------------------------------------------------
def strategic_merge(doc: Any, patch: Any, type_name: str | None) -> Any:
    if not isinstance(patch, dict) or not isinstance(doc, dict):
        return _strip(copy.deepcopy(patch))
    if patch.get("$patch") == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    out = dict(doc)
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            out[field] = [x for x in out.get(field) or [] if x not in (v or [])]
            continue
        notation = schemas.field_of(type_name, k) if type_name else None
        shape, elem, key = schemas.parse(notation) if notation else ("any", "", None)
        if v is None:
            out.pop(k, None)
        elif shape == "list" and key and isinstance(v, list):
            order = patch.get(f"$setElementOrder/{k}")
            out[k] = _merge_list(out.get(k) or [], v, key, elem, order)
        elif shape == "ref":
            merged = strategic_merge(out.get(k), v, elem)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif shape == "map" and elem in schemas.T and isinstance(v, dict):
            cur = dict(out.get(k) or {})
            for mk, mv in v.items():
                cur[mk] = strategic_merge(cur.get(mk), mv, elem) if mv is not None else None
            out[k] = {a: b for a, b in cur.items() if b is not None}
        elif isinstance(v, dict) and shape != "list":
            out[k] = strategic_merge(out.get(k), v, None)
        else:
            out[k] = _strip(copy.deepcopy(v))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(cur: list, patch: list, key: str, elem: str, order: list | None) -> list:
    result = [copy.deepcopy(x) for x in cur]
    for item in patch:
        if not isinstance(item, dict):
            continue
        directive = item.get("$patch")
        idx = next((i for i, x in enumerate(result)
                    if isinstance(x, dict) and x.get(key) == item.get(key)), None)
        if directive == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_strip({k: v for k, v in item.items() if k != "$patch"}))
        else:
            result[idx] = strategic_merge(result[idx], item, elem if elem in schemas.T else None)
    if order:
        rank = {(o.get(key) if isinstance(o, dict) else o): i for i, o in enumerate(order)}
        result.sort(key=lambda x: rank.get(x.get(key) if isinstance(x, dict) else x, len(rank)))
    return result


def _strip(v: Any) -> Any:
    """Drop directives and nulls from values inserted as-is."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v
