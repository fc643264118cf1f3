"""Reading Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`).

client-go's generated clients always send built-in kinds as protobuf, and kubectl's `create
namespace|configmap|secret|deployment|service|job|role|...` use them, with no JSON fallback. So
requests in protobuf are decoded here into the same JSON-shaped dict every other path uses;
responses are always JSON, which every client accepts. The envelope is `k8s\\0` followed by a
runtime.Unknown {typeMeta, raw}; `raw` is the object message.

Field numbers below are Kubernetes' wire format for the kinds and fields the generated clients
send. Notation: `name:type`, type one of string, int, bool, bytes (pointer fields `*int`, `*bool`
keep zero values; others drop them, as JSON's omitempty does), map, mapbytes, Time, IOS
(IntOrString), Q (Quantity), {Q} (map of quantities), a message name, or [...] for repeated.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"
M = {
    "Unknown": {1: "typeMeta:TypeMeta", 2: "raw:bytes", 3: "contentEncoding:string", 4: "contentType:string"},
    "TypeMeta": {1: "apiVersion:string", 2: "kind:string"},
    "ObjectMeta": {1: "name:string", 2: "generateName:string", 3: "namespace:string", 5: "uid:string",
                   6: "resourceVersion:string", 7: "generation:int", 8: "creationTimestamp:Time",
                   9: "deletionTimestamp:Time", 10: "deletionGracePeriodSeconds:*int", 11: "labels:map",
                   12: "annotations:map", 13: "ownerReferences:[OwnerReference]", 14: "finalizers:[string]"},
    "OwnerReference": {5: "apiVersion:string", 1: "kind:string", 3: "name:string", 4: "uid:string",
                       6: "controller:*bool", 7: "blockOwnerDeletion:*bool"},
    "LabelSelector": {1: "matchLabels:map", 2: "matchExpressions:[LabelSelectorRequirement]"},
    "LabelSelectorRequirement": {1: "key:string", 2: "operator:string", 3: "values:[string]"},
    "Time": {1: "seconds:int", 2: "nanos:int"},
    "IOS": {1: "type:int", 2: "intVal:int", 3: "strVal:string"},
    "Q": {1: "string:string"},
    "DeleteOptions": {1: "gracePeriodSeconds:*int", 2: "preconditions:Preconditions",
                      3: "orphanDependents:*bool", 4: "propagationPolicy:string", 5: "dryRun:[string]"},
    "Preconditions": {1: "uid:string", 2: "resourceVersion:string"},
    # core/v1
    "Namespace": {1: "metadata:ObjectMeta", 2: "spec:NamespaceSpec"},
    "NamespaceSpec": {1: "finalizers:[string]"},
    "ConfigMap": {1: "metadata:ObjectMeta", 4: "immutable:*bool", 2: "data:map", 3: "binaryData:mapbytes"},
    "Secret": {1: "metadata:ObjectMeta", 5: "immutable:*bool", 2: "data:mapbytes", 4: "stringData:map",
               3: "type:string"},
    "ServiceAccount": {1: "metadata:ObjectMeta", 2: "secrets:[ObjectReference]",
                       3: "imagePullSecrets:[LocalObjectReference]", 4: "automountServiceAccountToken:*bool"},
    "ObjectReference": {1: "kind:string", 2: "namespace:string", 3: "name:string", 4: "uid:string",
                        5: "apiVersion:string", 6: "resourceVersion:string", 7: "fieldPath:string"},
    "LocalObjectReference": {1: "name:string"},
    "Service": {1: "metadata:ObjectMeta", 2: "spec:ServiceSpec"},
    "ServiceSpec": {1: "ports:[ServicePort]", 2: "selector:map", 3: "clusterIP:string",
                    18: "clusterIPs:[string]", 4: "type:string", 5: "externalIPs:[string]",
                    7: "sessionAffinity:string", 10: "externalName:string",
                    11: "externalTrafficPolicy:string", 19: "ipFamilies:[string]",
                    17: "ipFamilyPolicy:*string", 22: "internalTrafficPolicy:*string"},
    "ServicePort": {1: "name:string", 2: "protocol:string", 6: "appProtocol:*string", 3: "port:int",
                    4: "targetPort:IOS", 5: "nodePort:int"},
    "PodTemplateSpec": {1: "metadata:ObjectMeta", 2: "spec:PodSpec"},
    "PodSpec": {2: "containers:[Container]", 20: "initContainers:[Container]", 3: "restartPolicy:string",
                4: "terminationGracePeriodSeconds:*int", 5: "activeDeadlineSeconds:*int",
                6: "dnsPolicy:string", 7: "nodeSelector:map", 8: "serviceAccountName:string",
                21: "automountServiceAccountToken:*bool", 10: "nodeName:string", 11: "hostNetwork:bool",
                15: "imagePullSecrets:[LocalObjectReference]", 16: "hostname:string",
                17: "subdomain:string", 19: "schedulerName:string", 24: "priorityClassName:string"},
    "Container": {1: "name:string", 2: "image:string", 3: "command:[string]", 4: "args:[string]",
                  5: "workingDir:string", 6: "ports:[ContainerPort]", 7: "env:[EnvVar]",
                  8: "resources:ResourceRequirements", 9: "volumeMounts:[VolumeMount]",
                  13: "terminationMessagePath:string", 20: "terminationMessagePolicy:string",
                  14: "imagePullPolicy:string", 16: "stdin:bool", 17: "stdinOnce:bool", 18: "tty:bool"},
    "ContainerPort": {1: "name:string", 2: "hostPort:int", 3: "containerPort:int", 4: "protocol:string",
                      5: "hostIP:string"},
    "EnvVar": {1: "name:string", 2: "value:string"},
    "ResourceRequirements": {1: "limits:{Q}", 2: "requests:{Q}"},
    "VolumeMount": {1: "name:string", 2: "readOnly:bool", 3: "mountPath:string", 4: "subPath:string"},
    # apps/v1, batch/v1
    "Deployment": {1: "metadata:ObjectMeta", 2: "spec:DeploymentSpec"},
    "DeploymentSpec": {1: "replicas:*int", 2: "selector:LabelSelector", 3: "template:PodTemplateSpec",
                       4: "strategy:DeploymentStrategy", 5: "minReadySeconds:int",
                       6: "revisionHistoryLimit:*int", 7: "paused:bool", 9: "progressDeadlineSeconds:*int"},
    "DeploymentStrategy": {1: "type:string", 2: "rollingUpdate:RollingUpdateDeployment"},
    "RollingUpdateDeployment": {1: "maxUnavailable:IOS", 2: "maxSurge:IOS"},
    "Job": {1: "metadata:ObjectMeta", 2: "spec:JobSpec"},
    "JobSpec": {1: "parallelism:*int", 2: "completions:*int", 3: "activeDeadlineSeconds:*int",
                7: "backoffLimit:*int", 4: "selector:LabelSelector", 5: "manualSelector:*bool",
                6: "template:PodTemplateSpec", 8: "ttlSecondsAfterFinished:*int",
                9: "completionMode:*string", 10: "suspend:*bool"},
    # rbac/v1
    "Role": {1: "metadata:ObjectMeta", 2: "rules:[PolicyRule]"},
    "ClusterRole": {1: "metadata:ObjectMeta", 2: "rules:[PolicyRule]"},
    "PolicyRule": {1: "verbs:[string]", 2: "apiGroups:[string]", 3: "resources:[string]",
                   4: "resourceNames:[string]", 5: "nonResourceURLs:[string]"},
    "RoleBinding": {1: "metadata:ObjectMeta", 2: "subjects:[Subject]", 3: "roleRef:RoleRef"},
    "ClusterRoleBinding": {1: "metadata:ObjectMeta", 2: "subjects:[Subject]", 3: "roleRef:RoleRef"},
    "Subject": {1: "kind:string", 2: "apiGroup:string", 3: "name:string", 4: "namespace:string"},
    "RoleRef": {1: "apiGroup:string", 2: "kind:string", 3: "name:string"},
    # certificates/v1 (`kubectl certificate approve|deny` PUT the whole object to /approval)
    "CertificateSigningRequest": {1: "metadata:ObjectMeta", 2: "spec:CSRSpec", 3: "status:CSRStatus"},
    "CSRSpec": {1: "request:bytes", 2: "username:string", 3: "uid:string", 4: "groups:[string]",
                5: "usages:[string]", 7: "signerName:string", 8: "expirationSeconds:*int"},
    "CSRStatus": {1: "conditions:[CSRCondition]", 2: "certificate:bytes"},
    "CSRCondition": {1: "type:string", 2: "reason:string", 3: "message:string", 4: "lastUpdateTime:Time",
                     5: "lastTransitionTime:Time", 6: "status:string"},
    # policy/v1 (`kubectl drain` evicts through pods/eviction)
    "Eviction": {1: "metadata:ObjectMeta", 2: "deleteOptions:DeleteOptions"},
    # authentication/v1
    "TokenRequest": {1: "metadata:ObjectMeta", 2: "spec:TokenRequestSpec"},
    "TokenRequestSpec": {1: "audiences:[string]", 4: "expirationSeconds:*int",
                         3: "boundObjectRef:BoundObjectReference"},
    "BoundObjectReference": {1: "kind:string", 2: "apiVersion:string", 3: "name:string", 4: "uid:string"},
    "SelfSubjectReview": {1: "metadata:ObjectMeta"},
    # authorization/v1 (`kubectl auth can-i`)
    "SelfSubjectAccessReview": {1: "metadata:ObjectMeta", 2: "spec:SSARSpec"},
    "SSARSpec": {1: "resourceAttributes:ResourceAttributes", 2: "nonResourceAttributes:NonResourceAttributes"},
    "ResourceAttributes": {1: "namespace:string", 2: "verb:string", 3: "group:string", 4: "version:string",
                           5: "resource:string", 6: "subresource:string", 7: "name:string"},
    "NonResourceAttributes": {1: "path:string", 2: "verb:string"},
    "SelfSubjectRulesReview": {1: "metadata:ObjectMeta", 2: "spec:SSRRSpec"},
    "SSRRSpec": {1: "namespace:string"},
    # what `kubectl create priorityclass|quota|poddisruptionbudget|cronjob|ingress` send
    "PriorityClass": {1: "metadata:ObjectMeta", 2: "value:int", 3: "globalDefault:bool", 4: "description:string",
                      5: "preemptionPolicy:*string"},
    "ResourceQuota": {1: "metadata:ObjectMeta", 2: "spec:ResourceQuotaSpec"},
    "ResourceQuotaSpec": {1: "hard:{Q}", 2: "scopes:[string]", 3: "scopeSelector:ScopeSelector"},
    "ScopeSelector": {1: "matchExpressions:[ScopedResourceSelectorRequirement]"},
    "ScopedResourceSelectorRequirement": {1: "scopeName:string", 2: "operator:string", 3: "values:[string]"},
    "PodDisruptionBudget": {1: "metadata:ObjectMeta", 2: "spec:PodDisruptionBudgetSpec"},
    "PodDisruptionBudgetSpec": {1: "minAvailable:IOS", 2: "selector:LabelSelector", 3: "maxUnavailable:IOS",
                                4: "unhealthyPodEvictionPolicy:*string"},
    "CronJob": {1: "metadata:ObjectMeta", 2: "spec:CronJobSpec"},
    "CronJobSpec": {1: "schedule:string", 8: "timeZone:*string", 2: "startingDeadlineSeconds:*int",
                    3: "concurrencyPolicy:string", 4: "suspend:*bool", 5: "jobTemplate:JobTemplateSpec",
                    6: "successfulJobsHistoryLimit:*int", 7: "failedJobsHistoryLimit:*int"},
    "JobTemplateSpec": {1: "metadata:ObjectMeta", 2: "spec:JobSpec"},
    "Ingress": {1: "metadata:ObjectMeta", 2: "spec:IngressSpec"},
    "IngressSpec": {4: "ingressClassName:*string", 1: "defaultBackend:IngressBackend", 2: "tls:[IngressTLS]",
                    3: "rules:[IngressRule]"},
    "IngressTLS": {1: "hosts:[string]", 2: "secretName:string"},
    "IngressRule": {1: "host:string", 2: "inline:IngressRuleValue"},  # embedded: its fields sit in the rule
    "IngressRuleValue": {1: "http:HTTPIngressRuleValue"},
    "HTTPIngressRuleValue": {1: "paths:[HTTPIngressPath]"},
    "HTTPIngressPath": {1: "path:string", 3: "pathType:*string", 2: "backend:IngressBackend"},
    "IngressBackend": {4: "service:IngressServiceBackend", 3: "resource:TypedLocalObjectReference"},
    "IngressServiceBackend": {1: "name:string", 2: "port:ServiceBackendPort"},
    "ServiceBackendPort": {1: "name:string", 2: "number:int"},
    "TypedLocalObjectReference": {1: "apiGroup:*string", 2: "kind:string", 3: "name:string"},
    # `kubectl autoscale` (autoscaling/v2)
    "HorizontalPodAutoscaler": {1: "metadata:ObjectMeta", 2: "spec:HPASpec"},
    "HPASpec": {1: "scaleTargetRef:CrossVersionObjectReference", 2: "minReplicas:*int", 3: "maxReplicas:int",
                4: "metrics:[MetricSpec]"},
    "CrossVersionObjectReference": {1: "kind:string", 2: "name:string", 3: "apiVersion:string"},
    "MetricSpec": {1: "type:string", 4: "resource:ResourceMetricSource"},
    "ResourceMetricSource": {1: "name:string", 2: "target:MetricTarget"},
    "MetricTarget": {1: "type:string", 2: "value:Q", 3: "averageValue:Q", 4: "averageUtilization:*int"},
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; value is int or bytes."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            val, i = buf[i:i + n], i + n
        elif wt == 1:
            val, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            val, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out.append((num, wt, val))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(t: str, v: Any) -> Any:
    if t == "string":
        return v.decode()
    if t == "bytes":
        return bytes(v)
    if t == "int":
        return _signed(v)
    if t == "bool":
        return bool(v)
    raise ValueError(t)


def _special(t: str, v: bytes) -> Any:
    msg = message(v, t)
    if t == "Time":
        if not msg.get("seconds"):
            return None
        return dt.datetime.fromtimestamp(msg["seconds"], dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if t == "IOS":
        return msg.get("strVal", "") if msg.get("type") == 1 else msg.get("intVal", 0)
    if t == "Q":
        return msg.get("string", "0")
    return msg


def message(buf: bytes, name: str) -> dict:
    table = M[name]
    out: dict[str, Any] = {}
    for num, _wt, val in _fields(buf):
        spec = table.get(num)
        if spec is None:
            continue  # a field this server does not model; JSON clients could not send it either
        fname, t = spec.split(":", 1)
        pointer = t.startswith("*")
        t = t.lstrip("*")
        varint = t in ("int", "bool") or t in ("[int]", "[bool]")
        if varint != isinstance(val, int):  # a wire type that cannot carry this field's type
            raise ValueError(f"field {fname} of {name} has wire type {_wt}")
        if t.startswith("["):
            inner = t[1:-1]
            item = _scalar(inner, val) if inner in ("string", "int", "bool") else message(val, inner)
            out.setdefault(fname, []).append(item)
        elif t in ("map", "mapbytes", "{Q}"):
            entry = {n: v for n, _, v in _fields(val)}
            k = entry.get(1, b"").decode()
            raw = entry.get(2, b"")
            out.setdefault(fname, {})[k] = (base64.b64encode(raw).decode() if t == "mapbytes" else
                                            _special("Q", raw) if t == "{Q}" else raw.decode())
        elif t in ("string", "int", "bool", "bytes"):
            v = _scalar(t, val)
            if pointer or v not in ("", 0, False, b""):
                out[fname] = base64.b64encode(v).decode() if t == "bytes" else v
        elif t in ("Time", "IOS", "Q"):
            v = _special(t, val)
            if v is not None:
                out[fname] = v
        elif fname == "inline":
            out.update(message(val, t))
        else:
            out[fname] = message(val, t)
    return out


def decode(body: bytes) -> dict:
    """The JSON-shaped object inside a Kubernetes protobuf envelope."""
    if not body.startswith(MAGIC):
        raise ApiError.bad_request("protobuf body does not start with the k8s envelope prefix")
    try:
        unknown = message(body[len(MAGIC):], "Unknown")
        tm = unknown.get("typeMeta") or {}
        kind = tm.get("kind", "")
        if kind not in M:
            raise ApiError.unsupported_media(f"application/vnd.kubernetes.protobuf ({kind or 'no kind'})")
        raw = base64.b64decode(unknown.get("raw", ""))
        obj = message(raw, kind)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError.bad_request(f"unable to decode protobuf body: {exc}")
    return dict({"apiVersion": tm.get("apiVersion", ""), "kind": kind}, **obj)
