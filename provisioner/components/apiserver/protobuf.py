"""Reading Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`).

client-go's generated clients always send built-in kinds as protobuf, and kubectl's `create
namespace|configmap|secret|deployment|service|job|role|...` use them, with no JSON fallback. So
requests in protobuf are decoded here into the same JSON-shaped dict every other path uses;
responses are always JSON, which every client accepts. The envelope is `k8s\\0` followed by a
runtime.Unknown {typeMeta, raw}; `raw` is the object message.

Field numbers of the built-in kinds come from protobuf_generated.py, derived from Kubernetes'
published generated.proto and types.go files by scripts/gen_apiserver_protobuf.py (embedded
structs are marked `inline`: their fields sit in the parent's JSON; fields JSON keeps when zero
are pointers); M below holds the envelope and the apimachinery types. Notation: `name:type`, type one of string, int, bool, bytes (pointer fields `*int`, `*bool`
keep zero values; others drop them, as JSON's omitempty does), map, mapbytes, Time, IOS
(IntOrString), Q (Quantity), {Q} (map of quantities), Raw (an embedded object's JSON), a message
name, or [...] for repeated.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from .errors import ApiError
from .protobuf_generated import MESSAGES as GENERATED

MAGIC = b"k8s\x00"
M = {
    "Unknown": {1: "typeMeta:TypeMeta", 2: "raw:bytes", 3: "contentEncoding:string", 4: "contentType:string"},
    "TypeMeta": {1: "apiVersion:string", 2: "kind:string"},
    "ObjectMeta": {1: "name:string", 2: "generateName:string", 3: "namespace:string", 5: "uid:string",
                   6: "resourceVersion:string", 7: "generation:int", 8: "creationTimestamp:Time",
                   9: "deletionTimestamp:Time", 10: "deletionGracePeriodSeconds:*int", 11: "labels:map",
                   12: "annotations:map", 13: "ownerReferences:[OwnerReference]", 14: "finalizers:[string]"},
    "OwnerReference": {5: "apiVersion:string", 1: "kind:string", 3: "name:string", 4: "uid:string",
                       6: "controller:*bool", 7: "blockOwnerDeletion:*bool"},
    "LabelSelector": {1: "matchLabels:map", 2: "matchExpressions:[LabelSelectorRequirement]"},
    "LabelSelectorRequirement": {1: "key:string", 2: "operator:string", 3: "values:[string]"},
    "Time": {1: "seconds:int", 2: "nanos:int"},
    "IOS": {1: "type:int", 2: "intVal:int", 3: "strVal:string"},
    "Q": {1: "string:string"},
    "Raw": {1: "raw:bytes"},
    "DeleteOptions": {1: "gracePeriodSeconds:*int", 2: "preconditions:Preconditions",
                      3: "orphanDependents:*bool", 4: "propagationPolicy:string", 5: "dryRun:[string]"},
    "Preconditions": {1: "uid:string", 2: "resourceVersion:string"},
    # every built-in kind is decoded with protobuf_generated.py, derived from Kubernetes' .proto
    # and types.go files (scripts/gen_apiserver_protobuf.py); these are the envelope and the
    # apimachinery types its entries refer to
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; value is int or bytes."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            val, i = buf[i:i + n], i + n
        elif wt == 1:
            val, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            val, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out.append((num, wt, val))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(t: str, v: Any) -> Any:
    if t == "string":
        return v.decode()
    if t == "bytes":
        return bytes(v)
    if t == "int":
        return _signed(v)
    if t == "bool":
        return bool(v)
    raise ValueError(t)


def _special(t: str, v: bytes) -> Any:
    msg = message(v, t)
    if t == "Time":
        if not msg.get("seconds"):
            return None
        return dt.datetime.fromtimestamp(msg["seconds"], dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if t == "IOS":
        return msg.get("strVal", "") if msg.get("type") == 1 else msg.get("intVal", 0)
    if t == "Q":
        return msg.get("string", "0")
    if t == "Raw":  # runtime.RawExtension: the embedded object's own JSON
        return json.loads(base64.b64decode(msg["raw"])) if msg.get("raw") else None
    return msg


def _table(name: str) -> dict:
    return M.get(name) or GENERATED[name]


def message(buf: bytes, name: str) -> dict:
    table = _table(name)
    out: dict[str, Any] = {}
    for num, _wt, val in _fields(buf):
        spec = table.get(num)
        if spec is None:
            continue  # a field this server does not model; JSON clients could not send it either
        fname, t = spec.split(":", 1)
        pointer = t.startswith("*")
        t = t.lstrip("*")
        varint = t in ("int", "bool") or t in ("[int]", "[bool]")
        if varint != isinstance(val, int):  # a wire type that cannot carry this field's type
            raise ValueError(f"field {fname} of {name} has wire type {_wt}")
        if t.startswith("["):
            inner = t[1:-1]
            item = _scalar(inner, val) if inner in ("string", "int", "bool") else message(val, inner)
            out.setdefault(fname, []).append(item)
        elif t in ("map", "mapbytes", "{Q}"):
            entry = {n: v for n, _, v in _fields(val)}
            k = entry.get(1, b"").decode()
            raw = entry.get(2, b"")
            out.setdefault(fname, {})[k] = (base64.b64encode(raw).decode() if t == "mapbytes" else
                                            _special("Q", raw) if t == "{Q}" else raw.decode())
        elif t in ("string", "int", "bool", "bytes"):
            v = _scalar(t, val)
            if pointer or v not in ("", 0, False, b""):
                out[fname] = base64.b64encode(v).decode() if t == "bytes" else v
        elif t in ("Time", "IOS", "Q", "Raw"):
            v = _special(t, val)
            if v is not None:
                out[fname] = v
        elif fname == "inline":
            out.update(message(val, t))
        else:
            out[fname] = message(val, t)
    return out


def _generated_name(api_version: str, kind: str) -> str | None:
    """The derived table's message for a kind the hand table lacks ("apps/v1" -> "apps.v1/Kind")."""
    group, _, version = api_version.rpartition("/")
    name = f"{group.split('.')[0] if group else 'core'}.{version}/{kind}"
    return name if name in GENERATED else None


def decode(body: bytes) -> dict:
    """The JSON-shaped object inside a Kubernetes protobuf envelope."""
    if not body.startswith(MAGIC):
        raise ApiError.bad_request("protobuf body does not start with the k8s envelope prefix")
    try:
        unknown = message(body[len(MAGIC):], "Unknown")
        tm = unknown.get("typeMeta") or {}
        kind = tm.get("kind", "")
        name = _generated_name(tm.get("apiVersion", ""), kind) or (kind if kind in M else None)
        if name is None:
            raise ApiError.unsupported_media(f"application/vnd.kubernetes.protobuf ({kind or 'no kind'})")
        raw = base64.b64decode(unknown.get("raw", ""))
        obj = message(raw, name)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError.bad_request(f"unable to decode protobuf body: {exc}")
    return dict({"apiVersion": tm.get("apiVersion", ""), "kind": kind}, **obj)
