"""The audit log (--audit-policy-file, --audit-log-path/-maxsize/-maxbackup) of an API server of its
own, driven by real kubectl: levels, stages, rule matching, kube-apiserver's event shape, secrets
kept out unless a rule names them, rotation, and a bad policy refused with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import dev_cluster

from .conftest import Kubectl

SECRET_VALUE = "hunter2-do-not-log"
POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  users: ["system:apiserver"]
- level: None
  nonResourceURLs: ["/readyz*", "/livez*", "/healthz*", "/openapi*", "/api", "/apis*"]
- level: RequestResponse
  users: ["secret-auditor"]
  resources: [{group: "", resources: ["secrets"]}]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
  namespaces: ["audited"]
- level: Metadata
  resources: [{group: "", resources: ["configmaps"]}]
  omitStages: ["RequestReceived"]
- level: RequestResponse
"""
EVENT_KEYS = ["kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs",
              "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
              "requestReceivedTimestamp", "stageTimestamp", "annotations"]


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    (root / "policy.yaml").write_text(POLICY)
    log = root / "logs" / "audit.log"
    cluster = dev_cluster(root / "cluster", extra_args=[
        "--audit-policy-file", str(root / "policy.yaml"), "--audit-log-path", str(log),
        "--audit-log-maxsize", "1", "--audit-log-maxbackup", "1"])
    cluster.start()
    kubectl = Kubectl(cluster, tmp_path_factory.mktemp("audit-kubectl-home"))
    kubectl("create", "namespace", "audited")
    kubectl("create", "namespace", "quiet")
    yield cluster, kubectl, log
    cluster.stop()


def events(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def about(log, name: str) -> list[dict]:
    return [e for e in events(log) if (e.get("objectRef") or {}).get("name") == name]


def test_request_response_level_logs_both_stages_with_bodies_in_kube_apiservers_shape(audited):
    _, kubectl, log = audited
    kubectl("create", "configmap", "loud", "-n", "audited", "--from-literal=k=v")
    done = next(e for e in about(log, "loud") if e["verb"] == "create")
    created = [e for e in events(log) if e["auditID"] == done["auditID"]]
    assert [e["stage"] for e in created] == ["RequestReceived", "ResponseComplete"]
    done = created[1]
    assert list(done) == [k for k in EVENT_KEYS if k in done]
    assert done["level"] == "RequestResponse"
    assert done["user"]["username"] == "kubernetes-admin" and "system:masters" in done["user"]["groups"]
    assert done["objectRef"] == {"resource": "configmaps", "namespace": "audited", "name": "loud", "apiVersion": "v1"}
    assert "name" not in created[0]["objectRef"]  # known only once the body is read
    assert done["responseStatus"] == {"metadata": {}, "code": 201}
    assert done["requestObject"]["data"] == {"k": "v"}
    assert done["responseObject"]["metadata"]["name"] == "loud"
    assert done["userAgent"].startswith("kubectl")
    assert created[0]["auditID"] == done["auditID"]
    assert "requestObject" not in created[0]


def test_metadata_level_omits_bodies_and_the_omitted_stage(audited):
    _, kubectl, log = audited
    kubectl("create", "configmap", "hushed", "-n", "quiet", "--from-literal=k=v")
    kubectl("get", "configmap", "missing-one", "-n", "quiet", check=False)
    created = about(log, "hushed")
    assert [(e["stage"], e["level"]) for e in created] == [("ResponseComplete", "Metadata")]
    assert "requestObject" not in created[0] and "responseObject" not in created[0]
    missing = about(log, "missing-one")
    assert [e["responseStatus"]["code"] for e in missing] == [404]
    assert missing[0]["responseStatus"]["reason"] == "NotFound"


def test_secret_values_stay_out_unless_a_rule_names_secrets(audited, tmp_path):
    cluster, kubectl, log = audited
    kubectl("create", "secret", "generic", "kept", "-n", "audited", f"--from-literal=password={SECRET_VALUE}")
    kubectl("get", "secret", "kept", "-n", "audited", "-o", "yaml")
    kubectl("get", "secrets", "-n", "audited", "-o", "yaml")
    secret_events = [e for e in events(log) if e.get("objectRef", {}).get("resource") == "secrets"]
    assert {e["verb"] for e in secret_events} >= {"create", "get", "list"}
    assert {e["level"] for e in secret_events} == {"Metadata"}  # the catch-all asked RequestResponse
    assert SECRET_VALUE not in log.read_text()
    encoded = "aHVudGVyMi1kby1ub3QtbG9n"  # base64 of SECRET_VALUE, as stored in data
    assert encoded not in log.read_text()

    kubectl("create", "clusterrolebinding", "secret-auditor-edit", "--clusterrole=edit", "--user=secret-auditor")
    auditor = Kubectl(cluster, tmp_path, cluster.user_kubeconfig("secret-auditor"))
    auditor("create", "secret", "generic", "named", "-n", "audited", "--from-literal=token=explicitly-asked")
    named = [e for e in about(log, "named") if e["stage"] == "ResponseComplete"]
    assert named[0]["level"] == "RequestResponse"
    assert named[0]["requestObject"]["data"]["token"] == "ZXhwbGljaXRseS1hc2tlZA=="


def test_the_log_is_private_and_rotated_by_size_keeping_maxbackup(audited, tmp_path):
    _, kubectl, log = audited
    assert oct(os.stat(log).st_mode & 0o777) == "0o600"
    blob = tmp_path / "blob"
    blob.write_text("b" * 400_000)
    for i in range(6):  # ~2.4 MB of request and response bodies at RequestResponse
        kubectl("create", "configmap", f"bulky-{i}", "-n", "audited", f"--from-file={blob}")
    backups = sorted(p.name for p in log.parent.iterdir() if p.name != "audit.log")
    assert len(backups) == 1 and backups[0].startswith("audit-") and backups[0].endswith(".log"), backups
    assert os.path.getsize(log) <= 1024 * 1024
    json.loads(log.read_text().splitlines()[-1])  # a whole line, never a torn one


def test_a_malformed_policy_is_one_clear_error(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n")
    proc = subprocess.run([sys.executable, "-m", "provisioner.components.apiserver.main",
                           "--tls-cert-file", str(tmp_path / "none.crt"), "--tls-private-key-file",
                           str(tmp_path / "none.key"), "--audit-policy-file", str(bad),
                           "--audit-log-path", str(tmp_path / "audit.log")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ERROR: --audit-policy-file {bad}: rules[0].level: must be one of None, "
                                   "Metadata, Request, RequestResponse, got 'Everything'")
