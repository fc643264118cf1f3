"""Structural schemas of custom resources: pruning, defaulting and validation (OpenAPI v3 subset).

What kube-apiserver's apiextensions server does with a CRD version's `openAPIV3Schema`, for the
keywords structural schemas use: type, properties, additionalProperties, items, required,
enum, minimum/maximum (exclusive too), minLength/maxLength, minItems/maxItems, pattern, format
(left unchecked, as Kubernetes does for most), nullable, default, and the x-kubernetes
extensions preserve-unknown-fields, int-or-string and embedded-resource. apiVersion, kind and
metadata are the server's and are never pruned. Messages are kube-apiserver's wording.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

Causes = list[tuple[str, str]]
SERVER_FIELDS = ("apiVersion", "kind", "metadata")
TYPE_NAMES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":")) if not isinstance(v, str) else f'"{v}"'


def _type_ok(value: Any, schema: dict) -> bool:
    t = schema.get("type")
    if value is None:
        return bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if not t:
        return True
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPE_NAMES.get(t, object))


def prune(value: Any, schema: dict, path: str, unknown: list[str], root: bool = False) -> Any:
    """Drop fields the schema does not declare (recording their paths), in place."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        for key in list(value):
            sub = f"{path}.{key}" if path else key
            if (root or embedded) and key in SERVER_FIELDS:
                continue
            if isinstance(props, dict) and key in props:
                value[key] = prune(value[key], props[key], sub, unknown)
            elif isinstance(extra, dict):
                value[key] = prune(value[key], extra, sub, unknown)
            elif extra is True or preserve:
                continue
            else:
                unknown.append(sub)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = prune(item, schema["items"], f"{path}[{i}]", unknown)
    return value


def default(value: Any, schema: dict) -> Any:
    """Fill `default`s of absent properties, recursively (defaults are copied, never shared)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in (schema.get("properties") or {}):
                    value[key] = default(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default(item, schema["items"]) for item in value]
    return value


def validate(value: Any, schema: dict, path: str, root: bool = False) -> Causes:
    if not isinstance(schema, dict):
        return []
    causes: Causes = []
    where = path or "<root>"
    if not _type_ok(value, schema):
        if value is None:
            return [(where, f"Invalid value: \"null\": {where} in body must be of type {schema.get('type')}: \"null\"")]
        wanted = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        got = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), "number")
        if isinstance(value, int) and not isinstance(value, bool):
            got = "integer"
        return [(where, f'Invalid value: "{got}": {where} in body must be of type {wanted}: "{got}"')]
    if value is None:
        return []
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        causes.append((where, f"Unsupported value: {_json(value)}: supported values: "
                       + ", ".join(_json(e) for e in enum)))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, (int, float)):
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                word = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
                causes.append((where, f"Invalid value: {value}: {where} in body should be {word} {low}"))
        if isinstance(high, (int, float)):
            if value > high or (schema.get("exclusiveMaximum") and value == high):
                word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
                causes.append((where, f"Invalid value: {value}: {where} in body should be {word} {high}"))
    if isinstance(value, str):
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            causes.append((where, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            causes.append((where, f'Invalid value: "{value}": {where} in body should be at least '
                           f"{schema['minLength']} chars long"))
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if not re.search(pattern, value):
                    causes.append((where, f"Invalid value: \"{value}\": {where} in body should match '{pattern}'"))
            except re.error:
                pass  # an unusable pattern was refused when the CRD was written
    if isinstance(value, list):
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            causes.append((where, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            causes.append((where, f"Invalid value: {len(value)}: {where} in body should have at least "
                           f"{schema['minItems']} items"))
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                causes += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                causes.append((f"{path}.{key}" if path else key, "Required value"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if root and key in SERVER_FIELDS:
                continue
            child = f"{path}.{key}" if path else key
            if key in props:
                causes += validate(sub, props[key], child)
            elif isinstance(extra, dict):
                causes += validate(sub, extra, child)
    return causes


# The JSON shape of the schema keywords the walks below read (JSONSchemaProps' field types).
KEYWORD_SHAPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "type": (str, "a string"), "properties": (dict, "an object of schemas"),
    "items": ((dict, list), "a schema or a list of schemas"),
    "additionalProperties": ((dict, bool), "a schema or a boolean"),
    "required": (list, "a list of property names"), "enum": (list, "a list"),
    "pattern": (str, "a string"), "description": (str, "a string"),
    "anyOf": (list, "a list of schemas"), "allOf": (list, "a list of schemas"),
}


def check_structural(schema: Any, path: str) -> Causes:
    """The CRD-side checks: a schema is required, typed objects at the top, usable patterns."""
    if not isinstance(schema, dict):
        return [(path, "Required value: schemas are required")]
    causes: Causes = []
    if schema.get("type") not in (None, "object") and path.endswith("openAPIV3Schema"):
        causes.append((f"{path}.type", f'Invalid value: "{schema.get("type")}": must be object at the root'))

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            causes.append((where, f"Invalid value: {json.dumps(node)}: must be a JSON schema object"))
            return
        for keyword, (kinds, what) in KEYWORD_SHAPES.items():
            if keyword in node and not isinstance(node[keyword], kinds):
                causes.append((f"{where}.{keyword}", f"Invalid value: {json.dumps(node[keyword])}: "
                                                     f"must be {what}"))
                return  # its sub-schemas are not walked: they are not where they should be
        untyped = not node.get("type") and not node.get("x-kubernetes-int-or-string") and \
            not node.get("x-kubernetes-preserve-unknown-fields") and where != path
        if untyped and not node.get("anyOf") and not node.get("allOf"):
            causes.append((f"{where}.type", "Required value: must not be empty for specified object fields"))
        if isinstance(node.get("pattern"), str):
            try:
                re.compile(node["pattern"])
            except re.error as exc:
                causes.append((f"{where}.pattern", f'Invalid value: "{node["pattern"]}": {exc}'))
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.properties[{key}]")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}.items")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}.additionalProperties")
    walk(schema, path)
    return causes
