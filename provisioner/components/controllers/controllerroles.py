"""What each controller's ServiceAccount may do under --use-service-account-credentials.

Upstream's API server ships these as bootstrap policy (ClusterRoles `system:controller:<account>`
bound to kube-system/<account>). This project's API server does not have them yet, so the manager
creates any that are missing with its own identity before the controllers start; a role or binding
that already exists (the API server's, an operator's) is left as it is.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]


def r(verbs: list[str], groups: list[str], resources: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


EVENTS = r(["create", "update", "patch"], ["", "events.k8s.io"], ["events"])
OWNED_PODS = [r(READ + ["create", "delete", "patch", "update"], [""], ["pods"])]

RULES: dict[str, list[Obj]] = {
    "replicaset-controller": [r(READ + ["update"], ["apps"], ["replicasets"]),
                              r(["update"], ["apps"], ["replicasets/status", "replicasets/finalizers"]), *OWNED_PODS],
    "replication-controller": [r(READ + ["update"], [""], ["replicationcontrollers"]),
                               r(["update"], [""], ["replicationcontrollers/status",
                                                    "replicationcontrollers/finalizers"]), *OWNED_PODS],
    "deployment-controller": [r(READ + ["update", "patch"], ["apps"], ["deployments"]),
                              r(["update"], ["apps"], ["deployments/status", "deployments/finalizers"]),
                              r(READ + WRITE, ["apps"], ["replicasets"]), r(READ, [""], ["pods"])],
    "statefulset-controller": [r(READ, ["apps"], ["statefulsets"]),
                               r(["update"], ["apps"], ["statefulsets/status", "statefulsets/finalizers"]),
                               *OWNED_PODS, r(READ + ["create", "delete"], [""], ["persistentvolumeclaims"]),
                               r(READ + WRITE, ["apps"], ["controllerrevisions"])],
    "daemon-set-controller": [r(READ, ["apps"], ["daemonsets"]),
                              r(["update"], ["apps"], ["daemonsets/status", "daemonsets/finalizers"]),
                              r(READ, [""], ["nodes"]), *OWNED_PODS, r(["create"], [""], ["pods/binding"]),
                              r(READ + WRITE, ["apps"], ["controllerrevisions"])],
    "job-controller": [r(READ + ["update", "patch"], ["batch"], ["jobs"]),
                       r(["update", "patch"], ["batch"], ["jobs/status", "jobs/finalizers"]), *OWNED_PODS],
    "cronjob-controller": [r(READ + ["update"], ["batch"], ["cronjobs"]),
                           r(["update"], ["batch"], ["cronjobs/status", "cronjobs/finalizers"]),
                           r(READ + WRITE, ["batch"], ["jobs"]), r(["list", "delete"], [""], ["pods"])],
    "ttl-after-finished-controller": [r(READ + ["delete"], ["batch"], ["jobs"])],
    "service-account-controller": [r(READ + ["create"], [""], ["serviceaccounts"]), r(READ, [""], ["namespaces"])],
    "tokens-controller": [r(READ + WRITE, [""], ["secrets"]), r(READ, [""], ["serviceaccounts"])],
    "root-ca-cert-publisher": [r(READ + ["create", "update"], [""], ["configmaps"]), r(READ, [""], ["namespaces"])],
    "namespace-controller": [r(READ + ["delete", "deletecollection"], ["*"], ["*"]),
                             r(["update"], [""], ["namespaces/finalize", "namespaces/status"])],
    "generic-garbage-collector": [r(READ + ["patch", "update", "delete"], ["*"], ["*"])],
    "pod-garbage-collector": [r(READ + ["delete"], [""], ["pods"]), r(READ, [""], ["nodes"])],
    "endpoint-controller": [r(READ, [""], ["services", "pods"]),
                            r(READ + WRITE, [""], ["endpoints", "endpoints/restricted"])],
    "endpointslice-controller": [r(READ, [""], ["services", "pods", "nodes"]),
                                 r(READ + WRITE, ["discovery.k8s.io"], ["endpointslices"])],
    "endpointslicemirroring-controller": [r(READ, [""], ["services", "endpoints"]),
                                          r(READ + WRITE, ["discovery.k8s.io"], ["endpointslices"])],
    "node-controller": [r(READ + ["patch", "update", "delete"], [""], ["nodes"]),
                        r(["patch", "update"], [""], ["nodes/status", "pods/status"]),
                        r(READ + ["delete"], [""], ["pods"]), r(READ, ["coordination.k8s.io"], ["leases"])],
    "certificate-controller": [r(READ + ["delete"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
                               r(["update"], ["certificates.k8s.io"], ["certificatesigningrequests/approval",
                                                                       "certificatesigningrequests/status"]),
                               {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
                                "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet",
                                                  "kubernetes.io/kube-apiserver-client",
                                                  "kubernetes.io/kubelet-serving"], "verbs": ["approve", "sign"]},
                               r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])],
    "bootstrap-signer": [r(READ + ["update"], [""], ["configmaps"]), r(READ, [""], ["secrets"])],
    "token-cleaner": [r(READ + ["delete"], [""], ["secrets"])],
    "resourcequota-controller": [r(["list", "watch"], ["*"], ["*"]),
                                 r(READ, [""], ["resourcequotas"]), r(["update"], [""], ["resourcequotas/status"])],
    "disruption-controller": [r(READ, ["policy"], ["poddisruptionbudgets"]),
                              r(["update"], ["policy"], ["poddisruptionbudgets/status"]), r(READ, [""], ["pods"]),
                              r(READ, [""], ["replicationcontrollers"]),
                              r(READ, ["apps"], ["replicasets", "statefulsets", "deployments"])],
    "clusterrole-aggregation-controller": [r(READ + ["update", "escalate"], ["rbac.authorization.k8s.io"],
                                             ["clusterroles"])],
    "pvc-protection-controller": [r(READ + ["update", "patch"], [""], ["persistentvolumeclaims"]),
                                  r(READ, [""], ["pods"])],
    "ephemeral-volume-controller": [r(READ, [""], ["pods"]), r(READ + ["create"], [""], ["persistentvolumeclaims"])],
    "persistent-volume-binder": [r(READ + ["create", "update", "delete"], [""], ["persistentvolumes"]),
                                 r(["update"], [""], ["persistentvolumes/status", "persistentvolumeclaims/status"]),
                                 r(READ + ["update"], [""], ["persistentvolumeclaims"])],
    "ttl-controller": [r(READ + ["update", "patch"], [""], ["nodes"])],
    "horizontal-pod-autoscaler": [r(READ, ["autoscaling"], ["horizontalpodautoscalers"]),
                                  r(["update"], ["autoscaling"], ["horizontalpodautoscalers/status"]),
                                  r(["get", "update"], ["*"], ["*/scale"]), r(["list"], [""], ["pods"]),
                                  r(["list"], ["metrics.k8s.io"], ["pods"])],
    "pv-protection-controller": [r(READ + ["update", "patch"], [""], ["persistentvolumes"])],
}


def role(account: str) -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"system:controller:{account}",
                         "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": RULES.get(account, []) + [EVENTS]}


def binding(account: str, namespace: str) -> Obj:
    name = f"system:controller:{account}"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}
