"""The kube-controller-manager process: bad flags stop it at start naming them; it serves
/healthz; two instances share one Lease and only the holder acts; losing the API server makes it
wait and resume. These tests run their own API server, so stopping it disturbs nobody."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request

import pytest

from provisioner.dev import DevCluster
from tests.conftest import dev_cluster, free_port

from .conftest import KCM, eventually, start_kcm


def run_kcm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KCM, *args], capture_output=True, text=True, timeout=60)


def test_bad_flags_are_all_named_without_a_traceback(tmp_path):
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    out = run_kcm("--kubeconfig", str(kubeconfig), "--controllers=*,frobnicator,-deployment",
                  "--node-monitor-grace-period=soon", "--allocate-node-cidrs", "--cluster-cidr=10.0.0.0/33",
                  "--cluster-signing-cert-file", str(tmp_path / "missing.crt"))
    assert out.returncode == 1
    for needle in ("--controllers: unknown controller(s) frobnicator", "--node-monitor-grace-period: 'soon'",
                   "--cluster-cidr: '10.0.0.0/33'", "missing.crt does not exist",
                   "--cluster-signing-cert-file and --cluster-signing-key-file go together"):
        assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_busy_secure_port_is_named(tmp_path, cluster):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run_kcm("--kubeconfig", str(cluster.kubeconfig), "--secure-port", str(port), "--bind-address", "127.0.0.1")
    assert out.returncode == 1 and f"--secure-port {port} on 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_flag_and_missing_kubeconfig(tmp_path):
    out = run_kcm("--kubeconfig", str(tmp_path / "nope"), "--frobnicate")
    assert out.returncode == 1 and "--frobnicate" in out.stderr and "Traceback" not in out.stderr
    out = run_kcm("--kubeconfig", str(tmp_path / "nope"))
    assert out.returncode == 1 and f"--kubeconfig: {tmp_path / 'nope'} does not exist" in out.stderr


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory):
    c = dev_cluster(tmp_path_factory.mktemp("kcm-private"))
    c.start()
    yield c
    c.stop()


def lease_holder(kubectl) -> str:
    lease = kubectl("get", "lease", "kube-controller-manager", "-n", "kube-system", "-o", "json", check=False)
    return json.loads(lease.stdout)["spec"].get("holderIdentity", "") if lease.returncode == 0 else ""


def healthz(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def metrics_text(cluster: DevCluster, port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=ctx, timeout=5) as r:
        return r.read().decode()


def test_standby_takes_over_and_nothing_is_done_twice(private_cluster, tmp_path_factory):
    from tests.apiserver.conftest import Kubectl

    kubectl = Kubectl(private_cluster, tmp_path_factory.mktemp("kubectl-home"))
    log = private_cluster.root / "logs" / "kcm-ha.log"
    port = free_port()
    first = start_kcm(private_cluster, log, "--controllers=replicaset,deployment")
    holder = eventually(lambda: lease_holder(kubectl), what="a lease holder")
    second = subprocess.Popen([KCM, "--kubeconfig", str(private_cluster.kubeconfig), "--secure-port", str(port),
                               "--bind-address", "127.0.0.1", "--controllers=replicaset,deployment",
                               "--leader-elect-retry-period", "500ms"],
                              stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        assert eventually(lambda: healthz(port) == "ok", what="/healthz ok on the standby")
        kubectl("create", "deployment", "ha", "--image=nginx", "--replicas=3")
        eventually(lambda: len(kubectl.json("get", "pods")["items"]) == 3, what="3 pods")
        assert lease_holder(kubectl) == holder
        first.terminate()
        assert first.wait(15) == 0
        eventually(lambda: lease_holder(kubectl) not in ("", holder), timeout=30, what="the standby to lead")
        kubectl("scale", "deployment", "ha", "--replicas=5")
        eventually(lambda: len(kubectl.json("get", "pods")["items"]) == 5, what="5 pods")
        assert len(kubectl.json("get", "rs")["items"]) == 1
        metrics = metrics_text(private_cluster, port)
        assert 'leader_election_master_status{name="kube-controller-manager"} 1.0' in metrics
        assert 'workqueue_adds_total{name="deployment"}' in metrics
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.terminate()
                p.wait(15)
        kubectl("delete", "deployment", "ha", check=False)


def test_waits_for_a_lost_api_server_and_resumes(private_cluster, tmp_path_factory):
    from tests.apiserver.conftest import Kubectl

    kubectl = Kubectl(private_cluster, tmp_path_factory.mktemp("kubectl-home"))
    log = private_cluster.root / "logs" / "kcm-outage.log"
    kcm = start_kcm(private_cluster, log, "--controllers=replicaset,deployment,serviceaccount")
    try:
        kubectl("create", "namespace", "before-outage")
        eventually(lambda: kubectl("get", "sa", "default", "-n", "before-outage", check=False).returncode == 0,
                   what="default account")
        apiserver = private_cluster.procs.pop()  # [etcd, apiserver]
        apiserver.terminate()
        apiserver.wait(15)
        eventually(lambda: "failed" in log.read_text(), timeout=30, what="the manager to notice")
        assert kcm.poll() is None
        private_cluster.procs.append(subprocess.Popen(
            private_cluster.apiserver_command(private_cluster.api_port),
            stdout=open(private_cluster.root / "logs" / "apiserver.log", "ab"), stderr=subprocess.STDOUT))
        private_cluster.wait_ready(60)
        kubectl("create", "namespace", "after-outage")
        eventually(lambda: kubectl("get", "sa", "default", "-n", "after-outage", check=False).returncode == 0,
                   timeout=60, what="default account after the outage")
        kubectl("create", "deployment", "later", "--image=nginx", "--replicas=2", "-n", "after-outage")
        eventually(lambda: len(kubectl.json("get", "pods", "-n", "after-outage")["items"]) == 2, timeout=60,
                   what="2 pods after the outage")
        assert kcm.poll() is None
    finally:
        kcm.terminate()
        kcm.wait(15)
    assert os.path.exists(log)


def test_service_account_credentials_act_as_each_controller(private_cluster, tmp_path_factory):
    """With --use-service-account-credentials each controller writes as its kube-system account
    under a system:controller:<account> role: the manager creates missing roles, keeps existing
    ones (here an empty one for the root CA publisher, which is refused until it is filled in)."""
    from tests.apiserver.conftest import Kubectl

    kubectl = Kubectl(private_cluster, tmp_path_factory.mktemp("kubectl-home"))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:controller:root-ca-cert-publisher"}, "rules": []}))
    log = private_cluster.root / "logs" / "kcm-sa.log"
    kcm = start_kcm(private_cluster, log, "--use-service-account-credentials", "--root-ca-file",
                    str(private_cluster.pki / "ca.crt"))
    user = 'User "system:serviceaccount:kube-system:root-ca-cert-publisher" cannot create resource "configmaps"'
    try:
        kubectl("create", "namespace", "sa-creds")
        kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", "sa-creds")
        eventually(lambda: len(kubectl.json("get", "pods", "-n", "sa-creds")["items"]) == 2, timeout=60,
                   what="pods made by the deployment and replicaset controllers' own accounts")
        assert kubectl("get", "clusterrolebinding", "system:controller:deployment-controller",
                       check=False).returncode == 0
        eventually(lambda: user in log.read_text(), what="the root CA publisher refused as its own account")
        assert kubectl("get", "cm", "kube-root-ca.crt", "-n", "sa-creds", check=False).returncode != 0
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:controller:root-ca-cert-publisher"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create",
                                                                                "update"]}]}))
        eventually(lambda: kubectl("get", "cm", "kube-root-ca.crt", "-n", "sa-creds", check=False).returncode == 0,
                   timeout=90, what="the bundle published once the controller's role allows it")
    finally:
        kcm.terminate()
        kcm.wait(15)


def test_lost_lease_stops_the_controllers_until_it_is_won_back(private_cluster, tmp_path_factory):
    """Another holder takes the Lease: the manager stops acting once it cannot renew, waits for
    that lease to expire, takes it back and carries on, without exiting."""
    from tests.apiserver.conftest import Kubectl

    kubectl = Kubectl(private_cluster, tmp_path_factory.mktemp("kubectl-home"))
    log = private_cluster.root / "logs" / "kcm-lease.log"
    kcm = start_kcm(private_cluster, log, "--controllers=replicaset,deployment", "--leader-elect-lease-duration=6s",
                    "--leader-elect-renew-deadline=4s")
    try:
        ours = eventually(lambda: lease_holder(kubectl) not in ("", "thief") and lease_holder(kubectl),
                          what="the manager to lead")
        def steal() -> bool:  # the holder renews meanwhile: retry on conflict
            lease = kubectl.json("get", "lease", "kube-controller-manager", "-n", "kube-system")
            lease["spec"].update(holderIdentity="thief", leaseDurationSeconds=6)
            return kubectl("replace", "-f", "-", input=json.dumps(lease), check=False).returncode == 0
        eventually(steal, what="the lease taken by another holder")
        eventually(lambda: "lost by" in log.read_text(), timeout=30, what="the manager to give up leading")
        kubectl("create", "deployment", "after-steal", "--image=nginx", "--replicas=2", "-n", "default")
        eventually(lambda: lease_holder(kubectl) == ours, timeout=60, what="the lease won back")
        eventually(lambda: len([p for p in kubectl.json("get", "pods", "-n", "default")["items"]
                                if p["metadata"]["name"].startswith("after-steal-")]) == 2,
                   timeout=60, what="the deployment handled after the lease came back")
        lease = kubectl.json("get", "lease", "kube-controller-manager", "-n", "kube-system")
        assert lease["spec"]["leaseTransitions"] >= 1
        assert kcm.poll() is None
    finally:
        kcm.terminate()
        kcm.wait(15)
        kubectl("delete", "deployment", "after-steal", "-n", "default", check=False)
