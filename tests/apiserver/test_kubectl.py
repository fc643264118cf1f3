"""Compatibility: the real kubectl 1.37 binary against etcd + this API server, asserting on its
real output. Every command the issue lists is exercised here."""

from __future__ import annotations

import threading
import time

from kubernetes import client

MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-config}}
data: {{mode: "{mode}"}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {{app: app}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{{containerPort: 80}}]
      - name: sidecar
        image: busybox
        command: [sleep, "3600"]
---
apiVersion: v1
kind: Service
metadata: {{name: app}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 80}}]
"""


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_create_namespace_and_get(kubectl):
    out = kubectl("create", "namespace", "compat-ns").stdout
    assert out.strip() == "namespace/compat-ns created"
    rows = lines(kubectl("get", "namespace", "compat-ns").stdout)
    assert rows[0] == ["NAME", "STATUS", "AGE"] and rows[1][:2] == ["compat-ns", "Active"]
    dup = kubectl("create", "namespace", "compat-ns", check=False)
    assert dup.returncode == 1
    assert 'Error from server (AlreadyExists): namespaces "compat-ns" already exists' in dup.stderr


def test_client_side_apply_create_unchanged_configured(kubectl, ns):
    out = kubectl("apply", "-n", ns, "-f", "-", input=MANIFEST.format(mode="a", replicas=2)).stdout
    assert out.split("\n")[:3] == ["configmap/app-config created", "deployment.apps/app created",
                                    "service/app created"]
    out = kubectl("apply", "-n", ns, "-f", "-", input=MANIFEST.format(mode="a", replicas=2)).stdout
    assert out.split("\n")[:3] == ["configmap/app-config unchanged", "deployment.apps/app unchanged",
                                    "service/app unchanged"]
    out = kubectl("apply", "-n", ns, "-f", "-", input=MANIFEST.format(mode="b", replicas=3)).stdout
    assert out.split("\n")[:3] == ["configmap/app-config configured", "deployment.apps/app configured",
                                    "service/app unchanged"]
    dep = kubectl.json("get", "deployment", "app", "-n", ns)
    assert dep["spec"]["replicas"] == 3 and dep["metadata"]["generation"] == 2
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    svc = kubectl.json("get", "service", "app", "-n", ns)
    assert svc["spec"]["clusterIP"].startswith("10.96.")


def test_server_side_apply_records_field_manager(kubectl, ns):
    out = kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=MANIFEST.format(mode="a", replicas=1)).stdout
    assert "deployment.apps/app serverside-applied" in out
    dep = kubectl.json("get", "deployment", "app", "-n", ns, "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    out = kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=MANIFEST.format(mode="c", replicas=4)).stdout
    assert "configmap/app-config serverside-applied" in out
    assert kubectl.json("get", "configmap", "app-config", "-n", ns)["data"] == {"mode": "c"}
    assert kubectl.json("get", "deployment", "app", "-n", ns)["spec"]["replicas"] == 4


def test_strict_validation_rejects_unknown_fields(kubectl, ns):
    bad = MANIFEST.format(mode="a", replicas=1).replace("replicas: 1", "replica: 1")
    proc = kubectl("apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert proc.returncode == 1
    assert ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
            'unknown field "spec.replica"') in proc.stderr


def test_invalid_objects_get_invalid_status_with_causes(kubectl, ns):
    proc = kubectl("create", "-n", ns, "-f", "-", check=False, input="""
apiVersion: v1
kind: Pod
metadata: {name: Bad_Name}
spec:
  containers: [{name: c}]
""")
    assert proc.returncode == 1
    assert 'The Pod "Bad_Name" is invalid' in proc.stderr
    assert "metadata.name: Invalid value: \"Bad_Name\"" in proc.stderr
    assert "spec.containers[0].image: Required value" in proc.stderr


def test_generators_send_protobuf_and_work(kubectl, ns):
    assert kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", ns
                   ).stdout.strip() == "deployment.apps/web created"
    assert kubectl("create", "configmap", "cfg", "--from-literal=a=b", "-n", ns).stdout.strip() == \
        "configmap/cfg created"
    assert kubectl("create", "secret", "generic", "s", "--from-literal=pw=x", "-n", ns).stdout.strip() == \
        "secret/s created"
    assert kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", "-n", ns).stdout.strip() == \
        "service/np created"
    assert kubectl("create", "serviceaccount", "robot", "-n", ns).stdout.strip() == "serviceaccount/robot created"
    assert kubectl("create", "job", "once", "--image=busybox", "-n", ns).stdout.strip() == "job.batch/once created"
    assert kubectl("create", "role", "reader", "--verb=get", "--resource=pods", "-n", ns).stdout.strip() == \
        "role.rbac.authorization.k8s.io/reader created"
    assert kubectl.json("get", "configmap", "cfg", "-n", ns)["data"] == {"a": "b"}
    dep = kubectl.json("get", "deployment", "web", "-n", ns)
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    np = kubectl.json("get", "service", "np", "-n", ns)["spec"]
    assert np["type"] == "NodePort" and 30000 <= np["ports"][0]["nodePort"] <= 32767
    assert np["ports"][0]["targetPort"] == 8080


def test_get_pods_wide_shows_ip_and_node(kubectl, k8s, ns):
    kubectl("run", "p1", "--image=busybox", "-n", ns, "--", "sleep", "100")
    core = client.CoreV1Api(k8s)
    core.patch_namespaced_pod_status("p1", ns, {"status": {"phase": "Running", "podIP": "10.244.1.7"}})
    core.create_namespaced_pod_binding("p1", ns, client.V1Binding(
        metadata=client.V1ObjectMeta(name="p1"), target=client.V1ObjectReference(kind="Node", name="node-a")),
        _preload_content=False)
    rows = lines(kubectl("get", "pods", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    assert rows[1][:4] == ["p1", "0/1", "Running", "0"] and rows[1][5:7] == ["10.244.1.7", "node-a"]


def test_get_all_all_namespaces(kubectl, ns):
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    out = kubectl("get", "all", "-A").stdout
    assert "service/kubernetes" in out
    assert any(r[0] == ns and r[1] == "deployment.apps/web" for r in lines(out) if len(r) > 1)


def test_describe_shows_events_by_field_selector(kubectl, k8s, ns):
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "-n", ns)
    uid = kubectl.json("get", "deployment", "web", "-n", ns)["metadata"]["uid"]
    client.CoreV1Api(k8s).create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="web.1"), reason="ScalingReplicaSet", type="Normal",
        message="Scaled up replica set web-abc to 1", source=client.V1EventSource(component="deployment-controller"),
        involved_object=client.V1ObjectReference(kind="Deployment", name="web", namespace=ns, uid=uid,
                                                 api_version="apps/v1")))
    out = " ".join(kubectl("describe", "deployment", "web", "-n", ns).stdout.split())
    assert "Name: web" in out and "Image: nginx:1.27" in out
    assert "ScalingReplicaSet" in out and "Scaled up replica set web-abc to 1" in out


def test_scale_label_annotate(kubectl, ns):
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    assert kubectl("scale", "deployment", "web", "--replicas=4", "-n", ns).stdout.strip() == \
        "deployment.apps/web scaled"
    assert kubectl.json("get", "deployment", "web", "-n", ns)["spec"]["replicas"] == 4
    assert kubectl("label", "deployment", "web", "tier=front", "-n", ns).stdout.strip() == "deployment.apps/web labeled"
    assert kubectl("annotate", "deployment", "web", "note=hi", "-n", ns).stdout.strip() == \
        "deployment.apps/web annotated"
    meta = kubectl.json("get", "deployment", "web", "-n", ns)["metadata"]
    assert meta["labels"]["tier"] == "front" and meta["annotations"]["note"] == "hi"
    assert lines(kubectl("get", "deploy", "-n", ns, "-l", "tier=front").stdout)[1][0] == "web"
    assert "No resources found" in kubectl("get", "deploy", "-n", ns, "-l", "tier=back").stderr


def test_delete_waits_until_gone(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=MANIFEST.format(mode="a", replicas=1))
    out = kubectl("delete", "-n", ns, "-f", "-", input=MANIFEST.format(mode="a", replicas=1)).stdout
    assert f'deployment.apps "app" deleted from {ns} namespace' in out
    proc = kubectl("get", "deployment", "app", "-n", ns, check=False)
    assert proc.returncode == 1 and 'deployments.apps "app" not found' in proc.stderr


def test_get_watch_streams_changes(kubectl, ns):
    # w0's row says that kubectl has listed (and so watches from then): the changes to w1 come after
    kubectl("create", "configmap", "w0", "--from-literal=a=b", "-n", ns)
    proc = kubectl.popen("get", "configmaps", "-n", ns, "-w", "--request-timeout=15s")
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not any(line.startswith("w0 ") for line in printed):
        assert proc.poll() is None and time.monotonic() < deadline, f"kubectl get -w: {printed}"
        time.sleep(0.05)
    kubectl("create", "configmap", "w1", "--from-literal=a=b", "-n", ns)
    kubectl("patch", "configmap", "w1", "-n", ns, "-p", '{"data":{"c":"d"}}')
    kubectl("delete", "configmap", "w1", "-n", ns)
    proc.wait(timeout=30)
    reader.join(10)
    rows = [r for r in lines("".join(printed)) if r and r[0] == "w1"]
    assert [r[1] for r in rows] == ["1", "2", "2"]


def test_wait_for_condition(kubectl, k8s, ns):
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    proc = kubectl.popen("wait", "--for=condition=Available", "deployment/web", "-n", ns, "--timeout=30s")
    time.sleep(0.5)
    client.AppsV1Api(k8s).patch_namespaced_deployment_status("web", ns, {"status": {"conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"}]}})
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0 and out.strip() == "deployment.apps/web condition met"


def test_api_resources(kubectl):
    rows = lines(kubectl("api-resources").stdout)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    table = {r[0]: r for r in rows[1:]}
    assert table["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert table["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert table["clusterroles"] == ["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    for name in ("namespaces", "nodes", "services", "endpoints", "configmaps", "secrets", "serviceaccounts",
                 "events", "replicasets", "daemonsets", "jobs", "leases", "endpointslices", "roles",
                 "rolebindings", "clusterrolebindings", "certificatesigningrequests"):
        assert name in table


def test_explain_deployment_spec(kubectl):
    out = kubectl("explain", "deployment.spec").stdout
    assert "KIND:       Deployment" in out and "FIELD: spec <DeploymentSpec>" in out
    assert "replicas\t<integer>" in out and "template\t<PodTemplateSpec> -required-" in out
    out = kubectl("explain", "pods.spec.containers.name").stdout
    assert "FIELD: name <string>" in out


def test_namespace_deletion_terminates_then_finalizes(kubectl, ns):
    kubectl("create", "configmap", "c", "-n", ns)
    out = kubectl("delete", "namespace", ns).stdout
    assert out.strip() == f'namespace "{ns}" deleted'
    proc = kubectl("get", "namespace", ns, check=False)
    assert proc.returncode == 1 and f'namespaces "{ns}" not found' in proc.stderr
    proc = kubectl("create", "configmap", "again", "-n", ns, check=False)
    assert proc.returncode == 1 and f'namespaces "{ns}" not found' in proc.stderr


def test_cluster_ip_and_node_port_collisions_rejected(kubectl, ns):
    kubectl("create", "service", "nodeport", "a", "--tcp=80:80", "--node-port=30123", "-n", ns)
    proc = kubectl("create", "service", "nodeport", "b", "--tcp=80:80", "--node-port=30123", "-n", ns, check=False)
    assert proc.returncode == 1 and "provided port is already allocated" in proc.stderr
    ip = kubectl.json("get", "service", "a", "-n", ns)["spec"]["clusterIP"]
    proc = kubectl("create", "service", "clusterip", "c", "--tcp=80:80", f"--clusterip={ip}", "-n", ns, check=False)
    assert proc.returncode == 1 and "provided IP is already allocated" in proc.stderr
    kubectl("delete", "service", "a", "-n", ns)
    kubectl("create", "service", "nodeport", "b", "--tcp=80:80", "--node-port=30123", "-n", ns)
