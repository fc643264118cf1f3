"""The table of served resources: adding a resource is one line here.

Everything else (routes, discovery, OpenAPI, tables, storage keys) is generic and reads this
table. The schema of a kind is in schemas.py under the same name; printed columns in tables.py;
validation and defaulting hooks in validation.py, keyed by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    scale: bool = False  # has a scale subresource
    categories: tuple[str, ...] = ()
    extra_sub: tuple[str, ...] = ()  # other subresources (binding, eviction, finalize)
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch",
                              "update", "watch")
    singular: str = field(default="")
    stored: bool = True  # False: answered on the spot (reviews), never kept in etcd
    schema: str = ""  # the type in schemas.T when it is not named as the kind (events.k8s.io Event)
    custom: bool = False  # served for a CustomResourceDefinition (crd.py)

    @property
    def schema_type(self) -> str:
        return self.schema or self.kind

    @property
    def store(self) -> str:
        """Where its objects are kept (storage.py keys): built-in kinds by plural, as
        kube-apiserver keeps most of them; custom resources by group and plural, so two groups
        may serve the same plural."""
        return f"{self.group}/{self.plural}" if self.custom else self.plural

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status else ()) + (("scale",) if self.scale else ()) + self.extra_sub


R = Resource
RESOURCES: list[Resource] = [
    R("", "v1", "Namespace", "namespaces", False, ("ns",), status=True, extra_sub=("finalize",),
      verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    R("", "v1", "Node", "nodes", False, ("no",), status=True, extra_sub=("proxy",)),
    R("", "v1", "Pod", "pods", short=("po",), status=True, categories=("all",),
      extra_sub=("binding", "eviction", "log", "exec", "attach", "portforward")),
    R("", "v1", "Service", "services", short=("svc",), status=True, categories=("all",),
      verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    R("", "v1", "Endpoints", "endpoints", short=("ep",), singular="endpoints"),
    R("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    R("", "v1", "Secret", "secrets"),
    R("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",), extra_sub=("token",)),
    R("", "v1", "Event", "events", short=("ev",)),
    R("apps", "v1", "Deployment", "deployments", short=("deploy",), status=True, scale=True,
      categories=("all",)),
    R("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), status=True, scale=True,
      categories=("all",)),
    R("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), status=True, categories=("all",)),
    R("batch", "v1", "Job", "jobs", status=True, categories=("all",)),
    R("coordination.k8s.io", "v1", "Lease", "leases"),
    R("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    R("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    R("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    R("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    R("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    R("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False,
      ("csr",), status=True, extra_sub=("approval",)),
    # core/v1, more
    R("", "v1", "ReplicationController", "replicationcontrollers", short=("rc",), status=True, scale=True,
      categories=("all",)),
    R("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), status=True),
    R("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), status=True),
    R("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), status=True),
    R("", "v1", "LimitRange", "limitranges", short=("limits",)),
    R("", "v1", "PodTemplate", "podtemplates"),
    R("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), status=True, scale=True,
      categories=("all",)),
    R("apps", "v1", "ControllerRevision", "controllerrevisions"),
    R("batch", "v1", "CronJob", "cronjobs", short=("cj",), status=True, categories=("all",)),
    R("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), status=True),
    R("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    R("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    R("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), status=True),
    R("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    R("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",),
      status=True, categories=("all",)),
    R("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    # the same stored Events, seen through events.k8s.io/v1 (conversion.py)
    R("events.k8s.io", "v1", "Event", "events", short=("ev",), schema="EventsV1Event"),
    R("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, status=True,
      categories=("api-extensions",)),
    # reviews: create-only questions answered at once (reviews.py, selfsubject.py)
    R("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=("create",), stored=False),
    R("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",),
      stored=False),
    R("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=("create",),
      stored=False),
    R("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
      verbs=("create",), stored=False),
    R("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
      verbs=("create",), stored=False),
    R("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
      verbs=("create",), stored=False),
]

RESOURCES += [R("admissionregistration.k8s.io", "v1", kind, plural, False, categories=("api-extensions",))
              for kind, plural in (("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
                                   ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"))]
RESOURCES.append(R("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
                   ("crd", "crds"), status=True, categories=("api-extensions",)))

BY_GV_PLURAL: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], Resource] = {(r.group, r.kind): r for r in RESOURCES}
# custom resources, served while their CustomResourceDefinition is established (crd.py keeps this)
CUSTOM: dict[tuple[str, str, str], Resource] = {}
# bumped on every change of CUSTOM, so documents derived from the table (OpenAPI) are rebuilt
GENERATION = [0]


def all_resources() -> list[Resource]:
    return RESOURCES + list(CUSTOM.values())


def set_custom(resources: dict[tuple[str, str, str], Resource]) -> None:
    if resources != CUSTOM:
        CUSTOM.clear()
        CUSTOM.update(resources)
        GENERATION[0] += 1


def groups() -> dict[str, list[str]]:
    """group -> versions, core ("") first, in table order."""
    out: dict[str, list[str]] = {}
    for r in all_resources():
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_GV_PLURAL.get((group, version, plural)) or CUSTOM.get((group, version, plural))
