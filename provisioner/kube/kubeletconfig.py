"""The kubelet's configuration file (KubeletConfiguration v1beta1), as kubeadm writes it.

One file for every host of a cluster: webhook authentication and authorization against the API
server, the cluster CA for client certificates, the static pod directory, cluster DNS at the tenth
address of the service range, certificate rotation on.
"""

from __future__ import annotations

import ipaddress

API_VERSION = "kubelet.config.k8s.io/v1beta1"


def cluster_dns_address(service_cidr: str) -> str:
    """The DNS Service's ClusterIP: the tenth address of the service range, as kubeadm picks."""
    network = ipaddress.ip_network(service_cidr)
    return str(network.network_address + 10)


def kubelet_configuration(*, client_ca_file: str, static_pod_path: str, service_cidr: str,
                          dns_domain: str, register_with_taints: list[dict] | None = None,
                          tls_cert_file: str | None = None,
                          tls_private_key_file: str | None = None) -> dict:
    config = {
        "apiVersion": API_VERSION,
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "0s"},
            "x509": {"clientCAFile": client_ca_file},
        },
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s",
                                      "cacheUnauthorizedTTL": "0s"}},
        "cgroupDriver": "cgroupfs",
        "clusterDNS": [cluster_dns_address(service_cidr)],
        "clusterDomain": dns_domain,
        "rotateCertificates": True,
        "staticPodPath": static_pod_path,
        "nodeStatusUpdateFrequency": "10s",
        "nodeStatusReportFrequency": "5m0s",
        "seccompDefault": True,
    }
    if tls_cert_file and tls_private_key_file:  # port 10250's certificate, from the cluster CA
        config["tlsCertFile"] = tls_cert_file
        config["tlsPrivateKeyFile"] = tls_private_key_file
    if register_with_taints:
        config["registerWithTaints"] = register_with_taints
    return config
