"""What users see of their pods: restarts with CrashLoopBackOff, init containers, configMaps and
secrets as env and volumes (updated in place), probes, termination messages, bad input."""

from __future__ import annotations

import base64

from kubernetes import client as k8s

from .conftest import pod_manifest, wait_for


def read(api, namespace, name):
    return api.read_namespaced_pod(name, namespace)


def status_of(api, namespace, name, index=0, init=False):
    pod = read(api, namespace, name)
    statuses = pod.status.init_container_statuses if init else pod.status.container_statuses
    return statuses[index] if statuses and len(statuses) > index else None


def exec_in(kubelet, api, namespace, name, cmd):
    container_id = status_of(api, namespace, name).container_id.split("://")[1]
    return kubelet.runtime.client.exec_collect(container_id, cmd)


def test_a_crashing_container_restarts_with_back_off(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("crash", kubelet.node, [
        {"name": "main", "image": "busybox:latest",
         "command": ["sh", "-c", "echo bye > /dev/termination-log; exit 3"]}]))
    status = wait_for(lambda: (s := status_of(api, namespace, "crash")) and s.restart_count >= 1
                      and s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff" and s,
                      90, what="CrashLoopBackOff after a restart")
    last = status.last_state.terminated
    assert (last.exit_code, last.reason, last.message) == (3, "Error", "bye\n")
    assert "back-off 10s restarting failed container=main" in status.state.waiting.message
    pod = read(api, namespace, "crash")
    assert pod.status.phase == "Running"
    ready = {c.type: c.status for c in pod.status.conditions}["Ready"]
    assert ready == "False"
    events = api.list_namespaced_event(namespace).items
    assert {"Created", "Started", "BackOff"} <= {e.reason for e in events}


def test_a_pod_that_completes_succeeds(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("job", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["true"]}],
        restartPolicy="Never", initContainers=[
            {"name": "first", "image": "busybox:latest", "command": ["sh", "-c", "exit 0"]}]))
    pod = wait_for(lambda: (p := read(api, namespace, "job")).status.phase == "Succeeded" and p,
                   60, what="pod Succeeded")
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0


def test_a_failing_init_container_fails_a_never_restart_pod(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("init-fails", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "60"]}],
        restartPolicy="Never", initContainers=[
            {"name": "setup", "image": "busybox:latest", "command": ["sh", "-c", "exit 7"]}]))
    pod = wait_for(lambda: (p := read(api, namespace, "init-fails")).status.phase == "Failed"
                   and p, 60, what="pod Failed")
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 7
    assert pod.status.container_statuses[0].state.waiting.reason == "PodInitializing"


def test_config_maps_and_secrets_reach_env_and_volumes(api, kubelet, namespace):
    api.create_namespaced_config_map(namespace, k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="settings"), data={"color": "blue", "size": "L"}))
    api.create_namespaced_secret(namespace, k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="creds"),
        data={"password": base64.b64encode(b"s3cret").decode()}))
    api.create_namespaced_pod(namespace, pod_manifest("configured", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
         "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
         "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                      "key": "password"}}},
                 {"name": "MEM_LIMIT_MI", "valueFrom": {"resourceFieldRef": {
                     "resource": "limits.memory", "divisor": "1Mi"}}}],
         "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
         "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                          {"name": "sec", "mountPath": "/etc/sec", "readOnly": True},
                          {"name": "info", "mountPath": "/etc/info"},
                          {"name": "scratch", "mountPath": "/scratch"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "settings",
                                                "items": [{"key": "color", "path": "c/color"}]}},
                 {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                 {"name": "info", "downwardAPI": {"items": [
                     {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                     {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                 {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]))
    wait_for(lambda: read(api, namespace, "configured").status.phase == "Running", 60,
             what="pod Running")
    pod = read(api, namespace, "configured")
    assert pod.status.qos_class == "Guaranteed"      # requests default to limits
    container_id = pod.status.container_statuses[0].container_id.split("://")[1]
    limits = kubelet.runtime.client.inspect(container_id)["HostConfig"]
    assert (limits["Memory"], limits["NanoCpus"]) == (64 << 20, 500_000_000)   # cgroup limits
    code, out = exec_in(kubelet, api, namespace, "configured", [
        "sh", "-c", "echo $CFG_color $CFG_size $PASSWORD $MEM_LIMIT_MI; cat /etc/cfg/c/color; "
        "echo; cat /etc/sec/password; echo; cat /etc/info/name; echo; df /scratch | tail -1"])
    lines = out.decode().splitlines()
    assert code == 0, out
    assert lines[:4] == ["blue L s3cret 64", "blue", "s3cret", "configured"]
    assert lines[4].split()[0] == "tmpfs" and lines[4].split()[1] == "8192"
    code, out = exec_in(kubelet, api, namespace, "configured",
                        ["stat", "-L", "-c", "%a", "/etc/sec/password"])
    assert out.decode().strip() == "400"

    api.patch_namespaced_config_map("settings", namespace, {"data": {"color": "green"}})
    wait_for(lambda: exec_in(kubelet, api, namespace, "configured",
                             ["cat", "/etc/cfg/c/color"])[1] == b"green", 60,
             what="the configMap update in the volume")


def test_missing_config_map_is_a_create_container_config_error(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("needs-config", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
         "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent",
                                                                  "key": "k"}}}]}]))
    status = wait_for(lambda: (s := status_of(api, namespace, "needs-config")) and
                      s.state.waiting and s.state.waiting.reason == "CreateContainerConfigError"
                      and s, 60, what="CreateContainerConfigError")
    assert 'configmap "absent" not found' in status.state.waiting.message
    api.create_namespaced_config_map(namespace, k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="absent"), data={"k": "v"}))
    wait_for(lambda: read(api, namespace, "needs-config").status.phase == "Running", 60,
             what="the pod running once the configMap exists")


def test_a_missing_image_is_err_image_pull(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("no-image", kubelet.node, [
        {"name": "main", "image": "127.0.0.1:1/nothing/here:v1", "command": ["true"]}]))
    status = wait_for(lambda: (s := status_of(api, namespace, "no-image")) and s.state.waiting
                      and s.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff") and s,
                      60, what="ErrImagePull")
    assert "127.0.0.1:1/nothing/here:v1" in status.state.waiting.message
    assert read(api, namespace, "no-image").status.phase == "Pending"


def test_probes_decide_readiness_and_restart(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("probed", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
         "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                            "periodSeconds": 1, "failureThreshold": 1},
         "livenessProbe": {"exec": {"command": ["test", "!", "-f", "/tmp/dead"]},
                           "periodSeconds": 1, "failureThreshold": 2}}]))
    wait_for(lambda: read(api, namespace, "probed").status.phase == "Running", 60,
             what="pod Running")
    assert not status_of(api, namespace, "probed").ready
    exec_in(kubelet, api, namespace, "probed", ["touch", "/tmp/ready"])
    wait_for(lambda: status_of(api, namespace, "probed").ready, 30, what="ready after the probe")
    exec_in(kubelet, api, namespace, "probed", ["touch", "/tmp/dead"])
    status = wait_for(lambda: (s := status_of(api, namespace, "probed")).restart_count == 1
                      and s, 60, what="a restart after the liveness probe failed")
    assert status.last_state.terminated
    events = {e.reason for e in api.list_namespaced_event(namespace).items}
    assert {"Unhealthy", "Killing"} <= events


def test_security_context_reaches_the_container(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("locked", kubelet.node, [
        {"name": "locked", "image": "busybox:latest", "command": ["sleep", "3600"],
         "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 1000,
                             "capabilities": {"drop": ["ALL"]}}},
        {"name": "admin", "image": "busybox:latest", "command": ["sleep", "3600"],
         "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
        {"name": "root-refused", "image": "busybox:latest", "command": ["sleep", "3600"],
         "securityContext": {"runAsNonRoot": True}}]))
    refused = wait_for(lambda: (s := status_of(api, namespace, "locked", 2)) and
                       s.state.waiting and s.state.waiting.reason ==
                       "CreateContainerConfigError" and s, 60, what="runAsNonRoot refused")
    assert "container has runAsNonRoot and image will run as root" in \
        refused.state.waiting.message
    wait_for(lambda: status_of(api, namespace, "locked", 0).state.running and
             status_of(api, namespace, "locked", 1).state.running, 60, what="both running")

    def run(index, cmd):
        container_id = status_of(api, namespace, "locked", index).container_id.split("://")[1]
        return kubelet.runtime.client.exec_collect(container_id, ["sh", "-c", cmd])
    code, out = run(0, "id -u; grep CapEff /proc/self/status; touch /x")
    lines = out.decode().splitlines()
    assert lines[0] == "1000" and lines[1].split()[1] == "0000000000000000"
    assert code != 0 and "Read-only file system" in out.decode()
    code, out = run(0, "echo ok > /dev/termination-log && cat /etc/resolv.conf | head -1")
    assert code == 0                    # kubelet's own files stay writable/readable
    code, out = run(1, "grep CapEff /proc/self/status")
    assert int(out.split()[1], 16) & (1 << 12)          # CAP_NET_ADMIN is bit 12


def test_grpc_probe_follows_the_health_service(api, kubelet, namespace):
    """A real gRPC health server (in this test process, reached as a host-network pod's port)
    answers the kubelet's grpc readiness probe: SERVING, then NOT_SERVING."""
    from concurrent import futures

    import grpc

    serving = {"status": 1}

    def check(request: bytes, context) -> bytes:
        return bytes([0x08, serving["status"]])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=lambda raw: raw, response_serializer=lambda raw: raw)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        api.create_namespaced_pod(namespace, pod_manifest("grpc-probed", kubelet.node, [
            {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
             "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 1,
                                "failureThreshold": 1}}], hostNetwork=True))
        wait_for(lambda: (s := status_of(api, namespace, "grpc-probed")) and s.ready, 60,
                 what="ready through the grpc probe")
        serving["status"] = 2
        wait_for(lambda: not status_of(api, namespace, "grpc-probed").ready, 30,
                 what="not ready once NOT_SERVING")
        events = [e.message for e in api.list_namespaced_event(namespace).items
                  if e.reason == "Unhealthy"]
        assert any('responded with "NOT_SERVING"' in message for message in events)
    finally:
        server.stop(0)
