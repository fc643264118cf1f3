"""AES-GCM at rest (a second API server on the session's etcd, rotating from aescbc) and the
`provisioner dev apiserver` command run as a user would: a subprocess stopped by SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

from .conftest import ENCRYPTION_KEY, KUBECTL, another_apiserver, run
from .test_storage_watch import storage_for

GCM_KEY = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()


def _etcd_value(cluster, key: str) -> bytes:
    async def read():
        s = storage_for(cluster)
        kv = await s.client.get(key.encode())
        await s.client.close()
        return kv.value
    return run(read())


def test_aesgcm_encrypts_new_writes_and_still_reads_aescbc(cluster, raw, kubectl, ns, tmp_path):
    kubectl("create", "secret", "generic", "old", "--from-literal=k=cbc-value", "-n", ns)
    config = tmp_path / "gcm.yaml"
    config.write_text(f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aesgcm:
      keys: [{{name: key2, secret: {GCM_KEY}}}]
  - aescbc:
      keys: [{{name: key1, secret: {ENCRYPTION_KEY}}}]
""")
    port = free_port()
    cmd = cluster.apiserver_command(port)
    cmd[cmd.index("--encryption-provider-config") + 1] = str(config)
    with another_apiserver(cluster, port, cmd):
        first = raw.port
        raw.port = port
        try:
            status, _, _ = raw("POST", f"/api/v1/namespaces/{ns}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new"},
                "stringData": {"k": "gcm-value"}})
            assert status == 201
            status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/secrets/old")
            assert status == 200 and json.loads(body)["data"]["k"] == base64.b64encode(b"cbc-value").decode()
        finally:
            raw.port = first
    stored = _etcd_value(cluster, f"/registry/secrets/{ns}/new")
    assert stored.startswith(b"k8s:enc:aesgcm:v1:key2:") and b"gcm-value" not in stored
    # as kube-apiserver reads it: nonce, then AES-GCM with the etcd key as authenticated data
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = stored[len(b"k8s:enc:aesgcm:v1:key2:"):]
    gcm = AESGCM(base64.b64decode(GCM_KEY))
    plain = gcm.decrypt(sealed[:12], sealed[12:], f"/registry/secrets/{ns}/new".encode())
    assert json.loads(plain)["data"]["k"] == base64.b64encode(b"gcm-value").decode()
    with pytest.raises(InvalidTag):  # bound to its key: moved under another name it does not open
        gcm.decrypt(sealed[:12], sealed[12:], f"/registry/secrets/{ns}/other".encode())
    assert _etcd_value(cluster, f"/registry/secrets/{ns}/old").startswith(b"k8s:enc:aescbc:v1:key1:")
    # the aescbc-only server cannot read the aesgcm value: the error names the missing key
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/secrets/new")
    assert status == 500 and json.loads(body)["message"] == (
        "Internal error occurred: unable to transform key: no key to decrypt stored secrets value "
        "(written with k8s:enc:aesgcm:v1:key2); check --encryption-provider-config")


def test_dev_apiserver_command_writes_admin_conf_and_stops_on_sigterm(tmp_path):
    directory = tmp_path / "dev"
    proc = subprocess.Popen([str(Path(sys.prefix) / "bin" / "provisioner"), "dev", "apiserver", "--dir", str(directory)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        conf = directory / "admin.conf"
        deadline = time.monotonic() + 60
        while not conf.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert conf.exists(), proc.stdout.read() if proc.poll() is not None else "admin.conf not written"
        env = dict(os.environ, KUBECONFIG=str(conf), HOME=str(tmp_path))
        out = subprocess.run([KUBECTL, "get", "namespaces"], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert {"default", "kube-system"} <= {line.split()[0] for line in out.stdout.splitlines()[1:]}
        children = _children(proc.pid)
        assert len(children) == 2  # etcd and the API server
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "[dev] stopped etcd and the API server" in proc.stdout.read()
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"child {pid} still running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
