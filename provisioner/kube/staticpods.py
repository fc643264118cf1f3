"""The control plane's static pods: kube-apiserver, kube-controller-manager, kube-scheduler.

As kubeadm writes them: host networking, priority class system-node-critical, kube-style flags,
liveness/readiness/startup probes on the components' secure ports, and hostPath volumes for the
certificates and kubeconfigs they read. Every path is passed in by the phase that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

APISERVER_PORT = 6443
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259


@dataclass(frozen=True)
class ControlPlanePaths:
    """Where the control plane's inputs live on a control-plane host."""

    pki_dir: str                      # /etc/kubernetes/pki
    etcd_ca: str                      # .../etcd/ca.crt
    controller_manager_conf: str      # /etc/kubernetes/controller-manager.conf
    scheduler_conf: str               # /etc/kubernetes/scheduler.conf
    encryption_config: str            # /etc/kubernetes/encryption-config.yaml
    kubernetes_dir: str = "/etc/kubernetes"


@dataclass(frozen=True)
class ControlPlaneSettings:
    """What the flags say about this cluster and this host."""

    advertise_address: str
    etcd_servers: tuple[str, ...]
    service_cidr: str
    pod_cidr: str
    cluster_name: str
    dns_domain: str
    node_cidr_mask_size: int = 24


def _flags(command: str, flags: dict[str, str]) -> list[str]:
    return [command] + [f"--{name}={value}" for name, value in flags.items()]


def _probe(port: int, path: str, initial_delay: int = 10, failure_threshold: int = 8) -> dict:
    return {"httpGet": {"host": "127.0.0.1", "path": path, "port": port, "scheme": "HTTPS"},
            "initialDelaySeconds": initial_delay, "periodSeconds": 10, "timeoutSeconds": 15,
            "failureThreshold": failure_threshold}


def _host_path(name: str, path: str, kind: str = "DirectoryOrCreate",
               read_only: bool = True) -> tuple[dict, dict]:
    return ({"name": name, "hostPath": {"path": path, "type": kind}},
            {"name": name, "mountPath": path, "readOnly": read_only})


def _pod(component: str, image: str, command: list[str], port: int, volumes: list[tuple[dict, dict]],
         cpu: str, readiness_path: str = "/healthz", liveness_path: str = "/healthz") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": component, "namespace": "kube-system",
                     "labels": {"component": component, "tier": "control-plane"}},
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "priority": 2000001000,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": component,
                "image": image,
                "imagePullPolicy": "Never",
                "command": command,
                "resources": {"requests": {"cpu": cpu}},
                "livenessProbe": _probe(port, liveness_path),
                "readinessProbe": _probe(port, readiness_path, initial_delay=0,
                                         failure_threshold=3),
                "startupProbe": _probe(port, liveness_path, failure_threshold=24),
                "volumeMounts": [mount for _, mount in volumes],
            }],
            "volumes": [volume for volume, _ in volumes],
        },
    }


def kube_apiserver(image: str, paths: ControlPlanePaths, settings: ControlPlaneSettings) -> dict:
    pki = paths.pki_dir
    flags = {
        "advertise-address": settings.advertise_address,
        "allow-privileged": "true",
        "authorization-mode": "Node,RBAC",
        "client-ca-file": f"{pki}/ca.crt",
        "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true",
        "encryption-provider-config": paths.encryption_config,
        "etcd-cafile": paths.etcd_ca,
        "etcd-certfile": f"{pki}/apiserver-etcd-client.crt",
        "etcd-keyfile": f"{pki}/apiserver-etcd-client.key",
        "etcd-servers": ",".join(settings.etcd_servers),
        "kubelet-certificate-authority": f"{pki}/ca.crt",
        "kubelet-client-certificate": f"{pki}/apiserver-kubelet-client.crt",
        "kubelet-client-key": f"{pki}/apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        # the aggregation layer (metrics-server): front-proxy client and requestheader trust
        "proxy-client-cert-file": f"{pki}/front-proxy-client.crt",
        "proxy-client-key-file": f"{pki}/front-proxy-client.key",
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-client-ca-file": f"{pki}/front-proxy-ca.crt",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "secure-port": str(APISERVER_PORT),
        "service-account-issuer": f"https://kubernetes.default.svc.{settings.dns_domain}",
        "service-account-key-file": f"{pki}/sa.pub",
        "service-account-signing-key-file": f"{pki}/sa.key",
        "service-cluster-ip-range": settings.service_cidr,
        "tls-cert-file": f"{pki}/apiserver.crt",
        "tls-private-key-file": f"{pki}/apiserver.key",
    }
    volumes = [_host_path("k8s-certs", pki), _host_path("ca-certs", "/etc/ssl/certs"),
               _host_path("encryption-config", paths.encryption_config, "File")]
    return _pod("kube-apiserver", image, _flags("kube-apiserver", flags), APISERVER_PORT, volumes,
                cpu="250m", readiness_path="/readyz", liveness_path="/livez")


def kube_controller_manager(image: str, paths: ControlPlanePaths,
                            settings: ControlPlaneSettings) -> dict:
    pki = paths.pki_dir
    flags = {
        "allocate-node-cidrs": "true",
        "authentication-kubeconfig": paths.controller_manager_conf,
        "authorization-kubeconfig": paths.controller_manager_conf,
        "bind-address": "127.0.0.1",
        "client-ca-file": f"{pki}/ca.crt",
        "cluster-cidr": settings.pod_cidr,
        "cluster-name": settings.cluster_name,
        "cluster-signing-cert-file": f"{pki}/ca.crt",
        "cluster-signing-key-file": f"{pki}/ca.key",
        "controllers": "*,bootstrapsigner,tokencleaner",
        "kubeconfig": paths.controller_manager_conf,
        "leader-elect": "true",
        "node-cidr-mask-size": str(settings.node_cidr_mask_size),
        "root-ca-file": f"{pki}/ca.crt",
        "service-account-private-key-file": f"{pki}/sa.key",
        "service-cluster-ip-range": settings.service_cidr,
        "use-service-account-credentials": "true",
    }
    volumes = [_host_path("k8s-certs", pki), _host_path("ca-certs", "/etc/ssl/certs"),
               _host_path("kubeconfig", paths.controller_manager_conf, "FileOrCreate")]
    return _pod("kube-controller-manager", image, _flags("kube-controller-manager", flags),
                CONTROLLER_MANAGER_PORT, volumes, cpu="200m")


def kube_scheduler(image: str, paths: ControlPlanePaths) -> dict:
    flags = {
        "authentication-kubeconfig": paths.scheduler_conf,
        "authorization-kubeconfig": paths.scheduler_conf,
        "bind-address": "127.0.0.1",
        "kubeconfig": paths.scheduler_conf,
        "leader-elect": "true",
    }
    volumes = [_host_path("kubeconfig", paths.scheduler_conf, "FileOrCreate")]
    return _pod("kube-scheduler", image, _flags("kube-scheduler", flags), SCHEDULER_PORT, volumes,
                cpu="100m")


def control_plane_pods(image: str, paths: ControlPlanePaths,
                       settings: ControlPlaneSettings) -> dict[str, dict]:
    """{manifest file name: pod} for one control-plane host."""
    return {
        "kube-apiserver.yaml": kube_apiserver(image, paths, settings),
        "kube-controller-manager.yaml": kube_controller_manager(image, paths, settings),
        "kube-scheduler.yaml": kube_scheduler(image, paths),
    }
