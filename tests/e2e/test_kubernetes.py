"""End to end on the local lab: `create cluster` makes a Kubernetes cluster users drive with kubectl.

One control plane (with etcd) and two workers joined by bootstrap token, on real systemd-nspawn
hosts; the create's own smoke tests must all pass. Then the cluster is used as users use one: real
kubectl (`run`, `logs`, `exec`, `auth whoami`), the official Python client, a kubeconfig for
another user; a second create changes nothing; delete leaves the hosts as they were. Tests that
only read share the one cluster; each test can also run alone (the fixture creates what it needs).
"""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest
import yaml

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
PROVISIONER = str(BIN / "provisioner")
KUBECTL = str(BIN / "kubectl")


class KubeCluster:
    def __init__(self, lab, workdir: Path):
        self.workdir = workdir
        self.state_dir = workdir / "state"
        inventory = yaml.safe_load(Path(lab.inventory_path).read_text())
        first, *others = inventory["hosts"]
        self.hosts = [dict(first, roles=["control-plane", "etcd"]),
                      *(dict(h, roles=["worker"]) for h in others)]
        self.key = inventory["ssh"]["key"]
        self.address = {h["name"]: h["address"] for h in self.hosts}
        self.spec = workdir / "cluster.yaml"
        self.spec.write_text(yaml.safe_dump({
            "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "k8s"},
            "spec": {"ssh": {"user": "root", "key": self.key}, "hosts": self.hosts}}))
        self.kubeconfig = workdir / "admin.conf"
        self.create_output = ""

    def cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PROVISIONER_STATE_DIR=str(self.state_dir))
        return subprocess.run([PROVISIONER, *args], capture_output=True, text=True, env=env,
                              timeout=timeout)

    def kubectl(self, *args: str, timeout: float = 120,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env,
                              timeout=timeout, input=input)

    def ssh(self, host: str, command: str, address: str | None = None) -> str:
        """`address`: for a host no longer in the spec."""
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.state_dir / "clusters" / "k8s" / "known_hosts"))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(address or self.address[host], username="root", key_filename=self.key,
                       allow_agent=False, look_for_keys=False, timeout=10)
        try:
            _, stdout, _ = client.exec_command(command, timeout=120)
            return stdout.read().decode()
        finally:
            client.close()


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (f"exit {result.returncode}\nstdout:\n{result.stdout[-6000:]}"
                                    f"\nstderr:\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def kube(lab, tmp_path_factory) -> KubeCluster:
    cluster = KubeCluster(lab, tmp_path_factory.mktemp("kubernetes"))
    cluster.create_output = _ok(cluster.cli("create", "cluster", "-f", str(cluster.spec)))
    _ok(cluster.cli("kubeconfig", "-f", str(cluster.spec), "-o", str(cluster.kubeconfig)))
    return cluster


def test_create_brings_up_the_control_plane_joins_workers_and_passes_every_smoke_test(kube):
    out = kube.create_output
    workers = [h["name"] for h in kube.hosts if h["roles"] == ["worker"]]
    for phase in ("kubeconfig", "container-runtime", "control-plane/apiserver",
                  "kubelet-start", "wait-control-plane", "bootstrap-token", "join",
                  "addons/dns", "verify"):
        assert f"[{phase}] done in" in out
    for worker in workers:
        assert f"[join] {worker}: changed: kubelet.service running and enabled" in out
    assert "FAIL" not in out
    for check in ("node Ready", "Secrets encrypted at rest", "Deployment rolls out",
                  "kubectl logs", "kubectl exec", "kubectl port-forward", "NodePort answers",
                  "ClusterIP answers from a pod", "Service name resolves in a pod",
                  "pod to pod across hosts", "kubectl top nodes"):
        assert f"PASS {check}" in out, check
    assert "all " in out and "smoke tests passed" in out


def test_kubectl_sees_every_node_ready_with_roles_and_the_control_plane_tainted(kube):
    nodes = json.loads(_ok(kube.kubectl("get", "nodes", "-o", "json")))["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    assert set(by_name) == set(kube.address)
    for name, node in by_name.items():
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", (name, ready)
        assert {"type": "InternalIP", "address": kube.address[name]} in node["status"]["addresses"]
        assert node["spec"].get("podCIDR")
    control_plane = by_name[kube.hosts[0]["name"]]
    assert "node-role.kubernetes.io/control-plane" in control_plane["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in [
        {k: t[k] for k in ("key", "effect")} for t in control_plane["spec"]["taints"]]
    wide = _ok(kube.kubectl("get", "nodes", "-o", "wide"))
    assert "Ready" in wide and "provisioner-runtime://" in wide


def test_kubectl_top_lists_every_node_and_the_add_on_pods(kube):
    """metrics-server (the addons phase) behind v1beta1.metrics.k8s.io: two scrapes after it is
    ready, `kubectl top` answers (polled with a deadline)."""
    import time

    deadline, top = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        top = kube.kubectl("top", "nodes")
        if top.returncode == 0 and {line.split()[0] for line in top.stdout.splitlines()[1:]} == set(kube.address):
            break
        time.sleep(2)
    assert {line.split()[0] for line in _ok(top).splitlines()[1:]} == set(kube.address), top.stdout
    # a pod's metrics need two scrapes of its own: they may come a period after the nodes'
    deadline = time.monotonic() + 120
    pods = kube.kubectl("top", "pods", "-n", "kube-system")
    while not (pods.returncode == 0 and "metrics-server-" in pods.stdout and "coredns-" in pods.stdout) \
            and time.monotonic() < deadline:
        time.sleep(2)
        pods = kube.kubectl("top", "pods", "-n", "kube-system")
    assert "metrics-server-" in _ok(pods) and "coredns-" in _ok(pods), pods.stdout


def test_kubectl_run_logs_exec_and_delete_a_pod(kube):
    name = "hello"
    _ok(kube.kubectl("run", name, "--image=busybox", "--restart=Never", "--",
                     "sh", "-c", "echo hello from $(hostname); sleep 3600"))
    try:
        _ok(kube.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=180s",
                         timeout=200))
        # Ready says the container runs, not that its shell has written its line yet
        deadline = time.monotonic() + 60
        logs = _ok(kube.kubectl("logs", name))
        while "hello from hello" not in logs and time.monotonic() < deadline:
            time.sleep(1)
            logs = _ok(kube.kubectl("logs", name))
        assert "hello from hello" in logs, logs
        assert _ok(kube.kubectl("exec", name, "--", "cat", "/etc/hostname")).strip() == name
        resolv = _ok(kube.kubectl("exec", name, "--", "cat", "/etc/resolv.conf"))
        assert "nameserver 10.96.0.10" in resolv and "ndots:5" in resolv
    finally:
        # sh as PID 1 ignores SIGTERM: a short grace period, not 30 s of waiting for the KILL
        _ok(kube.kubectl("delete", "pod", name, "--grace-period=1", "--wait=true", "--timeout=120s",
                         timeout=150))
    assert name not in _ok(kube.kubectl("get", "pods", "-o", "name"))


def test_the_official_python_client_reads_and_writes_the_cluster(kube):
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(kube.kubeconfig)))
    system = {p.metadata.name for p in api.list_namespaced_pod("kube-system").items}
    assert f"kube-apiserver-{kube.hosts[0]['name']}" in system
    assert any(name.startswith("coredns-") for name in system)
    made = api.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="from-python"), data={"k": "v"}))
    try:
        assert api.read_namespaced_config_map("from-python", "default").data == {"k": "v"}
    finally:
        api.delete_namespaced_config_map(made.metadata.name, "default")


def test_a_kubeconfig_for_another_user_is_private_and_authenticates_as_that_user(kube):
    path = kube.workdir / "alice.conf"
    _ok(kube.cli("kubeconfig", "-f", str(kube.spec), "--user", "alice", "--group", "devs",
                 "-o", str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = dict(os.environ, KUBECONFIG=str(path))
    whoami = subprocess.run([KUBECTL, "auth", "whoami", "-o", "json"], capture_output=True,
                            text=True, env=env, timeout=60)
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == "alice" and "devs" in user["groups"]
    denied = subprocess.run([KUBECTL, "get", "secrets", "-A"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    printed = _ok(kube.cli("kubeconfig", "-f", str(kube.spec)))
    assert "client-certificate-data" in printed and "kubernetes-admin" in printed


def test_workers_joined_by_token_hold_no_ca_key_and_their_own_certificate(kube):
    for host in kube.hosts[1:]:
        listing = kube.ssh(host["name"], "ls /etc/kubernetes/pki; ls /var/lib/kubelet/pki")
        assert "ca.crt" in listing and "ca.key" not in listing and "sa.key" not in listing
    csrs = json.loads(_ok(kube.kubectl("get", "csr", "-o", "json")))["items"]
    requesters = {c["spec"]["username"] for c in csrs
                  if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"}
    assert requesters and all(r.startswith("system:bootstrap:") for r in requesters)


def test_a_second_run_changes_nothing(kube):
    out = _ok(kube.cli("create", "cluster", "-f", str(kube.spec), "--skip", "verify"))
    assert "changed:" not in out, out
    assert "nothing to change" in out
    dry = _ok(kube.cli("create", "cluster", "-f", str(kube.spec), "--dry-run"))
    assert "would" not in dry.replace("would be made", ""), dry


def test_images_load_puts_an_archive_on_every_node_once_and_pods_run_it(kube, tmp_path):
    from provisioner.components.runtime.images.archive import save_to_path
    from provisioner.components.runtime.images.bootstrap import ensure_bootstrap_images
    from provisioner.components.runtime.images.store import ImageStore

    store = ImageStore(str(tmp_path / "store"))
    busybox = ensure_bootstrap_images(store)[0]
    store.tag(busybox, "smoke/app:1")
    archive = tmp_path / "app.tar"
    save_to_path(store, ["smoke/app:1"], str(archive))
    first = _ok(kube.cli("images", "load", "-f", str(kube.spec), "--archive", str(archive)))
    for name in kube.address:
        assert f"[images] {name}: loaded smoke/app:1" in first
    again = _ok(kube.cli("images", "load", "-f", str(kube.spec), "--archive", str(archive)))
    assert again.count("already holds smoke/app:1") == len(kube.address)
    _ok(kube.kubectl("run", "app", "--image=smoke/app:1", "--image-pull-policy=Never",
                     "--restart=Never", "--", "sleep", "3600"))
    try:
        _ok(kube.kubectl("wait", "--for=condition=Ready", "pod/app", "--timeout=180s",
                         timeout=200))
    finally:
        kube.kubectl("delete", "pod", "app", "--wait=false")


def test_images_push_serves_a_pod_on_a_worker_from_the_registry_which_wants_certificates(
        kube, tmp_path):
    import ssl
    import urllib.request

    from provisioner.components.runtime.images.bootstrap import ensure_bootstrap_images
    from provisioner.components.runtime.images.store import ImageStore

    store = ImageStore(str(tmp_path / "store"))
    store.tag(ensure_bootstrap_images(store)[0], "smoke/pushed:1")
    registry = f"{kube.hosts[0]['address']}:5000"  # the first control-plane host, port 5000
    pushed = _ok(kube.cli("images", "push", "-f", str(kube.spec), "--root",
                          str(tmp_path / "store"), "smoke/pushed:1"))
    image = f"{registry}/smoke/pushed:1"
    assert f"pods use: {image}" in pushed, pushed
    worker = next(h["name"] for h in kube.hosts if h["roles"] == ["worker"])
    overrides = json.dumps({"apiVersion": "v1",
                            "spec": {"nodeSelector": {"kubernetes.io/hostname": worker}}})
    _ok(kube.kubectl("run", "pushed", f"--image={image}", "--image-pull-policy=Always",
                     "--restart=Never", f"--overrides={overrides}", "--", "sleep", "3600"))
    try:
        _ok(kube.kubectl("wait", "--for=condition=Ready", "pod/pushed",
                         "--timeout=180s", timeout=200))
        pod = json.loads(_ok(kube.kubectl("get", "pod", "pushed", "-o", "json")))
        assert pod["spec"]["nodeName"] == worker
        assert pod["status"]["containerStatuses"][0]["image"].endswith("smoke/pushed:1")
    finally:
        kube.kubectl("delete", "pod", "pushed", "--wait=false")
    # Without a client certificate the registry ends the TLS handshake (the CA alone is not
    # enough); nodes present theirs from the runtime's certs.d.
    ca = kube.state_dir / "clusters" / "k8s" / "pki" / "ca.crt"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"https://{registry}/v2/", timeout=10,
                               context=ssl.create_default_context(cafile=str(ca)))
    certs_d = f"/var/lib/provisioner/runtime/certs.d/{registry}"
    listing = kube.ssh(worker, f"stat -c '%a %n' {certs_d}/*")
    assert sorted(listing.split("\n")[:-1]) == [
        f"600 {certs_d}/client.key", f"644 {certs_d}/ca.crt", f"644 {certs_d}/client.cert"]
    # the registry's certificates expire as the others do: check-expiration lists them
    expiry = _ok(kube.cli("certs", "check-expiration", "-f", str(kube.spec)))
    assert f"registry-serving-{kube.hosts[0]['name']} " in expiry
    assert f"registry-client-{worker} " in expiry and "not issued" not in expiry


class FourthHost:
    """The lab grown by one host, which joins `kube` as a worker (see the `fourth` fixture)."""

    def __init__(self, kube: KubeCluster, lab):
        self.kube, self.lab = kube, lab
        self.original_hosts = list(kube.hosts)
        self.lab_env = dict(os.environ, PROVISIONER_STATE_DIR=str(lab.state_root))
        self.grow_output = self.join_output = ""
        self.host: dict = {}
        self.name = ""

    def grow(self) -> None:
        self.grow_output = self.lab_cli("up", "--nodes", "4")
        inventory = yaml.safe_load(Path(self.lab.inventory_path).read_text())
        self.host = dict(inventory["hosts"][3], roles=["worker"])
        self.name = self.host["name"]

    def lab_cli(self, *args: str) -> str:
        return _ok(subprocess.run([PROVISIONER, "lab", *args, "--name", self.lab.name],
                                  capture_output=True, text=True, env=self.lab_env, timeout=600))

    def write_spec(self, hosts: list[dict]) -> None:
        self.kube.hosts = hosts
        self.kube.address = {h["name"]: h["address"] for h in hosts}
        doc = yaml.safe_load(self.kube.spec.read_text())
        doc["spec"]["hosts"] = hosts
        self.kube.spec.write_text(yaml.safe_dump(doc))

    def node(self) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl("get", "node", self.name, "-o", "json")


@pytest.fixture(scope="module")
def fourth(kube, lab):
    """`lab up --nodes 4` on the running lab, and a create with the new host in the spec.
    Afterwards the spec, the cluster and the lab are as before (the host removed if a test
    did not, then the lab shrunk), so the tests after these see three hosts again."""
    grown = FourthHost(kube, lab)
    try:
        grown.grow()
        grown.write_spec([*grown.original_hosts, grown.host])
        grown.join_output = _ok(kube.cli("create", "cluster", "-f", str(kube.spec),
                                         "--skip", "verify"))
        yield grown
    finally:
        grown.write_spec(grown.original_hosts)
        kube.kubectl("delete", "namespace", "drain-test", "--wait=false")
        if grown.name and grown.node().returncode == 0:
            _ok(kube.cli("create", "cluster", "-f", str(kube.spec), "--skip", "verify"))
        grown.lab_cli("up", "--nodes", "3", "--shrink")


def test_lab_up_adds_a_fourth_host_and_the_next_create_joins_it_without_the_ca_key(fourth):
    kube, name = fourth.kube, fourth.name
    assert f"started {name}" in fourth.grow_output
    assert f"[join] {name}: changed: kubelet.service running and enabled" in fourth.join_output
    # Hosts already in the cluster are left alone: only the new one changes.
    changed = {line.split(":")[0].split("] ")[-1] for line in fourth.join_output.splitlines()
               if ": changed: " in line and not line.split("] ")[-1].startswith("cluster")}
    assert changed <= {name, "local"}, changed
    _ok(kube.kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=180s",
                     timeout=200))
    listing = kube.ssh(name, "ls /etc/kubernetes/pki /var/lib/kubelet/pki")
    assert "ca.crt" in listing and "ca.key" not in listing and "sa.key" not in listing


def _read_lines_until(process: subprocess.Popen, wanted: str, timeout: float
                      ) -> tuple[list[str], queue.Queue]:
    """Lines of `process`'s output up to one containing `wanted` (or its end, or a deadline),
    and the queue the rest arrives on (None after the last line)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if wanted in line:
            break
    return seen, lines


def test_a_worker_removed_from_the_spec_is_drained_honouring_a_pdb_deleted_and_cleaned(fourth):
    kube, name = fourth.kube, fourth.name
    _ok(kube.kubectl("create", "namespace", "drain-test"))
    _ok(kube.kubectl("apply", "-n", "drain-test", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "guarded", "labels": {"app": "guarded"}},
         "spec": {"nodeSelector": {"kubernetes.io/hostname": name},
                  "containers": [{"name": "c", "image": "busybox",
                                  "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "keep-guarded"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}])))
    _ok(kube.kubectl("-n", "drain-test", "wait", "--for=condition=Ready", "pod/guarded",
                     "--timeout=180s", timeout=200))

    fourth.write_spec(fourth.original_hosts)
    env = dict(os.environ, PROVISIONER_STATE_DIR=str(kube.state_dir))
    process = subprocess.Popen([PROVISIONER, "create", "cluster", "-f", str(kube.spec),
                                "--skip", "verify"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    try:
        seen, more = _read_lines_until(process, "refused by a PodDisruptionBudget", timeout=300)
        assert seen and "refused by a PodDisruptionBudget" in seen[-1], "".join(seen)
        assert "drain-test/guarded" in seen[-1] and name in seen[-1]
        # The drain waits: the node is cordoned, the guarded pod still there.
        node = json.loads(_ok(fourth.node()))
        assert node["spec"].get("unschedulable") is True
        assert process.poll() is None
        _ok(kube.kubectl("-n", "drain-test", "get", "pod", "guarded"))
        # Once the budget allows it, the drain goes on and the removal completes.
        _ok(kube.kubectl("-n", "drain-test", "delete", "pdb", "keep-guarded"))
        assert process.wait(timeout=600) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    rest = []
    while (line := more.get(timeout=30)) is not None:
        rest.append(line)
    out = "".join(seen + rest)
    assert f"cluster: changed: drained node {name} (1 pod(s) evicted)" in out, out
    assert f"cluster: changed: deleted node {name}" in out, out
    gone = fourth.node()
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    left = kube.ssh(name, "ls -d /etc/kubernetes /var/lib/kubelet /opt/provisioner "
                          "/var/lib/provisioner/runtime 2>/dev/null; systemctl is-active kubelet; "
                          "pgrep -f '^/opt/provisioner/venv/bin/python' || true",
                    address=fourth.host["address"])
    assert left.split() == ["inactive"], left


def test_delete_removes_pods_network_and_files_and_a_second_delete_does_nothing(kube):
    _ok(kube.cli("delete", "cluster", "-f", str(kube.spec), "--keep-state"))
    for host in kube.hosts:
        left = kube.ssh(host["name"], (
            "ls -d /etc/kubernetes /var/lib/kubelet /opt/cni /opt/provisioner "
            "/var/lib/provisioner/runtime /etc/cni/net.d/10-provisioner.conflist "
            "/etc/provisioner-registry /var/lib/provisioner/registry "
            "/etc/systemd/system/provisioner-registry.service 2>/dev/null; "
            "grep -c ' /var/lib/kubelet\\| /var/lib/provisioner/runtime/' /proc/mounts; "
            "ip -o link show cni0 2>/dev/null; "
            "iptables-save | grep -c -- '-N \\(KUBE-\\|PROV\\)'; "
            # this project's processes (daemons, monitors) and pod sandboxes' pause processes
            "pgrep -f '^(/opt/provisioner/venv/bin/python|/opt/provisioner/registry/|"
            "sleep 2147483647)' || true"))
        assert left.split() == ["0", "0"], f"{host['name']} still has: {left}"
    again = _ok(kube.cli("delete", "cluster", "-f", str(kube.spec)))
    assert "nothing to change" in again
