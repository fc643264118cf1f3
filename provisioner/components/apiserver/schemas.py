"""The schemas of the served built-in types, derived from Kubernetes' published OpenAPI.

`schemas_generated.json` is written by scripts/gen_apiserver_schemas.py from the definitions
Kubernetes publishes for its release; nothing here is typed by hand. One table, three uses:
strict field validation and pruning (decode.py), /openapi/v3 and v2 (`kubectl explain` and
kubectl's validation check, openapi.py), and strategic-merge and managed-fields keys (patch.py,
fields.py). A type is known by its short name (`PodSpec`; where two API groups define the same
name, the later one is qualified: `EventsV1Event`).

Notation of a field:
  "string" "integer" "boolean" "number" "int-or-string" "quantity" "time" "map" (string map)
  "any" (free-form, kept as is), "Type" (a named type), "[T]" (list), "[T@key]" (list merged
  by `key` in strategic merge patch), "{T}" (map of T).
"""

from __future__ import annotations

import json
from pathlib import Path

_DERIVED = json.loads((Path(__file__).with_name("schemas_generated.json")).read_text())

# short name -> (description, {field: notation}, [required fields as the OpenAPI document says])
T: dict[str, tuple[str, dict[str, str], list[str]]] = {
    name: (t["description"], t["fields"], t["required"]) for name, t in _DERIVED["types"].items()}
# short name -> the OpenAPI definition's full name (io.k8s.api.core.v1.PodSpec)
FULL_NAMES: dict[str, str] = {name: t["name"] for name, t in _DERIVED["types"].items()}
# short name -> {field: description}, for `kubectl explain`
FIELD_DOCS: dict[str, dict[str, str]] = {name: t["docs"] for name, t in _DERIVED["types"].items()}


def parse(notation: str) -> tuple[str, str, str | None]:
    """Return (shape, element, merge key): shape is scalar, ref, list, map or any."""
    if notation.startswith("["):
        inner = notation[1:-1]
        elem, _, key = inner.partition("@")
        return "list", elem, key or None
    if notation.startswith("{"):
        return "map", notation[1:-1], None
    if notation in T:
        return "ref", notation, None
    return "scalar", notation, None


def field_of(type_name: str, field: str) -> str | None:
    return T[type_name][1].get(field) if type_name in T else None
