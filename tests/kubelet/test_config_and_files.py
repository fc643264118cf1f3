"""Hermetic rules: KubeletConfiguration checking, the kubelet's flag errors, resolv.conf and
/etc/hosts, QoS classes, env expansion, the atomic writer of configMap/secret volumes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from provisioner.components.kubelet import config, dnsfiles, podspec, volumes

HEADER = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"


@pytest.mark.parametrize("body, message", [
    ("staticPodPth: /etc/kubernetes/manifests\n", 'unknown field "staticPodPth"'),
    ("authentication:\n  x509:\n    clientCAfile: /ca\n",
     'unknown field "authentication.x509.clientCAfile"'),
    ("maxPods: lots\n", 'field "maxPods" must be int'),
    ("nodeStatusUpdateFrequency: 10 seconds\n", 'field "nodeStatusUpdateFrequency"'),
    ("authorization:\n  mode: Sometimes\n", 'field "authorization.mode" must be Webhook'),
])
def test_bad_config_fields_are_named(tmp_path, body, message):
    path = tmp_path / "config.yaml"
    path.write_text(HEADER + body)
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        config.load(str(path))


def test_config_defaults_and_durations(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(HEADER + "staticPodPath: /etc/kubernetes/manifests\nclusterDNS: [10.96.0.10]\n"
                    "nodeStatusUpdateFrequency: 1m30s\nauthentication:\n  webhook:\n"
                    "    enabled: false\n")
    cfg = config.load(str(path))
    assert cfg["staticPodPath"] == "/etc/kubernetes/manifests"
    assert cfg["authentication"]["webhook"]["enabled"] is False
    assert cfg["authentication"]["anonymous"]["enabled"] is False        # default kept
    assert cfg["port"] == 10250 and cfg["maxPods"] == 110
    assert config.seconds(cfg["nodeStatusUpdateFrequency"]) == 90
    assert config.seconds("500ms") == 0.5


@pytest.mark.parametrize("args, message", [
    (["--config", "/nonexistent/kubelet.yaml"], "--config /nonexistent/kubelet.yaml: cannot read"),
    (["--kubeconfig", "/nonexistent/kubelet.conf"], "--kubeconfig /nonexistent/kubelet.conf does "
                                                     "not exist"),
    (["--node-labels", "novalue"], "--node-labels: 'novalue' is not key=value"),
])
def test_bad_flags_give_one_line_and_exit_1(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "provisioner.components.kubelet.main",
                             "--root-dir", str(tmp_path), "--container-runtime-endpoint",
                             f"unix://{tmp_path}/none.sock", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def pod(namespace="shop", **spec):
    return {"metadata": {"name": "web-0", "namespace": namespace, "uid": "u1"},
            "spec": {"containers": [{"name": "c"}], **spec}}


HOST_RESOLV = "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n"


@pytest.mark.parametrize("spec, expected", [
    ({}, "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local "
         "corp.example\noptions ndots:5\n"),
    ({"dnsPolicy": "Default"}, "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n"),
    ({"hostNetwork": True}, "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n"),
    ({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"},
     "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local "
     "corp.example\noptions ndots:5\n"),
    ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                         "options": [{"name": "ndots", "value": "2"}]}},
     "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"),
])
def test_resolv_conf_per_dns_policy(spec, expected):
    assert dnsfiles.resolv_conf(pod(**spec), HOST_RESOLV, ["10.96.0.10"], "cluster.local") == \
        expected


def test_hosts_file_names_the_pod_and_its_aliases():
    text = dnsfiles.hosts_file(pod(hostname="db", subdomain="backend",
                                   hostAliases=[{"ip": "10.0.0.9", "hostnames": ["x", "y"]}]),
                               ["10.1.2.3"], "cluster.local")
    assert "10.1.2.3\tdb.backend.shop.svc.cluster.local\tdb" in text
    assert "10.0.0.9\tx\ty" in text and "127.0.0.1\tlocalhost" in text


@pytest.mark.parametrize("resources, qos", [
    ([{}], "BestEffort"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
    ([{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}}],
     "Guaranteed"),
    ([{"requests": {"cpu": "100m"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
])
def test_qos_class(resources, qos):
    spec = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    assert podspec.qos_class({"spec": spec}) == qos


def test_env_expansion_follows_kubernetes_rules():
    env = {"A": "x"}
    assert podspec.expand("$(A)-$(B)-$$(A)", env) == "x-$(B)-$(A)"


def test_atomic_writer_swaps_data_and_drops_removed_keys(tmp_path):
    target = str(tmp_path / "vol")
    assert volumes.write_atomic(target, {"a": (b"1", 0o644), "b": (b"2", 0o600)})
    first = os.readlink(os.path.join(target, "..data"))
    assert open(os.path.join(target, "a")).read() == "1"
    assert oct(os.stat(os.path.join(target, "b")).st_mode & 0o777) == "0o600"
    assert not volumes.write_atomic(target, {"a": (b"1", 0o644), "b": (b"2", 0o600)})  # no change
    assert volumes.write_atomic(target, {"a": (b"3", 0o644)})
    assert os.readlink(os.path.join(target, "..data")) != first
    assert open(os.path.join(target, "a")).read() == "3"
    assert not os.path.lexists(os.path.join(target, "b"))
    assert not os.path.exists(os.path.join(target, first))           # the old data is gone


class FakeTokenClient:
    """The API server's TokenRequest at the network boundary: a new token per request."""

    def __init__(self):
        self.requests = []

    async def create(self, group, version, plural, body, ns=None):
        self.requests.append((plural, ns, body["spec"]))
        return {"status": {"token": f"token-{len(self.requests)}"}}


def test_tokens_are_bound_to_the_pod_and_reused_until_80_percent_of_their_life(monkeypatch):
    import asyncio

    from provisioner.components.kubelet import tokens

    client = FakeTokenClient()
    manager = tokens.TokenManager(client)
    pod = {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}}
    clock = [1000.0]
    monkeypatch.setattr(tokens.time, "monotonic", lambda: clock[0])
    assert asyncio.run(manager.get(pod, "default", "api", 3600)) == "token-1"
    plural, ns, spec = client.requests[0]
    assert (plural, ns) == ("serviceaccounts/default/token", "shop")
    assert spec["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "web",
                                      "uid": "u-1"}
    assert spec["audiences"] == ["api"] and spec["expirationSeconds"] == 3600
    clock[0] += 3600 * 0.79
    assert asyncio.run(manager.get(pod, "default", "api", 3600)) == "token-1"
    clock[0] += 3600 * 0.02
    assert asyncio.run(manager.get(pod, "default", "api", 3600)) == "token-2"
    manager.forget("u-1")
    assert asyncio.run(manager.get(pod, "default", "api", 3600)) == "token-3"
