"""Session fixtures: ONE real etcd + API server for the whole suite (DevCluster), real kubectl,
the official Python client, and a unique namespace per test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.dev import DevCluster
from tests.conftest import dev_cluster

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
ENCRYPTION_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("apiserver")
    enc = root / "encryption.yaml"
    enc.write_text(f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: {ENCRYPTION_KEY}
  - identity: {{}}
""")
    c = dev_cluster(root, extra_args=["--encryption-provider-config", str(enc)])
    c.start()
    yield c
    c.stop()


class Kubectl:
    def __init__(self, cluster: DevCluster, cache: Path, kubeconfig: Path | None = None):
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig or cluster.kubeconfig), KUBECACHEDIR=str(cache),
                        HOME=str(cache))

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([KUBECTL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env)

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def kubectl(cluster, tmp_path_factory):
    return Kubectl(cluster, tmp_path_factory.mktemp("kubectl-home"))


@pytest.fixture(scope="session")
def user_kubectl(cluster, tmp_path_factory):
    """kubectl as another client-certificate user: user_kubectl("alice", ("devs",))."""
    def make(name: str, groups: tuple[str, ...] = ()) -> Kubectl:
        return Kubectl(cluster, tmp_path_factory.mktemp("kubectl-home"), cluster.user_kubeconfig(name, groups))
    return make


def eventually(check, timeout: float = 30.0):
    """Retry `check` until it returns a truthy value (or the deadline passes: then its last value):
    RBAC changes reach the authorizer's cache within a second, webhook configurations the admission
    chain's as soon, but a loaded machine can take many times that."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture(scope="session")
def k8s(cluster):
    """The official kubernetes client, configured from admin.conf."""
    from kubernetes import config

    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def ns(kubectl, request):
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") + "-" + \
        os.urandom(2).hex()
    kubectl("create", "namespace", name)
    return name


def run(coro):
    return asyncio.run(coro)


@contextlib.contextmanager
def another_apiserver(cluster: DevCluster, port: int, command: list[str], timeout: float = 60):
    """Another API server (`command`, on `port`) beside the suite's, stopped after the block.
    Its output goes to the cluster's logs; it must answer /readyz within `timeout`, and a server
    that exits fails at once with its log. (cluster.wait_ready watches only the cluster's own
    processes, and stops the whole suite's cluster when it gives up.)"""
    import ssl
    import time
    import urllib.request

    log = cluster.root / "logs" / f"apiserver-{port}.log"
    with open(log, "ab") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"the API server on {port} exited ({proc.returncode}):\n" \
                f"{log.read_text(errors='replace')[-3000:]}"
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context,
                                            timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the API server on {port} not ready after " \
                f"{timeout}s:\n{log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


class Raw:
    """Plain HTTPS requests with a chosen identity, for what clients do not expose."""

    def __init__(self, cluster: DevCluster):
        import ssl

        self.cluster = cluster
        self.port = cluster.api_port
        self.contexts: dict[str | None, ssl.SSLContext] = {}
        self.ssl = ssl

    def context(self, cert: str | None) -> "ssl.SSLContext":  # noqa: F821 - imported lazily above
        if cert not in self.contexts:
            ctx = self.ssl.create_default_context(cafile=str(self.cluster.pki / "ca.crt"))
            if cert:
                ctx.load_cert_chain(str(self.cluster.pki / f"{cert}.crt"), str(self.cluster.pki / f"{cert}.key"))
            self.contexts[cert] = ctx
        return self.contexts[cert]

    def __call__(self, method: str, path: str, body: bytes | str | dict | None = None,
                 headers: dict | None = None, cert: str | None = "admin", timeout: float = 30):
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(cert), timeout=timeout)
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="session")
def raw(cluster):
    return Raw(cluster)
