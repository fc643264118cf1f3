"""The control plane's static pods and the kubelet's configuration, as kubeadm writes them."""

from __future__ import annotations

import pytest

from provisioner.kube.kubeletconfig import cluster_dns_address, kubelet_configuration
from provisioner.kube.staticpods import ControlPlanePaths, ControlPlaneSettings, control_plane_pods

PATHS = ControlPlanePaths(pki_dir="/etc/kubernetes/pki", etcd_ca="/etc/kubernetes/pki/etcd/ca.crt",
                          controller_manager_conf="/etc/kubernetes/controller-manager.conf",
                          scheduler_conf="/etc/kubernetes/scheduler.conf",
                          encryption_config="/etc/kubernetes/encryption-config.yaml")
SETTINGS = ControlPlaneSettings(advertise_address="10.0.0.11",
                                etcd_servers=("https://10.0.0.11:2379", "https://10.0.0.12:2379"),
                                service_cidr="10.96.0.0/12", pod_cidr="10.244.0.0/16",
                                cluster_name="lab", dns_domain="cluster.local")


def flags(pod: dict) -> dict[str, str]:
    command = pod["spec"]["containers"][0]["command"]
    return dict(arg[2:].split("=", 1) for arg in command[1:])


@pytest.fixture
def pods():
    return control_plane_pods("provisioner/components:0.1.0", PATHS, SETTINGS)


def test_every_component_is_a_critical_host_network_pod_with_probes(pods):
    assert sorted(pods) == ["kube-apiserver.yaml", "kube-controller-manager.yaml",
                            "kube-scheduler.yaml"]
    for name, pod in pods.items():
        spec = pod["spec"]
        assert pod["metadata"]["name"] == name.removesuffix(".yaml")
        assert pod["metadata"]["namespace"] == "kube-system"
        assert spec["hostNetwork"] and spec["priorityClassName"] == "system-node-critical"
        container = spec["containers"][0]
        assert container["command"][0] == pod["metadata"]["name"]
        assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)
        mounted = {m["name"] for m in container["volumeMounts"]}
        assert mounted == {v["name"] for v in spec["volumes"]}


def test_the_api_server_reaches_every_etcd_member_and_authorizes_nodes(pods):
    apiserver = flags(pods["kube-apiserver.yaml"])
    assert apiserver["etcd-servers"] == "https://10.0.0.11:2379,https://10.0.0.12:2379"
    assert apiserver["authorization-mode"] == "Node,RBAC"
    assert apiserver["advertise-address"] == "10.0.0.11"
    assert apiserver["service-account-issuer"] == "https://kubernetes.default.svc.cluster.local"
    probe = pods["kube-apiserver.yaml"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"], probe["scheme"]) == ("/readyz", 6443, "HTTPS")


def test_the_controller_manager_runs_kubeadms_controller_set_and_allocates_cidrs(pods):
    manager = flags(pods["kube-controller-manager.yaml"])
    assert manager["controllers"] == "*,bootstrapsigner,tokencleaner"
    assert (manager["allocate-node-cidrs"], manager["cluster-cidr"]) == ("true", "10.244.0.0/16")
    assert manager["cluster-signing-key-file"] == "/etc/kubernetes/pki/ca.key"


@pytest.mark.parametrize("cidr, address", [("10.96.0.0/12", "10.96.0.10"),
                                           ("172.20.0.0/16", "172.20.0.10"),
                                           ("fd00:10:96::/112", "fd00:10:96::a")])
def test_cluster_dns_is_the_tenth_address_of_the_service_range(cidr, address):
    assert cluster_dns_address(cidr) == address


def test_the_kubelet_authenticates_clients_by_certificate_and_webhook():
    config = kubelet_configuration(client_ca_file="/etc/kubernetes/pki/ca.crt",
                                   static_pod_path="/etc/kubernetes/manifests",
                                   service_cidr="10.96.0.0/12", dns_domain="cluster.local")
    assert config["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
    assert config["clusterDNS"] == ["10.96.0.10"]
    assert config["seccompDefault"] is True     # pods without a profile get RuntimeDefault
    assert "registerWithTaints" not in config


def test_the_projects_kubelet_accepts_the_configuration_it_is_given(tmp_path):
    import yaml

    from provisioner.components.kubelet.config import load

    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(kubelet_configuration(
        client_ca_file="/etc/kubernetes/pki/ca.crt", static_pod_path="/etc/kubernetes/manifests",
        service_cidr="10.96.0.0/12", dns_domain="cluster.local", register_with_taints=[taint])))
    loaded = load(str(path))
    assert loaded["staticPodPath"] == "/etc/kubernetes/manifests"
    assert loaded["registerWithTaints"] == [taint]
