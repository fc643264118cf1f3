"""Decoding a request body against the schema: types, unknown fields, field validation mode.

Mirrors what the Go decoder does to a typed object: wrong JSON types fail with the
`cannot be handled as a <Kind>` message; unknown and duplicate fields are dropped (Ignore), reported
as warnings (Warn, the default) or rejected (Strict) with `strict decoding error: unknown field
"spec.foo"`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

from . import schemas
from .errors import ApiError

GO_TYPES = {"string": "string", "integer": "int64", "boolean": "bool", "number": "float64",
            "time": "string", "quantity": "resource.Quantity", "int-or-string": "intstr.IntOrString",
            "map": "map[string]string"}


ZERO: dict[str, Any] = {"string": "", "integer": 0, "boolean": False, "number": 0, "time": None,
                        "quantity": "0", "int-or-string": 0, "map": {}}


# which JSON values each scalar notation takes (a type not named here takes anything)
ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str), "time": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "quantity": lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    "int-or-string": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
    "map": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}

# schemas.parse per notation, worked out once: the notations are the schemas' own (bounded), and
# every field of every decoded object asks
parse_notation = functools.lru_cache(maxsize=None)(schemas.parse)


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


class _Prune:
    def __init__(self, kind: str):
        self.kind = kind
        self.unknown: list[str] = []

    def fail(self, v: Any, go_type: str, path: str, owner: str) -> None:
        raise ApiError.bad_request(
            f'{self.kind} in version "v1" cannot be handled as a {self.kind}: json: cannot '
            f'unmarshal {_json_kind(v)} into Go struct field {owner}.{path} of type {go_type}')

    def value(self, v: Any, notation: str, path: str, owner: str) -> Any:
        if v is None:
            return None
        shape, elem, _ = parse_notation(notation)
        if shape == "ref":
            if not isinstance(v, dict):
                self.fail(v, elem, path, owner)
            return self.obj(v, elem, path)
        if shape == "list":
            if not isinstance(v, list):
                self.fail(v, f"[]{GO_TYPES.get(elem, elem)}", path, owner)
            # a null element decodes to the element type's zero value, as in Go
            return [self.value(ZERO.get(elem, {}) if x is None and elem != "any" else x, elem,
                               f"{path}[{i}]", owner) for i, x in enumerate(v)]
        if shape == "map":
            if not isinstance(v, dict):
                self.fail(v, f"map[string]{GO_TYPES.get(elem, elem)}", path, owner)
            return {k: self.value(x, elem, f"{path}.{k}", owner) for k, x in v.items()}
        return self.scalar(v, elem, path, owner)

    def scalar(self, v: Any, t: str, path: str, owner: str) -> Any:
        accepts = ACCEPTS.get(t)
        if accepts is not None and not accepts(v):
            if t == "map" and isinstance(v, dict):
                bad = next(k for k, x in v.items() if not isinstance(x, str))
                self.fail(v[bad], "string", f"{path}.{bad}", owner)
            self.fail(v, GO_TYPES.get(t, t), path, owner)
        if t == "integer" and isinstance(v, float):
            return int(v)
        return v

    def obj(self, v: dict, type_name: str, path: str) -> dict:
        fields = schemas.T[type_name][1]
        out = {}
        for k, x in v.items():
            if k not in fields:
                self.unknown.append(f"{path}.{k}" if path else k)
                continue
            if x is None and fields[k] != "any":
                continue  # null is the zero value, which Go's encoder then omits
            out[k] = self.value(x, fields[k], f"{path}.{k}" if path else k, type_name)
        return out


def decode(body: bytes, kind: str, mode: str | None) -> tuple[dict, list[str]]:
    """Parse and prune a body of `kind`; returns (object, warnings)."""
    mode = (mode or "Warn")
    if mode not in ("Ignore", "Warn", "Strict"):
        raise ApiError.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict; got {mode!r}")
    obj = parse_json(body)
    if not isinstance(obj, dict):
        raise ApiError.bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: "
                                   f"json: cannot unmarshal {_json_kind(obj)} into Go value of type "
                                   f"struct")
    return prune(obj, kind, mode)


def prune(obj: dict, kind: str, mode: str = "Warn") -> tuple[dict, list[str]]:
    if kind not in schemas.T:
        return obj, []
    p = _Prune(kind)
    out = p.obj(obj, kind, "")
    if p.unknown and mode == "Strict":
        msgs = ", ".join(f'unknown field "{u}"' for u in p.unknown)
        raise ApiError.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: '
                                   f"strict decoding error: {msgs}")
    warnings = [f'unknown field "{u}"' for u in p.unknown] if mode == "Warn" else []
    return out, warnings


def parse_json(body: bytes) -> Any:
    if not body or not body.strip():
        raise ApiError.bad_request("the body of the request was empty")
    try:
        return json.loads(body, object_pairs_hook=_no_dupes)
    except _Duplicate as exc:
        raise ApiError.bad_request(f'json: duplicate field "{exc.args[0]}"')
    except (ValueError, RecursionError) as exc:
        raise ApiError.bad_request(f"the body of the request was not valid JSON: {exc}")


class _Duplicate(ValueError):
    pass


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out
