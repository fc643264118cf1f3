"""The schemas of built-in kinds come from Kubernetes' published OpenAPI, not from a hand table:
the checked-in derivation is what the generator makes from the release's definitions, every
served kind has one, and what it brings reaches users: fields kept on create, documented by
`kubectl explain`, refused with kube's words when unknown under Strict validation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from provisioner.components.apiserver import registry, schemas

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "scripts" / "gen_apiserver_schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_schemas_are_derived_from_the_release_definitions():
    generator = _generator()
    assert generator.OUTPUT.read_text() == generator.derive(), \
        "schemas_generated.json is stale: run .venv/bin/python scripts/gen_apiserver_schemas.py"


def test_every_served_kind_has_its_published_definition():
    for r in registry.RESOURCES:
        assert r.schema_type in schemas.T, r.kind
        full = schemas.FULL_NAMES[r.schema_type]
        assert full.startswith("io.k8s.") and full.endswith(f".{r.kind}"), (r.kind, full)


def test_fields_beyond_the_old_hand_table_are_kept_and_explained(kubectl, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated"},
           "spec": {"os": {"name": "linux"}, "schedulingGates": [{"name": "example.com/wait"}],
                    "containers": [{"name": "c", "image": "busybox",
                                    "envFrom": [{"prefix": "X_", "configMapRef": {"name": "cfg"}}]}]}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
    got = kubectl.json("get", "pod", "gated", "-n", ns)
    assert got["spec"]["os"] == {"name": "linux"}
    assert got["spec"]["schedulingGates"] == [{"name": "example.com/wait"}]
    assert got["spec"]["containers"][0]["envFrom"][0]["configMapRef"] == {"name": "cfg"}
    explained = kubectl("explain", "pod.spec.schedulingGates").stdout
    assert "SchedulingGates is an opaque list of values" in explained
    assert "name\t<string> -required-" in explained


def test_an_unknown_nested_field_is_refused_under_strict_validation(kubectl, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typo"},
           "spec": {"os": {"name": "linux", "flavour": "debian"},
                    "containers": [{"name": "c", "image": "busybox"}]}}
    out = kubectl("create", "-n", ns, "-f", "-", input=json.dumps(pod), check=False)
    assert out.returncode != 0
    assert 'strict decoding error: unknown field "spec.os.flavour"' in out.stderr
