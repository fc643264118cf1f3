"""Derive the API server's schemas of built-in kinds from Kubernetes' published OpenAPI.

Reads the definitions Kubernetes publishes for its release (as JSON Schema, from the
`kubernetes-validate` package, which ships each release's OpenAPI definitions:
`kubernetes-json-schema/v1.37.0-local/_definitions.json`) and writes
provisioner/components/apiserver/schemas_generated.json in schemas.py's compact notation: every
type reachable from a kind the registry serves, with its description, its fields' notations and
descriptions, and its required fields. Nothing about a built-in kind's shape is typed by hand.
Run after moving to a new Kubernetes release (and `kubernetes-validate` with it):

    .venv/bin/python scripts/gen_apiserver_schemas.py

`tests/apiserver/test_schemas_derived.py` re-derives and compares, so the file cannot drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioner.components.apiserver.registry import RESOURCES  # noqa: E402

RELEASE = "v1.37.0"
OUTPUT = ROOT / "provisioner" / "components" / "apiserver" / "schemas_generated.json"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Definitions that are values, not objects, in the notation (schemas.py).
SCALAR_DEFS = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    f"{META}Time": "time",
    f"{META}MicroTime": "time",
    f"{META}Duration": "string",
    f"{META}FieldsV1": "any",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "any",
}
# Free-form JSON kept as is: a CRD's own schema is checked by crd.py/crdschema.py, not pruned.
FREE_FORM = {"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"}
# Kinds served through another kind's schema, or answered on the spot, that are still documents.
EXTRA_ROOTS = [("autoscaling", "v1", "Scale"), ("policy", "v1", "Eviction"), ("", "v1", "Binding")]


def definitions_file() -> Path:
    import kubernetes_validate

    return (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
            / f"{RELEASE}-local" / "_definitions.json")


def _types(schema: dict) -> set[str]:
    t = schema.get("type", [])
    return set([t] if isinstance(t, str) else t) - {"null"}


def _ref(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


class Deriver:
    def __init__(self, defs: dict):
        self.defs = defs
        self.short: dict[str, str] = {}  # full name -> short name

    def roots(self) -> list[str]:
        by_gvk = {}
        for full, d in self.defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind") or []:
                by_gvk.setdefault((gvk["group"], gvk["version"], gvk["kind"]), full)
        wanted = [(r.group, r.version, r.kind) for r in RESOURCES] + EXTRA_ROOTS
        return [by_gvk[gvk] for gvk in wanted if gvk in by_gvk]

    def reachable(self, roots: list[str]) -> list[str]:
        seen: list[str] = []
        todo = list(roots)
        while todo:
            full = todo.pop(0)
            if full in seen or full in SCALAR_DEFS or full in FREE_FORM or self._value_like(full):
                continue
            seen.append(full)
            for prop in (self.defs[full].get("properties") or {}).values():
                todo += self._refs(prop)
        return seen

    def _refs(self, schema: dict) -> list[str]:
        out = [r for r in [_ref(schema)] if r]
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                out += self._refs(schema[key])
        return out

    def _value_like(self, full: str) -> bool:
        """A definition without properties is a value (string, number, free-form object)."""
        return not self.defs[full].get("properties")

    def name(self, roots: list[str], reachable: list[str]) -> None:
        """Short names as Kubernetes' documentation says them; where two packages define the
        same name, the first (meta, then core, then the registry's order) keeps it and the
        others are qualified by group and version (events.k8s.io/v1 Event: EventsV1Event)."""
        def priority(full: str) -> tuple[int, int]:
            rank = 0 if full.startswith(META) else 1 if full.startswith("io.k8s.api.core.v1.") else 2
            return rank, reachable.index(full)
        taken: set[str] = set()
        for full in sorted(reachable, key=priority):
            base = full.rsplit(".", 1)[-1]
            if base in taken:
                parts = full.split(".")
                base = parts[-3].capitalize() + parts[-2].capitalize() + base
            taken.add(base)
            self.short[full] = base

    def notation(self, schema: dict) -> str:
        ref = _ref(schema)
        if ref:
            if ref in SCALAR_DEFS:
                return SCALAR_DEFS[ref]
            if ref in FREE_FORM:
                return "any"
            if self._value_like(ref):
                return self._value(self.defs[ref])
            return self.short[ref]
        types = _types(schema)
        if "array" in types:
            elem = self.notation(schema.get("items") or {})
            key = schema.get("x-kubernetes-patch-merge-key")
            return f"[{elem}@{key}]" if key else f"[{elem}]"
        if "object" in types and isinstance(schema.get("additionalProperties"), dict):
            elem = self.notation(schema["additionalProperties"])
            return "map" if elem == "string" else f"{{{elem}}}"
        return self._value(schema)

    @staticmethod
    def _value(schema: dict) -> str:
        types = _types(schema)
        if schema.get("format") == "int-or-string":
            return "int-or-string"
        if "string" in types:
            return "time" if schema.get("format") == "date-time" else "string"
        if "integer" in types:
            return "integer"
        if "number" in types:
            return "number"
        if "boolean" in types:
            return "boolean"
        return "any"

    def table(self) -> dict:
        roots = self.roots()
        reachable = self.reachable(roots)
        self.name(roots, reachable)
        types = {}
        for full in reachable:
            d = self.defs[full]
            props = d.get("properties") or {}
            types[self.short[full]] = {
                "name": full,
                "description": d.get("description", ""),
                "fields": {k: self.notation(v) for k, v in props.items()},
                "docs": {k: v["description"] for k, v in props.items() if v.get("description")},
                "required": list(d.get("required") or []),
            }
        return {"source": f"kubernetes-validate {RELEASE}-local/_definitions.json",
                "types": dict(sorted(types.items()))}


def derive(path: Path | None = None) -> str:
    defs = json.loads((path or definitions_file()).read_text())["$defs"]
    return json.dumps(Deriver(defs).table(), indent=1, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(derive(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
