"""`provisioner images push`: the CLI pushes from a runtime store to a docker-registry run from
this project's own configuration template (client certificates from the cluster CA required),
with the admin certificate from the cluster's local state, and names the image pods use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from provisioner.components.runtime.images import registry
from provisioner.pki.certs import issue, new_ca
from provisioner.templates import render
from tests.unit.spec.keys import write_private_key

from .conftest import make_image
from .registry_fixtures import REGISTRY_BINARY, Registry, free_port


@pytest.fixture
def cluster(tmp_path):
    """A cluster's local state (CA, admin pair) and its registry on 127.0.0.1."""
    state = tmp_path / "state"
    pki = state / "clusters" / "lab" / "pki"
    ca = new_ca("kubernetes")
    ca.save(pki, "ca")
    issue(ca, "kubernetes-admin", organizations=("system:masters",), client=True).save(pki, "admin")
    issue(ca, "cp1", dns_names=["cp1"], ip_addresses=["127.0.0.1"], server=True).save(
        tmp_path / "serving", "registry")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(render(
        "provisioner-registry.yml.j2", cluster="lab", storage=str(tmp_path / "storage"),
        address="127.0.0.1", port=port, certificate=str(tmp_path / "serving" / "registry.crt"),
        key=str(tmp_path / "serving" / "registry.key"), client_ca=str(pki / "ca.crt")))
    log = open(tmp_path / "registry.log", "wb")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    running = Registry(f"127.0.0.1:{port}", process, str(pki / "ca.crt"))
    wait_for_port(running, tmp_path / "registry.log")
    write_private_key(tmp_path / "id_test")
    spec = {"apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "lab"},
            "spec": {"ssh": {"key": "id_test"}, "registry": {"port": port},
                     "hosts": [{"name": "cp1", "address": "127.0.0.1",
                                "roles": ["control-plane", "etcd"]}]}}
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(spec))
    yield running, state, pki
    running.stop()
    log.close()


def wait_for_port(running: Registry, log) -> None:
    import socket
    import time

    host, port = running.host.rsplit(":", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert running.process.poll() is None, open(log).read()
        with socket.socket() as probe:
            if probe.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"docker-registry did not listen: {open(log).read()}")


def provisioner(tmp_path, state, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (it patches sockets for gevent)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from provisioner import cli; cli.main(sys.argv[1:])",
         *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PROVISIONER_STATE_DIR": str(state)})


def test_push_names_the_image_pods_use_and_nodes_can_pull_it(tmp_path, cluster, store,
                                                              other_store):
    running, state, pki = cluster
    image = make_image(store, str(tmp_path), [{"bin/hello": "hi"}], ["busybox:1.0"])

    result = provisioner(tmp_path, state, "images", "push", "-f", "cluster.yaml",
                         "--root", str(tmp_path / "root-a"), "busybox:1.0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"[images] pushed busybox:1.0 ({image.digest}); "
                                     f"pods use: {running.host}/busybox:1.0")
    assert store.resolve("busybox:1.0").tags == ["busybox:1.0"]  # no new tag left behind
    # A node: the cluster CA and a client pair of its own in certs.d.
    node = issue(new_ca_from(pki), "node", client=True)
    certs = tmp_path / "node-certs.d" / running.host
    certs.mkdir(parents=True)
    shutil.copy(pki / "ca.crt", certs / "ca.crt")
    (certs / "client.cert").write_bytes(node.cert_pem())
    (certs / "client.key").write_bytes(node.key_pem())
    pulled = registry.pull(other_store, f"{running.host}/busybox:1.0",
                           certs_dir=str(certs.parent), local_hosts_insecure=False)
    assert pulled.id == image.id


def new_ca_from(pki):
    from provisioner.pki.certs import CertKeyPair

    return CertKeyPair.load(pki, "ca")


@pytest.mark.parametrize("change, args, message", [
    (None, ("nothere:1",), "ERROR: image 'nothere:1' is not in the local store"),
    ("disabled", ("busybox:1.0",), "the cluster has no registry"),
    ("no-admin", ("busybox:1.0",), "run `provisioner create cluster` first"),
    (None, ("Bad Name",), "ERROR: IMAGE Bad Name:"),
])
def test_push_errors_are_one_line_naming_what_to_do(tmp_path, cluster, store, change, args,
                                                    message):
    running, state, pki = cluster
    make_image(store, str(tmp_path), [{"a": "b"}], ["busybox:1.0"])
    if change == "disabled":
        doc = yaml.safe_load((tmp_path / "cluster.yaml").read_text())
        doc["spec"]["registry"]["enabled"] = False
        (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(doc))
    if change == "no-admin":
        (pki / "admin.key").unlink()
    result = provisioner(tmp_path, state, "images", "push", "-f", "cluster.yaml",
                         "--root", str(tmp_path / "root-a"), *args)
    assert result.returncode in (1, 3), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_store_root_must_exist(tmp_path, cluster):
    running, state, _ = cluster
    result = provisioner(tmp_path, state, "images", "push", "-f", "cluster.yaml",
                         "--root", str(tmp_path / "missing"), "busybox:1.0")
    assert result.returncode == 3
    assert "--root" in result.stderr and "no container-runtime store" in result.stderr


@pytest.mark.parametrize("ref, name", [
    ("busybox", "10.0.0.11:5000/busybox:latest"),
    ("busybox:1.36", "10.0.0.11:5000/busybox:1.36"),
    ("team/web:2", "10.0.0.11:5000/team/web:2"),
    ("ghcr.io/owner/tool:v1", "10.0.0.11:5000/owner/tool:v1"),
    ("10.0.0.11:5000/mine:3", "10.0.0.11:5000/mine:3"),
])
def test_the_registry_name_keeps_repository_and_tag(ref, name):
    from provisioner.images_command import registry_name

    assert registry_name("10.0.0.11:5000", ref) == name


def test_verify_passes_while_the_registry_answers_client_certificates_only(tmp_path, cluster):
    from provisioner.spec import load_cluster
    from provisioner.verify.registry import registry_checks

    running, _, pki = cluster
    spec = load_cluster(tmp_path / "cluster.yaml")
    [result] = registry_checks(spec, pki)
    assert result.ok, result.detail
    assert result.line() == (f"PASS registry answers client certificates only [cp1]: "
                             f"https://{running.host}/v2/ answers the admin certificate and "
                             "refuses a client without one")
    running.stop()
    [result] = registry_checks(spec, pki, wait_seconds=0.5)
    assert not result.ok
    assert result.detail.startswith(f"https://{running.host}/v2/ with the admin certificate: ")
