"""Defaulting and validation of objects, with Kubernetes' field paths and messages.

`default(kind, obj)` fills what Kubernetes' defaulters fill; `validate(res, obj)` returns
(field, message) causes, empty when valid. Hooks per kind are plain functions in two tables.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Callable

from . import schemas
from .selectors import match_labels, selector_from_label_selector

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")

# kinds whose names are DNS labels (63 chars) rather than subdomains (253)
LABEL_NAMED = {"Namespace", "Service"}
# kinds whose names are free path segments (RBAC allows ':' in names)
PATH_NAMED = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "APIService"}

Causes = list[tuple[str, str]]
# a static pod's copy in the API, written by its kubelet
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def check_name(kind: str, name: str) -> Causes:
    if not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    if kind in PATH_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [("metadata.name", f'Invalid value: "{name}": may not contain \'/\' or \'%\'')]
        return []
    if kind in LABEL_NAMED:
        if len(name) > 63:
            return [("metadata.name", f'Invalid value: "{name}": must be no more than 63 characters')]
        if not DNS1123_LABEL.match(name):
            return [("metadata.name", f'Invalid value: "{name}": {LABEL_MSG}')]
        return []
    if len(name) > 253:
        return [("metadata.name", f'Invalid value: "{name}": must be no more than 253 characters')]
    if not DNS1123_SUBDOMAIN.match(name):
        return [("metadata.name", f'Invalid value: "{name}": {SUBDOMAIN_MSG}')]
    return []


# The fields kube-apiserver's validation requires on input, by type. These are validation
# rules (Go code upstream), not the OpenAPI document's `required`, which also lists fields
# that are merely always present in output (status counters, for example).
REQUIRED: dict[str, tuple[str, ...]] = {
    "OwnerReference": ("apiVersion", "kind", "name", "uid"),
    "LabelSelectorRequirement": ("key", "operator"), "Taint": ("key", "effect"),
    "NodeAddress": ("type", "address"), "PodSpec": ("containers",), "Container": ("name",),
    "ContainerPort": ("containerPort",), "EnvVar": ("name",), "VolumeMount": ("name", "mountPath"),
    "Volume": ("name",), "Binding": ("target",), "ServicePort": ("port",),
    "EventsV1Event": ("eventTime",), "EventsV1EventSeries": ("count", "lastObservedTime"),
    "DeploymentSpec": ("selector", "template"), "ReplicaSetSpec": ("selector",),
    "DaemonSetSpec": ("selector", "template"), "JobSpec": ("template",),
    "EndpointSlice": ("addressType",), "PolicyRule": ("verbs",), "Subject": ("kind", "name"),
    "RoleRef": ("apiGroup", "kind", "name"), "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",), "CertificateSigningRequest": ("spec",),
    "CertificateSigningRequestSpec": ("request", "signerName"),
    "ReplicationControllerStatus": ("replicas",), "LimitRangeSpec": ("limits",),
    "LimitRangeItem": ("type",), "StatefulSetSpec": ("selector", "template"),
    "StatefulSetStatus": ("replicas",), "ControllerRevision": ("revision",),
    "CronJobSpec": ("schedule", "jobTemplate"),
    "PodDisruptionBudgetStatus": ("disruptionsAllowed", "currentHealthy", "desiredHealthy",
                                  "expectedPods"),
    "PriorityClass": ("value",), "HorizontalPodAutoscalerSpec": ("scaleTargetRef", "maxReplicas"),
    "CrossVersionObjectReference": ("kind", "name"),
    "HorizontalPodAutoscalerStatus": ("desiredReplicas",), "StorageClass": ("provisioner",),
    "APIServiceSpec": ("groupPriorityMinimum", "versionPriority"), "TokenReview": ("spec",),
    "SubjectAccessReview": ("spec",), "LocalSubjectAccessReview": ("spec",),
    "SelfSubjectAccessReview": ("spec",), "SelfSubjectRulesReview": ("spec",),
    "CustomResourceDefinition": ("spec",),
    "CustomResourceDefinitionSpec": ("group", "names", "scope", "versions"),
    "CustomResourceDefinitionNames": ("plural", "kind"),
    "CustomResourceDefinitionVersion": ("name", "served", "storage"),
    "MutatingWebhook": ("name", "clientConfig", "sideEffects", "admissionReviewVersions"),
    "ValidatingWebhook": ("name", "clientConfig", "sideEffects", "admissionReviewVersions"),
}


def _walk_table() -> dict[str, dict[str, tuple[bool, str]]]:
    """type -> {field: (is a list, element type)} for the typed fields (objects other than
    ObjectMeta, lists of objects) under which a REQUIRED field can occur. Worked out once from
    the schemas, so a create walks only the parts of the object that can hold a missing field
    (the same causes in the same order as walking every typed field)."""
    typed: dict[str, dict[str, tuple[bool, str]]] = {}
    for name, (_, fields, _) in schemas.T.items():
        typed[name] = {}
        for k, notation in fields.items():
            shape, elem, _ = schemas.parse(notation)
            if shape == "ref" and elem != "ObjectMeta":
                typed[name][k] = (False, elem)
            elif shape == "list" and elem in schemas.T:
                typed[name][k] = (True, elem)
    reaches = {name for name in typed if REQUIRED.get(name)}
    grown = True
    while grown:  # a fixed point: types are recursive (JSONSchemaProps)
        grown = False
        for name, nested in typed.items():
            if name not in reaches and any(elem in reaches for _, elem in nested.values()):
                reaches.add(name)
                grown = True
    return {name: {k: v for k, v in nested.items() if v[1] in reaches} for name, nested in typed.items()}


_WALK = _walk_table()


def _required(obj: dict, type_name: str, path: str) -> Causes:
    """Required fields (REQUIRED), recursively through typed sub-objects and lists."""
    nested = _WALK.get(type_name)
    if nested is None or not isinstance(obj, dict):
        return []
    required = REQUIRED.get(type_name, ())
    causes = [(f"{path}{r}", "Required value") for r in required if obj.get(r) in (None, "", [], {})]
    if not nested:
        return causes
    for k, v in obj.items():
        walk = nested.get(k)
        if walk is None:
            continue
        if not walk[0]:
            causes += _required(v, walk[1], f"{path}{k}.")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                causes += _required(x, walk[1], f"{path}{k}[{i}].")
    return causes


# defaulting ----------------------------------------------------------------------------------
def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    if "serviceAccountName" in spec or "serviceAccount" in spec:
        spec.setdefault("serviceAccount", spec.get("serviceAccountName"))
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")


def _default_template_owner(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    tmpl = spec.get("template") or {}
    default_pod_spec(tmpl.setdefault("spec", {}))


def _default_deployment(obj: dict) -> None:
    _default_template_owner(obj)
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def _default_service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")


def _default_job(obj: dict) -> None:
    _default_template_owner(obj)
    spec = obj["spec"]
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    tmpl = spec.get("template") or {}
    (tmpl.get("spec") or {})["restartPolicy"] = (tmpl.get("spec") or {}).get("restartPolicy", "Never")


def _default_secret(obj: dict) -> None:
    """stringData is write-only: merged into data (base64), as the Secret strategy does."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {}) or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


DEFAULTERS: dict[str, Callable[[dict], None]] = {
    "Pod": lambda o: default_pod_spec(o.setdefault("spec", {})),
    "Deployment": _default_deployment,
    "ReplicaSet": lambda o: (_default_template_owner(o), o["spec"].setdefault("replicas", 1)),
    "DaemonSet": lambda o: (_default_template_owner(o), o["spec"].setdefault(
        "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1,
                                                                       "maxSurge": 0}}),
                            o["spec"].setdefault("revisionHistoryLimit", 10)),
    "Job": _default_job,
    "Service": _default_service,
    "Secret": _default_secret,
    "Namespace": lambda o: (o.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"]),
                            o.setdefault("status", {}).setdefault("phase", "Active")),
}


def prepare_for_create(kind: str, obj: dict) -> None:
    """Create-time fields that need the new uid: a Job's generated selector, as the Job strategy
    does unless spec.manualSelector is true (the job controller finds its pods by it)."""
    spec = obj.get("spec")
    if kind != "Job" or not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    uid, name = obj["metadata"]["uid"], obj["metadata"].get("name", "")
    tmpl = spec.setdefault("template", {})
    if not isinstance(tmpl, dict):
        return
    meta = tmpl.setdefault("metadata", {})
    if not isinstance(meta, dict):
        return
    labels = meta.setdefault("labels", {})
    if isinstance(labels, dict):
        labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                       "controller-uid": uid, "job-name": name})
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


def default(kind: str, obj: dict) -> None:
    fn = DEFAULTERS.get(kind)
    if fn:
        fn(obj)


# validation ----------------------------------------------------------------------------------
def _pod_spec(spec: dict, path: str) -> Causes:
    causes: Causes = []
    if not isinstance(spec, dict):
        return causes
    names = set()
    for i, c in enumerate(spec.get("containers") or []):
        p = f"{path}.containers[{i}]"
        name = c.get("name") or ""
        if name and not DNS1123_LABEL.match(name):
            causes.append((f"{p}.name", f'Invalid value: "{name}": {LABEL_MSG}'))
        if name in names:
            causes.append((f"{p}.name", f'Duplicate value: "{name}"'))
        names.add(name)
        if not c.get("image"):
            causes.append((f"{p}.image", "Required value"))
        for j, port in enumerate(c.get("ports") or []):
            n = port.get("containerPort")
            if isinstance(n, int) and not 0 < n < 65536:
                causes.append((f"{p}.ports[{j}].containerPort",
                               f"Invalid value: {n}: must be between 1 and 65535, inclusive"))
    rp = spec.get("restartPolicy")
    if rp not in (None, "Always", "OnFailure", "Never"):
        causes.append((f"{path}.restartPolicy",
                       f'Unsupported value: "{rp}": supported values: "Always", "Never", "OnFailure"'))
    dp = spec.get("dnsPolicy")
    if dp not in (None, "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        causes.append((f"{path}.dnsPolicy", f'Unsupported value: "{dp}": supported values: '
                       '"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"'))
    return causes


def _template_owner(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    causes = _pod_spec((spec.get("template") or {}).get("spec") or {}, "spec.template.spec")
    sel = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if obj.get("kind") != "Job" and isinstance(sel, dict):
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            causes.append(("spec.selector", "Invalid value: {}: empty selector is invalid for deployment"))
        elif not match_labels(selector_from_label_selector(sel), labels):
            causes.append(("spec.template.metadata.labels",
                           f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
    r = spec.get("replicas")
    if isinstance(r, int) and r < 0:
        causes.append(("spec.replicas", f"Invalid value: {r}: must be greater than or equal to 0"))
    return causes


def _go_map(m: dict) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "}"


def _service(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    t = spec.get("type", "ClusterIP")
    if t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(("spec.type", f'Unsupported value: "{t}": supported values: "ClusterIP", '
                       '"ExternalName", "LoadBalancer", "NodePort"'))
    if t != "ExternalName" and not spec.get("ports") and spec.get("clusterIP") != "None":
        causes.append(("spec.ports", "Required value"))
    seen = set()
    for i, p in enumerate(spec.get("ports") or []):
        port = p.get("port")
        if isinstance(port, int) and not 0 < port < 65536:
            causes.append((f"spec.ports[{i}].port", f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
        if len(spec.get("ports") or []) > 1 and not p.get("name"):
            causes.append((f"spec.ports[{i}].name", "Required value"))
        key = (port, p.get("protocol", "TCP"))
        if key in seen:
            causes.append((f"spec.ports[{i}]", f'Duplicate value: {{"protocol":"{key[1]}","port":{port}}}'))
        seen.add(key)
        np = p.get("nodePort")
        if np and t not in ("NodePort", "LoadBalancer"):
            causes.append((f"spec.ports[{i}].nodePort", f"Forbidden: may not be used when `type` is '{t}'"))
    return causes


def _data_keys(obj: dict) -> Causes:
    causes: Causes = []
    for field in ("data", "binaryData", "stringData"):
        for k in obj.get(field) or {}:
            if not re.match(r"^[-._a-zA-Z0-9]+$", k) or len(k) > 253:
                causes.append((f"{field}[{k}]", f"Invalid value: \"{k}\": a valid config key must "
                               "consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                               "or 'KEY_NAME',  or 'key-name', regex used for validation is "
                               "'[-._a-zA-Z0-9]+')"))
    return causes


def _secret(obj: dict) -> Causes:
    causes = _data_keys(obj)
    for k, v in (obj.get("data") or {}).items():
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            causes.append((f"data[{k}]", "Invalid value: \"<secret contents redacted>\": illegal base64 data"))
    return causes


VALIDATORS: dict[str, Callable[[dict], Causes]] = {
    "Pod": lambda o: _pod_spec(o.get("spec") or {}, "spec"),
    "Deployment": _template_owner, "ReplicaSet": _template_owner, "DaemonSet": _template_owner,
    "Job": _template_owner,
    "Service": _service, "ConfigMap": _data_keys, "Secret": _secret,
}


def _merge_tables() -> None:
    from . import validation_kinds

    DEFAULTERS.update(validation_kinds.DEFAULTERS)
    VALIDATORS.update(validation_kinds.VALIDATORS)
    VALIDATORS["StatefulSet"] = _template_owner


_merge_tables()


def validate(kind: str, obj: dict, *, check_name_format: bool = True) -> Causes:
    meta = obj.get("metadata") or {}
    causes: Causes = check_name(kind, meta.get("name", "")) if check_name_format else []
    for k, v in (meta.get("labels") or {}).items():
        key = k.split("/")[-1]
        if not LABEL_KEY_NAME.match(key) or len(key) > 63:
            causes.append(("metadata.labels", f'Invalid value: "{k}": name part must consist of '
                           "alphanumeric characters, '-', '_' or '.', and must start and end with "
                           "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                           "'123-abc', regex used for validation is "
                           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"))
        if len(v) > 63 or not LABEL_VALUE.match(v):
            causes.append(("metadata.labels", f'Invalid value: "{v}": a valid label must be an '
                           "empty string or consist of alphanumeric characters, '-', '_' or '.', "
                           "and must start and end with an alphanumeric character (e.g. 'MyValue',"
                           "  or 'my_value',  or '12345', regex used for validation is "
                           "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
    causes += [c for c in _required(obj, kind, "") if not c[0].startswith("metadata")]
    fn = VALIDATORS.get(kind)
    if fn:
        causes += fn(obj)
    return causes
