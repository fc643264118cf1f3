"""The provisioner's API client against a real API server (etcd and this project's API server on
loopback): `ensure` creates, then leaves alone, then updates only what the declaration changes,
and the add-on and bootstrap objects the phases write are accepted as they are."""

from __future__ import annotations

import socket

import pytest

from provisioner.kube.addons import AddonSettings, cluster_dns, kube_proxy, network_agent
from provisioner.kube.apiclient import ApiClient, ApiError, Credentials, differs
from tests.conftest import dev_cluster

SETTINGS = AddonSettings(image="provisioner/components:test", api_endpoint="https://10.0.0.11:6443",
                         pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12",
                         dns_domain="cluster.local", cni_conf_dir="/etc/cni/net.d")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    cluster = dev_cluster(tmp_path_factory.mktemp("apiclient"))
    cluster.start()
    try:
        yield ApiClient(Credentials(cluster.server, str(cluster.pki / "ca.crt"),
                                    str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key")))
    finally:
        cluster.stop()


def config_map(data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"}, "data": data}


def test_ensure_creates_then_leaves_alone_then_updates(client):
    assert client.ensure(config_map({"a": "1"})) == "created"
    assert client.ensure(config_map({"a": "1"})) == ""
    assert client.ensure(config_map({"a": "2"})) == "updated"
    assert client.get("/api/v1/namespaces/default/configmaps/settings")["data"] == {"a": "2"}
    assert client.delete("/api/v1/namespaces/default/configmaps/settings")
    assert not client.delete("/api/v1/namespaces/default/configmaps/settings")


@pytest.mark.parametrize("build", [kube_proxy, network_agent, cluster_dns],
                         ids=["kube-proxy", "network-agent", "dns"])
def test_every_addon_object_is_accepted_and_a_second_ensure_changes_nothing(client, build):
    objects = build(SETTINGS)
    assert [client.ensure(obj) for obj in objects] == ["created"] * len(objects)
    assert [client.ensure(obj) for obj in objects] == [""] * len(objects)


def test_a_refusal_names_the_request_and_the_servers_reason(client):
    with pytest.raises(ApiError) as caught:
        client.request("POST", "/api/v1/namespaces/default/configmaps",
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    assert caught.value.status == 422
    assert "POST /api/v1/namespaces/default/configmaps: 422" in str(caught.value)


@pytest.mark.parametrize("wanted, current, changed", [
    ({"a": 1}, {"a": 1, "b": 2}, False),          # server defaults are not differences
    ({"a": 1}, {"a": 2}, True),
    ({"a": [1, 2]}, {"a": [1]}, True),
    ({"a": {"b": 1}}, {"a": {"b": 1, "c": 3}}, False),
    ({"a": "x"}, {}, True),
])
def test_differs_compares_only_what_is_declared(wanted, current, changed):
    assert differs(wanted, current) is changed


def test_requests_share_one_kept_alive_connection_and_survive_its_loss(client):
    client.close()
    client.get("/api/v1/namespaces/default")
    first = client._idle[0]
    client.get("/api/v1/namespaces/kube-system")
    assert client._idle == [first]          # the second request reused the first's connection
    # the connection goes away under the client (as when the server drops an idle one): the
    # next request is sent again on a new connection instead of failing
    first.sock.shutdown(socket.SHUT_WR)
    assert client.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    assert len(client._idle) == 1 and client._idle[0] is not first
