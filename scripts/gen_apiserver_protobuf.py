"""Derive the API server's protobuf wire table from Kubernetes' published API definitions.

Reads `<group>/<version>/generated.proto` (field numbers and types) and `types.go` (which
fields are embedded in their parent's JSON, which are pointers or kept when zero) from a
checkout of https://github.com/kubernetes/api, and writes
provisioner/components/apiserver/protobuf_generated.py in protobuf.py's notation, so decoding a
built-in kind needs no hand-typed field numbers. Run after moving to a new Kubernetes release:

    git clone --depth 1 https://github.com/kubernetes/api /tmp/k8s-api
    .venv/bin/python scripts/gen_apiserver_protobuf.py /tmp/k8s-api
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PACKAGES = ["core/v1", "apps/v1", "batch/v1", "policy/v1", "scheduling/v1", "networking/v1", "autoscaling/v2",
            "storage/v1", "coordination/v1", "discovery/v1", "rbac/v1", "certificates/v1", "events/v1",
            "admissionregistration/v1", "authentication/v1", "authorization/v1", "node/v1"]
# apimachinery types, decoded by protobuf.py's own special cases
EXTERNAL = {
    ".k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta": "ObjectMeta",
    ".k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelector": "LabelSelector",
    ".k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    ".k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "Time",
    ".k8s.io.apimachinery.pkg.api.resource.Quantity": "Q",
    ".k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IOS",
    ".k8s.io.apimachinery.pkg.runtime.RawExtension": "Raw",
}
SCALARS = {"string": "string", "int32": "int", "int64": "int", "bool": "bool", "bytes": "bytes"}
FIELD = re.compile(r"^\s*(optional|repeated)\s+([.\w]+)\s+(\w+)\s*=\s*(\d+)\s*;")
MAP_FIELD = re.compile(r"^\s*map<\s*string\s*,\s*([.\w]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
GO_FIELD = re.compile(r'^\s*(?:(\w+)\s+)?(\*?)[\[\]\w.*]+\s+`json:"([^"]*)"\s+protobuf:"\w+,(\d+),[^"]*?(?:name=(\w+))?"')
GO_STRUCT = re.compile(r"^type (\w+) struct")


def go_facts(types_go: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """({(struct, field)} embedded inline, {(struct, field)} whose zero value is sent in JSON)."""
    inline, keep_zero = set(), set()
    struct = ""
    for line in types_go.splitlines():
        m = GO_STRUCT.match(line)
        if m:
            struct = m.group(1)
            continue
        m = GO_FIELD.match(line)
        if not m or not struct:
            continue
        _go_name, pointer, json_tag, number, proto_name = m.groups()
        if json_tag.split(",")[0] == "":  # an embedded struct whose fields sit in the parent's JSON
            inline.add((struct, number))
        elif pointer or "omitempty" not in json_tag:
            keep_zero.add((struct, proto_name))
    return inline, keep_zero


def notation(proto_type: str, package: str) -> str | None:
    if proto_type in SCALARS:
        return SCALARS[proto_type]
    if proto_type in EXTERNAL:
        return EXTERNAL[proto_type]
    if proto_type.startswith(".k8s.io.api."):
        *pkg, name = proto_type[len(".k8s.io.api."):].split(".")
        return f"{'.'.join(pkg)}/{name}"
    if proto_type.startswith("."):
        return None  # another apimachinery type: not decoded (never in what clients send)
    return f"{package}/{proto_type}"


def messages(proto: str, package: str, inline: set, keep_zero: set) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    current = None
    for line in proto.splitlines():
        m = re.match(r"^message (\w+) \{", line)
        if m:
            current = out.setdefault(f"{package}/{m.group(1)}", {})
            struct = m.group(1)
            continue
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        m = MAP_FIELD.match(line)
        if m:
            value, name, num = m.groups()
            kind = {"string": "map", "bytes": "mapbytes", ".k8s.io.apimachinery.pkg.api.resource.Quantity": "{Q}"}
            if value in kind:
                current[int(num)] = f"{name}:{kind[value]}"
            continue
        m = FIELD.match(line)
        if not m:
            continue
        label, proto_type, name, num = m.groups()
        t = notation(proto_type, package)
        if t is None:
            continue
        if label == "repeated":
            t = f"[{t}]"
        elif (struct, name) in keep_zero and t in ("string", "int", "bool", "bytes"):
            t = "*" + t
        if (struct, num) in inline:
            name = "inline"
        current[int(num)] = f"{name}:{t}"
    return out


def main(checkout: str) -> None:
    root = Path(checkout)
    table: dict[str, dict[int, str]] = {}
    for pkg in PACKAGES:
        package = pkg.replace("/", ".")
        inline, keep_zero = go_facts((root / pkg / "types.go").read_text())
        table.update(messages((root / pkg / "generated.proto").read_text(), package, inline, keep_zero))
    lines = ['"""Protobuf field table of the built-in kinds, derived from Kubernetes\' published API',
             "definitions by scripts/gen_apiserver_protobuf.py: do not edit by hand (run the script).",
             "",
             'Keys are "<package>/<Message>" (package as in k8s.io/api, e.g. "apps.v1"); values use',
             'protobuf.py\'s notation. protobuf.decode falls back to this table for kinds it has no',
             'hand-written entry for."""',
             "# ruff: noqa: E501",
             "",
             "MESSAGES: dict[str, dict[int, str]] = {"]
    for name in sorted(table):
        fields = ", ".join(f'{n}: "{spec}"' for n, spec in sorted(table[name].items()))
        lines.append(f'    "{name}": {{{fields}}},')
    lines.append("}")
    out = Path(__file__).resolve().parents[1] / "provisioner/components/apiserver/protobuf_generated.py"
    out.write_text("\n".join(lines) + "\n")
    print(f"{len(table)} messages -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_apiserver_protobuf.py <kubernetes/api checkout>")
    main(sys.argv[1])
