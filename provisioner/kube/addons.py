"""The cluster's add-ons as Kubernetes objects: kube-proxy, the network agent, cluster DNS, metrics-server.

As kubeadm deploys its add-ons: each runs from the components image under a ServiceAccount of
its own in kube-system, bound to the smallest ClusterRole that does its job, and reaches the API
server through a kubeconfig in a ConfigMap that names the control-plane endpoint and the pod's
service-account token (the Service IP of the API server needs kube-proxy, so kube-proxy cannot
use it). kube-proxy and the network agent are DaemonSets on the host network that tolerate every
taint; DNS is the `coredns` Deployment behind the `kube-dns` Service at the tenth address of the
service range. metrics-server is a Deployment behind the `metrics-server` Service and the APIService
v1beta1.metrics.k8s.io, whose caBundle is the CA that signed its serving certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from provisioner.kube.kubeletconfig import cluster_dns_address

NAMESPACE = "kube-system"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECONFIG_DIR = "/var/lib/provisioner-addon"
RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class AddonSettings:
    image: str
    api_endpoint: str        # https://<control plane>:6443
    pod_cidr: str
    service_cidr: str
    dns_domain: str
    cni_conf_dir: str


def in_cluster_kubeconfig(endpoint: str) -> str:
    """A kubeconfig using the pod's own service-account token and the cluster CA."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default", "cluster": {
            "certificate-authority": f"{SA_DIR}/ca.crt", "server": endpoint}}],
        "users": [{"name": "default", "user": {"tokenFile": f"{SA_DIR}/token"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default",
                                                     "namespace": NAMESPACE}}],
        "current-context": "default",
    }, sort_keys=False)


def _meta(name: str, labels: dict | None = None, namespaced: bool = True) -> dict:
    meta: dict = {"name": name}
    if namespaced:
        meta["namespace"] = NAMESPACE
    if labels:
        meta["labels"] = labels
    return meta


def _identity(name: str, role_rules: list[dict], settings: AddonSettings) -> list[dict]:
    """ServiceAccount, ClusterRole, ClusterRoleBinding and the kubeconfig ConfigMap of `name`."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name)},
        {"apiVersion": RBAC, "kind": "ClusterRole",
         "metadata": _meta(f"provisioner:{name}", namespaced=False), "rules": role_rules},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding",
         "metadata": _meta(f"provisioner:{name}", namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"provisioner:{name}"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(f"{name}-kubeconfig"),
         "data": {"kubeconfig.conf": in_cluster_kubeconfig(settings.api_endpoint)}},
    ]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


READ = ["get", "list", "watch"]
NODE_NAME_ENV = {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}


def _kubeconfig_volume(name: str) -> tuple[dict, dict]:
    return ({"name": "kubeconfig", "configMap": {"name": f"{name}-kubeconfig"}},
            {"name": "kubeconfig", "mountPath": KUBECONFIG_DIR, "readOnly": True})


def _host_network_daemonset(name: str, labels: dict, container: dict, volumes: list[dict],
                            settings: AddonSettings) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{"image": settings.image, "imagePullPolicy": "Never",
                                    "securityContext": {"privileged": True},
                                    "env": [NODE_NAME_ENV], **container}],
                    "volumes": volumes,
                },
            },
        },
    }


def kube_proxy(settings: AddonSettings) -> list[dict]:
    labels = {"k8s-app": "kube-proxy"}
    volume, mount = _kubeconfig_volume("kube-proxy")
    container = {
        "name": "kube-proxy",
        "command": ["kube-proxy", f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig.conf",
                    "--hostname-override=$(NODE_NAME)", f"--cluster-cidr={settings.pod_cidr}",
                    "--proxy-mode=iptables"],
        "volumeMounts": [mount, {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}],
    }
    volumes = [volume, {"name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}]
    rules = [_rule([""], ["services", "endpoints", "nodes"], READ),
             _rule(["discovery.k8s.io"], ["endpointslices"], READ),
             _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])]
    return _identity("kube-proxy", rules, settings) + [
        _host_network_daemonset("kube-proxy", labels, container, volumes, settings)]


def network_agent(settings: AddonSettings) -> list[dict]:
    labels = {"k8s-app": "provisioner-netagent"}
    volume, mount = _kubeconfig_volume("provisioner-netagent")
    container = {
        "name": "netagent",
        "command": ["provisioner-netagent", f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig.conf",
                    "--node-name=$(NODE_NAME)", f"--cluster-cidr={settings.pod_cidr}",
                    f"--cni-conf-dir={settings.cni_conf_dir}"],
        "volumeMounts": [mount, {"name": "cni-conf", "mountPath": settings.cni_conf_dir},
                         {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}],
    }
    volumes = [volume,
               {"name": "cni-conf", "hostPath": {"path": settings.cni_conf_dir,
                                                 "type": "DirectoryOrCreate"}},
               {"name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}]
    rules = [_rule([""], ["nodes", "pods", "namespaces"], READ),
             _rule(["networking.k8s.io"], ["networkpolicies"], READ),
             _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])]
    return _identity("provisioner-netagent", rules, settings) + [
        _host_network_daemonset("provisioner-netagent", labels, container, volumes, settings)]


def cluster_dns(settings: AddonSettings, replicas: int = 2) -> list[dict]:
    labels = {"k8s-app": "kube-dns"}
    volume, mount = _kubeconfig_volume("coredns")
    probe_port = {"liveness": 8080, "readiness": 8181}
    container = {
        "name": "coredns",
        "image": settings.image,
        "imagePullPolicy": "Never",
        "command": ["provisioner-dns", f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig.conf",
                    f"--cluster-domain={settings.dns_domain}"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "70Mi"},
                      "limits": {"memory": "170Mi"}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": probe_port["liveness"]},
                          "initialDelaySeconds": 10, "periodSeconds": 10,
                          "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": probe_port["readiness"]},
                           "periodSeconds": 2},
        "volumeMounts": [mount],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("coredns", labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "coredns",
                    "dnsPolicy": "Default",
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"key": "node-role.kubernetes.io/control-plane",
                                     "effect": "NoSchedule"}],
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100, "podAffinityTerm": {
                                "labelSelector": {"matchLabels": labels},
                                "topologyKey": "kubernetes.io/hostname"}}]}},
                    "containers": [container],
                    "volumes": [volume],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta("kube-dns", {**labels, "kubernetes.io/name": "CoreDNS"}),
        "spec": {"selector": labels, "clusterIP": cluster_dns_address(settings.service_cidr),
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP",
                            "targetPort": 9153}]},
    }
    rules = [_rule([""], ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
             _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"])]
    return _identity("coredns", rules, settings) + [deployment, service]


# -- metrics-server: the resource metrics API behind `kubectl top` and HPAs ------------------------
METRICS_SERVER_PORT = 10250  # metrics-server's default secure port, inside its pod's network
METRICS_READ = ["get", "list", "watch"]


def metrics_server_rbac(subject: dict) -> list[dict]:
    """What metrics-server's upstream manifest grants, bound to `subject` (its ServiceAccount, or a
    user on the dev cluster): scraping kubelets, delegated authentication and authorization, the
    front-proxy CA in extension-apiserver-authentication, and the reader role for its API."""
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    return [
        {"apiVersion": RBAC, "kind": "ClusterRole",
         "metadata": _meta("system:aggregated-metrics-reader", {
             "rbac.authorization.k8s.io/aggregate-to-view": "true",
             "rbac.authorization.k8s.io/aggregate-to-edit": "true",
             "rbac.authorization.k8s.io/aggregate-to-admin": "true"}, namespaced=False),
         "rules": [_rule(["metrics.k8s.io"], ["pods", "nodes"], METRICS_READ)]},
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": _meta("system:metrics-server", namespaced=False),
         "rules": [_rule([""], ["nodes/metrics"], ["get"]), _rule([""], ["pods", "nodes"], METRICS_READ)]},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": _meta("system:metrics-server", namespaced=False),
         "roleRef": {**ref, "name": "system:metrics-server"}, "subjects": [subject]},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding",
         "metadata": _meta("metrics-server:system:auth-delegator", namespaced=False),
         "roleRef": {**ref, "name": "system:auth-delegator"}, "subjects": [subject]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": _meta("metrics-server-auth-reader"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"}, "subjects": [subject]},
    ]


def metrics_api_service(ca_bundle_b64: str, namespace: str = NAMESPACE, port: int = 443) -> dict:
    """v1beta1.metrics.k8s.io, served by the metrics-server Service, checked against ca_bundle."""
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": "metrics-server"}},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100, "caBundle": ca_bundle_b64,
                     "service": {"namespace": namespace, "name": "metrics-server", "port": port}}}


@dataclass(frozen=True)
class MetricsServerCerts:
    """Base64 PEM: the serving certificate and key (for metrics-server.kube-system.svc) and the CA
    that signed it (the APIService's caBundle)."""
    cert_b64: str
    key_b64: str
    ca_b64: str


def metrics_server(settings: AddonSettings, certs: MetricsServerCerts, resolution: str = "15s") -> list[dict]:
    labels = {"k8s-app": "metrics-server"}
    volume, mount = _kubeconfig_volume("metrics-server")
    container = {
        "name": "metrics-server", "image": settings.image, "imagePullPolicy": "Never",
        "command": ["metrics-server", f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig.conf",
                    f"--secure-port={METRICS_SERVER_PORT}", "--tls-cert-file=/certs/tls.crt",
                    "--tls-private-key-file=/certs/tls.key", f"--metric-resolution={resolution}",
                    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"],
        "ports": [{"name": "https", "containerPort": METRICS_SERVER_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
        # ready after its first scrape: probed each second, so the APIService is Available
        # (and `kubectl top` answers) as soon as it can be
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                           "periodSeconds": 1, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                          "periodSeconds": 10, "failureThreshold": 3, "initialDelaySeconds": 20},
        "securityContext": {"allowPrivilegeEscalation": False},
        "volumeMounts": [mount, {"name": "certs", "mountPath": "/certs", "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("metrics-server", labels),
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": "metrics-server", "priorityClassName": "system-cluster-critical",
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                "containers": [container],
                "volumes": [volume, {"name": "certs", "secret": {"secretName": "metrics-server-certs",
                                                                 "defaultMode": 0o400}}]}},
        },
    }
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": _meta("metrics-server-certs", labels),
              "data": {"tls.crt": certs.cert_b64, "tls.key": certs.key_b64}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": _meta("metrics-server", {**labels, "kubernetes.io/name": "Metrics-server"}),
               "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                       "targetPort": "https"}]}}
    subject = {"kind": "ServiceAccount", "name": "metrics-server", "namespace": NAMESPACE}
    identity = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("metrics-server", labels)},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("metrics-server-kubeconfig"),
                 "data": {"kubeconfig.conf": in_cluster_kubeconfig(settings.api_endpoint)}}]
    return (identity + metrics_server_rbac(subject)
            + [secret, deployment, service, metrics_api_service(certs.ca_b64)])
