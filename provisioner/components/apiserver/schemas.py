"""The project's own schemas of the served types, in a compact notation.

One table, three uses: strict field validation (unknown fields rejected), /openapi/v3 and v2
(kubectl explain and kubectl's validation check), and strategic-merge keys. Notation of a field:
  "string" "integer" "boolean" "number" "int-or-string" "quantity" "time" "map" (string map)
  "any" (free-form, kept as is), "Type" (a named type below), "[T]" (list), "[T@key]" (list merged
  by `key` in strategic merge patch), "{T}" (map of T).
A type is (description, {field: notation}, [required fields]).
"""

from __future__ import annotations

META = "io.k8s.apimachinery.pkg.apis.meta.v1"

T: dict[str, tuple[str, dict[str, str], list[str]]] = {}


def t(name: str, desc: str, fields: dict[str, str], required: tuple[str, ...] = ()) -> None:
    T[name] = (desc, fields, list(required))


def _top(spec: str | None, status: str | None, **extra: str) -> dict[str, str]:
    fields = {"apiVersion": "string", "kind": "string", "metadata": "ObjectMeta"}
    if spec:
        fields["spec"] = spec
    if status:
        fields["status"] = status
    fields.update(extra)
    return fields


# meta -----------------------------------------------------------------------------------------
t("ObjectMeta", "ObjectMeta is metadata that all persisted resources must have.", {
    "name": "string", "generateName": "string", "namespace": "string", "uid": "string",
    "resourceVersion": "string", "generation": "integer", "creationTimestamp": "time",
    "deletionTimestamp": "time", "deletionGracePeriodSeconds": "integer", "labels": "map",
    "annotations": "map", "ownerReferences": "[OwnerReference@uid]", "finalizers": "[string]",
    "managedFields": "[ManagedFieldsEntry]", "selfLink": "string"})
t("OwnerReference", "OwnerReference contains information to let you identify an owning object.", {
    "apiVersion": "string", "kind": "string", "name": "string", "uid": "string",
    "controller": "boolean", "blockOwnerDeletion": "boolean"},
  ("apiVersion", "kind", "name", "uid"))
t("ManagedFieldsEntry", "A workflow-id, a FieldSet and the group version of the resource.", {
    "manager": "string", "operation": "string", "apiVersion": "string", "time": "time",
    "fieldsType": "string", "fieldsV1": "any", "subresource": "string"})
t("LabelSelector", "A label query over a set of resources.", {
    "matchLabels": "map", "matchExpressions": "[LabelSelectorRequirement]"})
t("LabelSelectorRequirement", "A selector that contains values, a key, and an operator.", {
    "key": "string", "operator": "string", "values": "[string]"}, ("key", "operator"))
t("Condition", "Condition contains details for one aspect of the current state.", {
    "type": "string", "status": "string", "observedGeneration": "integer",
    "lastTransitionTime": "time", "lastUpdateTime": "time", "lastProbeTime": "time",
    "lastHeartbeatTime": "time", "reason": "string", "message": "string"}, ("type", "status"))

# core/v1 --------------------------------------------------------------------------------------
t("Namespace", "Namespace provides a scope for Names.", _top("NamespaceSpec", "NamespaceStatus"))
t("NamespaceSpec", "NamespaceSpec describes the attributes on a Namespace.", {"finalizers": "[string]"})
t("NamespaceStatus", "NamespaceStatus is information about the current status of a Namespace.",
  {"phase": "string", "conditions": "[Condition@type]"})
t("Node", "Node is a worker node in Kubernetes.", _top("NodeSpec", "NodeStatus"))
t("NodeSpec", "NodeSpec describes the attributes that a node is created with.", {
    "podCIDR": "string", "podCIDRs": "[string]", "providerID": "string", "unschedulable": "boolean",
    "taints": "[Taint]"})
t("Taint", "The node this Taint is attached to has the effect on any pod that does not tolerate it.",
  {"key": "string", "value": "string", "effect": "string", "timeAdded": "time"}, ("key", "effect"))
t("NodeStatus", "NodeStatus is information about the current status of a node.", {
    "capacity": "{quantity}", "allocatable": "{quantity}", "phase": "string",
    "conditions": "[Condition@type]", "addresses": "[NodeAddress@type]",
    "daemonEndpoints": "any", "nodeInfo": "any", "images": "[any]"})
t("NodeAddress", "NodeAddress contains information for the node's address.",
  {"type": "string", "address": "string"}, ("type", "address"))
t("Pod", "Pod is a collection of containers that can run on a host.", _top("PodSpec", "PodStatus"))
t("PodTemplateSpec", "PodTemplateSpec describes the data a pod should have when created from a template",
  {"metadata": "ObjectMeta", "spec": "PodSpec"})
t("PodSpec", "PodSpec is a description of a pod.", {
    "containers": "[Container@name]", "initContainers": "[Container@name]",
    "volumes": "[Volume@name]", "restartPolicy": "string", "terminationGracePeriodSeconds": "integer",
    "activeDeadlineSeconds": "integer", "dnsPolicy": "string", "nodeSelector": "map",
    "serviceAccountName": "string", "serviceAccount": "string",
    "automountServiceAccountToken": "boolean", "nodeName": "string", "hostNetwork": "boolean",
    "hostPID": "boolean", "hostIPC": "boolean", "securityContext": "any",
    "imagePullSecrets": "[LocalObjectReference@name]", "hostname": "string", "subdomain": "string",
    "affinity": "any", "schedulerName": "string", "tolerations": "[Toleration]",
    "hostAliases": "[any]", "priorityClassName": "string", "priority": "integer",
    "dnsConfig": "any", "enableServiceLinks": "boolean", "preemptionPolicy": "string",
    "topologySpreadConstraints": "[any]", "shareProcessNamespace": "boolean",
    "runtimeClassName": "string", "overhead": "{quantity}", "readinessGates": "[any]",
    "hostUsers": "boolean"},
  ("containers",))
t("Container", "A single application container that you want to run within a pod.", {
    "name": "string", "image": "string", "command": "[string]", "args": "[string]",
    "workingDir": "string", "ports": "[ContainerPort@containerPort]", "env": "[EnvVar@name]",
    "envFrom": "[any]", "resources": "ResourceRequirements", "volumeMounts": "[VolumeMount@mountPath]",
    "livenessProbe": "any", "readinessProbe": "any", "startupProbe": "any", "lifecycle": "any",
    "terminationMessagePath": "string", "terminationMessagePolicy": "string",
    "imagePullPolicy": "string", "securityContext": "any", "stdin": "boolean",
    "stdinOnce": "boolean", "tty": "boolean", "restartPolicy": "string", "resizePolicy": "[any]",
    "volumeDevices": "[any]"}, ("name",))
t("ContainerPort", "ContainerPort represents a network port in a single container.", {
    "name": "string", "containerPort": "integer", "hostPort": "integer", "protocol": "string",
    "hostIP": "string"}, ("containerPort",))
t("EnvVar", "EnvVar represents an environment variable present in a Container.",
  {"name": "string", "value": "string", "valueFrom": "any"}, ("name",))
t("ResourceRequirements", "ResourceRequirements describes the compute resource requirements.",
  {"limits": "{quantity}", "requests": "{quantity}", "claims": "[any]"})
t("VolumeMount", "VolumeMount describes a mounting of a Volume within a container.", {
    "name": "string", "mountPath": "string", "readOnly": "boolean", "subPath": "string",
    "subPathExpr": "string", "mountPropagation": "string", "recursiveReadOnly": "string"},
  ("name", "mountPath"))
t("Volume", "Volume represents a named volume in a pod.", {
    "name": "string", "emptyDir": "any", "hostPath": "any", "configMap": "any", "secret": "any",
    "projected": "any", "persistentVolumeClaim": "any", "downwardAPI": "any", "nfs": "any",
    "ephemeral": "any", "csi": "any", "image": "any"}, ("name",))
t("LocalObjectReference", "LocalObjectReference lets you locate the referenced object.", {"name": "string"})
t("Toleration", "The pod this Toleration is attached to tolerates any taint that matches.", {
    "key": "string", "operator": "string", "value": "string", "effect": "string",
    "tolerationSeconds": "integer"})
t("PodStatus", "PodStatus represents information about the status of a pod.", {
    "phase": "string", "conditions": "[Condition@type]", "message": "string", "reason": "string",
    "hostIP": "string", "hostIPs": "[any]", "podIP": "string", "podIPs": "[PodIP@ip]",
    "startTime": "time", "containerStatuses": "[any]", "initContainerStatuses": "[any]",
    "qosClass": "string", "nominatedNodeName": "string", "observedGeneration": "integer"})
t("PodIP", "PodIP represents a single IP address allocated to the pod.", {"ip": "string"})
t("Binding", "Binding ties one object to another; for example, a pod is bound to a node.",
  _top(None, None, target="ObjectReference"), ("target",))
t("Eviction", "Eviction evicts a pod from its node subject to certain policies and safety constraints.",
  _top(None, None, deleteOptions="any"))
t("ObjectReference", "ObjectReference contains enough information to inspect or modify the referred object.", {
    "kind": "string", "namespace": "string", "name": "string", "uid": "string",
    "apiVersion": "string", "resourceVersion": "string", "fieldPath": "string"})
t("Service", "Service is a named abstraction of software service.", _top("ServiceSpec", "ServiceStatus"))
t("ServiceSpec", "ServiceSpec describes the attributes that a user creates on a service.", {
    "ports": "[ServicePort@port]", "selector": "map", "clusterIP": "string",
    "clusterIPs": "[string]", "type": "string", "externalIPs": "[string]",
    "sessionAffinity": "string", "loadBalancerIP": "string", "externalName": "string",
    "externalTrafficPolicy": "string", "internalTrafficPolicy": "string",
    "ipFamilies": "[string]", "ipFamilyPolicy": "string", "publishNotReadyAddresses": "boolean",
    "healthCheckNodePort": "integer", "sessionAffinityConfig": "any",
    "allocateLoadBalancerNodePorts": "boolean", "loadBalancerClass": "string",
    "loadBalancerSourceRanges": "[string]", "trafficDistribution": "string"})
t("ServicePort", "ServicePort contains information on service's port.", {
    "name": "string", "protocol": "string", "port": "integer", "targetPort": "int-or-string",
    "nodePort": "integer", "appProtocol": "string"}, ("port",))
t("ServiceStatus", "ServiceStatus represents the current status of a service.",
  {"loadBalancer": "any", "conditions": "[Condition@type]"})
t("Endpoints", "Endpoints is a collection of endpoints that implement the actual service.",
  _top(None, None, subsets="[EndpointSubset]"))
t("EndpointSubset", "EndpointSubset is a group of addresses with a common set of ports.", {
    "addresses": "[any]", "notReadyAddresses": "[any]", "ports": "[any]"})
t("ConfigMap", "ConfigMap holds configuration data for pods to consume.",
  _top(None, None, data="map", binaryData="map", immutable="boolean"))
t("Secret", "Secret holds secret data of a certain type.",
  _top(None, None, data="map", stringData="map", type="string", immutable="boolean"))
t("ServiceAccount", "ServiceAccount binds together a name, secrets and principals.", _top(
    None, None, secrets="[ObjectReference@name]", imagePullSecrets="[LocalObjectReference]",
    automountServiceAccountToken="boolean"))
t("Event", "Event is a report of an event somewhere in the cluster.", _top(
    None, None, involvedObject="ObjectReference", reason="string", message="string",
    source="any", firstTimestamp="time", lastTimestamp="time", count="integer", type="string",
    eventTime="string", series="any", action="string", related="ObjectReference",
    reportingComponent="string", reportingInstance="string"), )
t("EventsV1Event", "Event is a report of an event somewhere in the cluster.", _top(
    None, None, eventTime="string", series="EventSeries", reportingController="string",
    reportingInstance="string", action="string", reason="string", regarding="ObjectReference",
    related="ObjectReference", note="string", type="string", deprecatedSource="any",
    deprecatedFirstTimestamp="time", deprecatedLastTimestamp="time", deprecatedCount="integer"),
  ("eventTime",))
t("EventSeries", "EventSeries contain information on series of events.",
  {"count": "integer", "lastObservedTime": "string"}, ("count", "lastObservedTime"))

# apps/v1 ---------------------------------------------------------------------------------------
t("Deployment", "Deployment enables declarative updates for Pods and ReplicaSets.",
  _top("DeploymentSpec", "DeploymentStatus"))
t("DeploymentSpec", "DeploymentSpec is the specification of the desired behavior of the Deployment.", {
    "replicas": "integer", "selector": "LabelSelector", "template": "PodTemplateSpec",
    "strategy": "any", "minReadySeconds": "integer", "revisionHistoryLimit": "integer",
    "paused": "boolean", "progressDeadlineSeconds": "integer"}, ("selector", "template"))
t("DeploymentStatus", "DeploymentStatus is the most recently observed status of the Deployment.", {
    "observedGeneration": "integer", "replicas": "integer", "updatedReplicas": "integer",
    "readyReplicas": "integer", "availableReplicas": "integer", "unavailableReplicas": "integer",
    "terminatingReplicas": "integer", "conditions": "[Condition@type]", "collisionCount": "integer"})
t("ReplicaSet", "ReplicaSet ensures that a specified number of pod replicas are running.",
  _top("ReplicaSetSpec", "ReplicaSetStatus"))
t("ReplicaSetSpec", "ReplicaSetSpec is the specification of a ReplicaSet.", {
    "replicas": "integer", "selector": "LabelSelector", "template": "PodTemplateSpec",
    "minReadySeconds": "integer"}, ("selector",))
t("ReplicaSetStatus", "ReplicaSetStatus represents the current status of a ReplicaSet.", {
    "replicas": "integer", "fullyLabeledReplicas": "integer", "readyReplicas": "integer",
    "availableReplicas": "integer", "terminatingReplicas": "integer",
    "observedGeneration": "integer", "conditions": "[Condition@type]"})
t("DaemonSet", "DaemonSet represents the configuration of a daemon set.",
  _top("DaemonSetSpec", "DaemonSetStatus"))
t("DaemonSetSpec", "DaemonSetSpec is the specification of a daemon set.", {
    "selector": "LabelSelector", "template": "PodTemplateSpec", "updateStrategy": "any",
    "minReadySeconds": "integer", "revisionHistoryLimit": "integer"}, ("selector", "template"))
t("DaemonSetStatus", "DaemonSetStatus represents the current status of a daemon set.", {
    "currentNumberScheduled": "integer", "numberMisscheduled": "integer",
    "desiredNumberScheduled": "integer", "numberReady": "integer", "observedGeneration": "integer",
    "updatedNumberScheduled": "integer", "numberAvailable": "integer",
    "numberUnavailable": "integer", "collisionCount": "integer", "conditions": "[Condition@type]"})
t("Scale", "Scale represents a scaling request for a resource.", _top("ScaleSpec", "ScaleStatus"))
t("ScaleSpec", "ScaleSpec describes the attributes of a scale subresource.", {"replicas": "integer"})
t("ScaleStatus", "ScaleStatus represents the current status of a scale subresource.",
  {"replicas": "integer", "selector": "string"})

# batch, coordination, discovery, rbac, certificates ----------------------------------------------
t("Job", "Job represents the configuration of a single job.", _top("JobSpec", "JobStatus"))
t("JobSpec", "JobSpec describes how the job execution will look like.", {
    "parallelism": "integer", "completions": "integer", "activeDeadlineSeconds": "integer",
    "backoffLimit": "integer", "selector": "LabelSelector", "manualSelector": "boolean",
    "template": "PodTemplateSpec", "ttlSecondsAfterFinished": "integer", "completionMode": "string",
    "suspend": "boolean", "podFailurePolicy": "any", "backoffLimitPerIndex": "integer",
    "maxFailedIndexes": "integer", "podReplacementPolicy": "string"}, ("template",))
t("JobStatus", "JobStatus represents the current state of a Job.", {
    "conditions": "[Condition@type]", "startTime": "time", "completionTime": "time",
    "active": "integer", "succeeded": "integer", "failed": "integer", "ready": "integer",
    "terminating": "integer", "completedIndexes": "string", "uncountedTerminatedPods": "any"})
t("Lease", "Lease defines a lease concept.", _top("LeaseSpec", None))
t("LeaseSpec", "LeaseSpec is a specification of a Lease.", {
    "holderIdentity": "string", "leaseDurationSeconds": "integer", "acquireTime": "string",
    "renewTime": "string", "leaseTransitions": "integer", "strategy": "string",
    "preferredHolder": "string"})
t("EndpointSlice", "EndpointSlice represents a subset of the endpoints that implement a service.",
  _top(None, None, addressType="string", endpoints="[any]", ports="[any]"), ("addressType",))
t("PolicyRule", "PolicyRule holds information that describes a policy rule.", {
    "verbs": "[string]", "apiGroups": "[string]", "resources": "[string]",
    "resourceNames": "[string]", "nonResourceURLs": "[string]"}, ("verbs",))
t("Role", "Role is a namespaced, logical grouping of PolicyRules.", _top(None, None, rules="[PolicyRule]"))
t("ClusterRole", "ClusterRole is a cluster level, logical grouping of PolicyRules.",
  _top(None, None, rules="[PolicyRule]", aggregationRule="any"))
t("Subject", "Subject contains a reference to the object or user identities a role binding applies to.", {
    "kind": "string", "apiGroup": "string", "name": "string", "namespace": "string"}, ("kind", "name"))
t("RoleRef", "RoleRef contains information that points to the role being used.",
  {"apiGroup": "string", "kind": "string", "name": "string"}, ("apiGroup", "kind", "name"))
t("RoleBinding", "RoleBinding references a role, but does not contain it.",
  _top(None, None, subjects="[Subject]", roleRef="RoleRef"), ("roleRef",))
t("ClusterRoleBinding", "ClusterRoleBinding references a ClusterRole, but not contain it.",
  _top(None, None, subjects="[Subject]", roleRef="RoleRef"), ("roleRef",))
t("CertificateSigningRequest", "CertificateSigningRequest objects provide a mechanism to obtain x509 "
  "certificates by submitting a certificate signing request.",
  _top("CertificateSigningRequestSpec", "CertificateSigningRequestStatus"), ("spec",))
t("CertificateSigningRequestSpec", "CertificateSigningRequestSpec contains the certificate request.", {
    "request": "string", "signerName": "string", "expirationSeconds": "integer", "usages": "[string]",
    "username": "string", "uid": "string", "groups": "[string]", "extra": "any"},
  ("request", "signerName"))
t("CertificateSigningRequestStatus", "CertificateSigningRequestStatus contains conditions and the certificate.",
  {"conditions": "[Condition@type]", "certificate": "string"})


# core/v1, storage and policy objects -------------------------------------------------------------
t("ReplicationController", "ReplicationController represents the configuration of a replication controller.",
  _top("ReplicationControllerSpec", "ReplicationControllerStatus"))
t("ReplicationControllerSpec", "ReplicationControllerSpec is the specification of a replication controller.", {
    "replicas": "integer", "minReadySeconds": "integer", "selector": "map", "template": "PodTemplateSpec"})
t("ReplicationControllerStatus", "ReplicationControllerStatus represents the current status of a replication "
  "controller.", {"replicas": "integer", "fullyLabeledReplicas": "integer", "readyReplicas": "integer",
                  "availableReplicas": "integer", "observedGeneration": "integer",
                  "conditions": "[Condition@type]"}, ("replicas",))
t("PersistentVolume", "PersistentVolume (PV) is a storage resource provisioned by an administrator.",
  _top("PersistentVolumeSpec", "PersistentVolumeStatus"))
t("PersistentVolumeSpec", "PersistentVolumeSpec is the specification of a persistent volume.", {
    "capacity": "{quantity}", "accessModes": "[string]", "claimRef": "ObjectReference",
    "persistentVolumeReclaimPolicy": "string", "storageClassName": "string", "mountOptions": "[string]",
    "volumeMode": "string", "nodeAffinity": "any", "volumeAttributesClassName": "string",
    "hostPath": "any", "local": "any", "nfs": "any", "csi": "any", "iscsi": "any", "fc": "any",
    "cephfs": "any", "rbd": "any"})
t("PersistentVolumeStatus", "PersistentVolumeStatus is the current status of a persistent volume.", {
    "phase": "string", "message": "string", "reason": "string", "lastPhaseTransitionTime": "time"})
t("PersistentVolumeClaim", "PersistentVolumeClaim is a user's request for and claim to a persistent volume",
  _top("PersistentVolumeClaimSpec", "PersistentVolumeClaimStatus"))
t("PersistentVolumeClaimSpec", "PersistentVolumeClaimSpec describes the common attributes of storage devices.", {
    "accessModes": "[string]", "selector": "LabelSelector", "resources": "VolumeResourceRequirements",
    "volumeName": "string", "storageClassName": "string", "volumeMode": "string", "dataSource": "any",
    "dataSourceRef": "any", "volumeAttributesClassName": "string"})
t("VolumeResourceRequirements", "VolumeResourceRequirements describes the storage resource requirements.",
  {"limits": "{quantity}", "requests": "{quantity}"})
t("PersistentVolumeClaimStatus", "PersistentVolumeClaimStatus is the current status of a claim.", {
    "phase": "string", "accessModes": "[string]", "capacity": "{quantity}", "conditions": "[Condition@type]",
    "allocatedResources": "{quantity}", "allocatedResourceStatuses": "map",
    "currentVolumeAttributesClassName": "string", "modifyVolumeStatus": "any"})
t("ResourceQuota", "ResourceQuota sets aggregate quota restrictions enforced per namespace",
  _top("ResourceQuotaSpec", "ResourceQuotaStatus"))
t("ResourceQuotaSpec", "ResourceQuotaSpec defines the desired hard limits to enforce for Quota.", {
    "hard": "{quantity}", "scopes": "[string]", "scopeSelector": "any"})
t("ResourceQuotaStatus", "ResourceQuotaStatus defines the enforced hard limits and observed use.", {
    "hard": "{quantity}", "used": "{quantity}"})
t("LimitRange", "LimitRange sets resource usage limits for each kind of resource in a Namespace.",
  _top("LimitRangeSpec", None))
t("LimitRangeSpec", "LimitRangeSpec defines a min/max usage limit for resources that match on kind.",
  {"limits": "[LimitRangeItem]"}, ("limits",))
t("LimitRangeItem", "LimitRangeItem defines a min/max usage limit for any resource that matches on kind.", {
    "type": "string", "max": "{quantity}", "min": "{quantity}", "default": "{quantity}",
    "defaultRequest": "{quantity}", "maxLimitRequestRatio": "{quantity}"}, ("type",))
t("PodTemplate", "PodTemplate describes a template for creating copies of a predefined pod.",
  _top(None, None, template="PodTemplateSpec"))

# apps, batch, policy, scheduling -----------------------------------------------------------------
t("StatefulSet", "StatefulSet represents a set of pods with consistent identities.",
  _top("StatefulSetSpec", "StatefulSetStatus"))
t("StatefulSetSpec", "A StatefulSetSpec is the specification of a StatefulSet.", {
    "replicas": "integer", "selector": "LabelSelector", "template": "PodTemplateSpec",
    "volumeClaimTemplates": "[PersistentVolumeClaim]", "serviceName": "string",
    "podManagementPolicy": "string", "updateStrategy": "any", "revisionHistoryLimit": "integer",
    "minReadySeconds": "integer", "persistentVolumeClaimRetentionPolicy": "any", "ordinals": "any"},
  ("selector", "template"))
t("StatefulSetStatus", "StatefulSetStatus represents the current state of a StatefulSet.", {
    "observedGeneration": "integer", "replicas": "integer", "readyReplicas": "integer",
    "currentReplicas": "integer", "updatedReplicas": "integer", "currentRevision": "string",
    "updateRevision": "string", "collisionCount": "integer", "conditions": "[Condition@type]",
    "availableReplicas": "integer"}, ("replicas",))
t("ControllerRevision", "ControllerRevision implements an immutable snapshot of state data.",
  _top(None, None, data="any", revision="integer"), ("revision",))
t("CronJob", "CronJob represents the configuration of a single cron job.", _top("CronJobSpec", "CronJobStatus"))
t("CronJobSpec", "CronJobSpec describes how the job execution will look like and when it will actually run.", {
    "schedule": "string", "timeZone": "string", "startingDeadlineSeconds": "integer",
    "concurrencyPolicy": "string", "suspend": "boolean", "jobTemplate": "JobTemplateSpec",
    "successfulJobsHistoryLimit": "integer", "failedJobsHistoryLimit": "integer"},
  ("schedule", "jobTemplate"))
t("JobTemplateSpec", "JobTemplateSpec describes the data a Job should have when created from a template",
  {"metadata": "ObjectMeta", "spec": "JobSpec"})
t("CronJobStatus", "CronJobStatus represents the current state of a cron job.", {
    "active": "[ObjectReference]", "lastScheduleTime": "time", "lastSuccessfulTime": "time"})
t("PodDisruptionBudget", "PodDisruptionBudget is an object to define the max disruption that can be caused "
  "to a collection of pods", _top("PodDisruptionBudgetSpec", "PodDisruptionBudgetStatus"))
t("PodDisruptionBudgetSpec", "PodDisruptionBudgetSpec is a description of a PodDisruptionBudget.", {
    "minAvailable": "int-or-string", "maxUnavailable": "int-or-string", "selector": "LabelSelector",
    "unhealthyPodEvictionPolicy": "string"})
t("PodDisruptionBudgetStatus", "PodDisruptionBudgetStatus represents information about the status of a "
  "PodDisruptionBudget.", {
    "observedGeneration": "integer", "disruptedPods": "map", "disruptionsAllowed": "integer",
    "currentHealthy": "integer", "desiredHealthy": "integer", "expectedPods": "integer",
    "conditions": "[Condition@type]"},
  ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"))
t("PriorityClass", "PriorityClass defines mapping from a priority class name to the priority integer value.",
  _top(None, None, value="integer", globalDefault="boolean", description="string",
       preemptionPolicy="string"), ("value",))

# networking, autoscaling, storage, apiregistration -------------------------------------------------
t("NetworkPolicy", "NetworkPolicy describes what network traffic is allowed for a set of Pods",
  _top("NetworkPolicySpec", None))
t("NetworkPolicySpec", "NetworkPolicySpec provides the specification of a NetworkPolicy", {
    "podSelector": "LabelSelector", "ingress": "[any]", "egress": "[any]", "policyTypes": "[string]"})
t("Ingress", "Ingress is a collection of rules that allow inbound connections to reach the endpoints "
  "defined by a backend.", _top("IngressSpec", "IngressStatus"))
t("IngressSpec", "IngressSpec describes the Ingress the user wishes to exist.", {
    "ingressClassName": "string", "defaultBackend": "any", "tls": "[IngressTLS]", "rules": "[IngressRule]"})
t("IngressTLS", "IngressTLS describes the transport layer security associated with an ingress.",
  {"hosts": "[string]", "secretName": "string"})
t("IngressRule", "IngressRule represents the rules mapping the paths under a specified host to the "
  "related backend services.", {"host": "string", "http": "any"})
t("IngressStatus", "IngressStatus describe the current state of the Ingress.", {"loadBalancer": "any"})
t("IngressClass", "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.",
  _top("IngressClassSpec", None))
t("IngressClassSpec", "IngressClassSpec provides information about the class of an Ingress.",
  {"controller": "string", "parameters": "any"})
t("HorizontalPodAutoscaler", "HorizontalPodAutoscaler is the configuration for a horizontal pod autoscaler.",
  _top("HorizontalPodAutoscalerSpec", "HorizontalPodAutoscalerStatus"))
t("HorizontalPodAutoscalerSpec", "HorizontalPodAutoscalerSpec describes the desired functionality of the "
  "HorizontalPodAutoscaler.", {
    "scaleTargetRef": "CrossVersionObjectReference", "minReplicas": "integer", "maxReplicas": "integer",
    "metrics": "[any]", "behavior": "any"}, ("scaleTargetRef", "maxReplicas"))
t("CrossVersionObjectReference", "CrossVersionObjectReference contains enough information to let you "
  "identify the referred resource.", {"kind": "string", "name": "string", "apiVersion": "string"},
  ("kind", "name"))
t("HorizontalPodAutoscalerStatus", "HorizontalPodAutoscalerStatus describes the current status of a "
  "horizontal pod autoscaler.", {
    "observedGeneration": "integer", "lastScaleTime": "time", "currentReplicas": "integer",
    "desiredReplicas": "integer", "currentMetrics": "[any]", "conditions": "[Condition@type]"},
  ("desiredReplicas",))
t("StorageClass", "StorageClass describes the parameters for a class of storage for which "
  "PersistentVolumes can be dynamically provisioned.", _top(
    None, None, provisioner="string", parameters="map", reclaimPolicy="string", mountOptions="[string]",
    allowVolumeExpansion="boolean", volumeBindingMode="string", allowedTopologies="[any]"),
  ("provisioner",))
t("APIService", "APIService represents a server for a particular GroupVersion.",
  _top("APIServiceSpec", "APIServiceStatus"))
t("APIServiceSpec", "APIServiceSpec contains information for locating and communicating with a server.", {
    "service": "any", "group": "string", "version": "string", "insecureSkipTLSVerify": "boolean",
    "caBundle": "string", "groupPriorityMinimum": "integer", "versionPriority": "integer"},
  ("groupPriorityMinimum", "versionPriority"))
t("APIServiceStatus", "APIServiceStatus contains derived information about an API server",
  {"conditions": "[Condition@type]"})

# reviews (never stored) -------------------------------------------------------------------------
t("TokenReview", "TokenReview attempts to authenticate a token to a known user.",
  _top("TokenReviewSpec", "any"), ("spec",))
t("TokenReviewSpec", "TokenReviewSpec is a description of the token authentication request.",
  {"token": "string", "audiences": "[string]"})
t("SelfSubjectReview", "SelfSubjectReview contains the user information that the kube-apiserver has "
  "about the user making this request.", _top(None, "any"))
t("SubjectAccessReviewSpec", "SubjectAccessReviewSpec is a description of the access request.", {
    "resourceAttributes": "any", "nonResourceAttributes": "any", "user": "string", "groups": "[string]",
    "extra": "any", "uid": "string"})
for _kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
    t(_kind, f"{_kind} checks whether or not a user or group can perform an action.",
      _top("SubjectAccessReviewSpec", "any"), ("spec",))
t("SelfSubjectAccessReview", "SelfSubjectAccessReview checks whether or the current user can perform an action.",
  _top("any", "any"), ("spec",))
t("SelfSubjectRulesReview", "SelfSubjectRulesReview enumerates the set of actions the current user can "
  "perform within a namespace.", _top("any", "any"), ("spec",))

# apiextensions ----------------------------------------------------------------------------------
t("CustomResourceDefinition", "CustomResourceDefinition represents a resource that should be exposed on the "
  "API server.  Its name MUST be in the format <.spec.name>.<.spec.group>.",
  _top("CustomResourceDefinitionSpec", "CustomResourceDefinitionStatus"), ("spec",))
t("CustomResourceDefinitionSpec", "CustomResourceDefinitionSpec describes how a user wants their resource to "
  "appear", {"group": "string", "names": "CustomResourceDefinitionNames", "scope": "string",
             "versions": "[CustomResourceDefinitionVersion@name]", "conversion": "any",
             "preserveUnknownFields": "boolean"}, ("group", "names", "scope", "versions"))
t("CustomResourceDefinitionNames", "CustomResourceDefinitionNames indicates the names to serve this "
  "CustomResourceDefinition", {"plural": "string", "singular": "string", "shortNames": "[string]",
                               "kind": "string", "listKind": "string", "categories": "[string]"},
  ("plural", "kind"))
t("CustomResourceDefinitionVersion", "CustomResourceDefinitionVersion describes a version for CRD.", {
    "name": "string", "served": "boolean", "storage": "boolean", "deprecated": "boolean",
    "deprecationWarning": "string", "schema": "any", "subresources": "any",
    "additionalPrinterColumns": "[any]", "selectableFields": "[any]"}, ("name", "served", "storage"))
t("CustomResourceDefinitionStatus", "CustomResourceDefinitionStatus indicates the state of the "
  "CustomResourceDefinition", {"conditions": "[Condition@type]", "acceptedNames": "any",
                               "storedVersions": "[string]"})

# admissionregistration --------------------------------------------------------------------------
t("MutatingWebhookConfiguration", "MutatingWebhookConfiguration describes the configuration of and admission "
  "webhook that accept or reject and may change the object.", _top(None, None, webhooks="[MutatingWebhook@name]"))
t("ValidatingWebhookConfiguration", "ValidatingWebhookConfiguration describes the configuration of and admission "
  "webhook that accept or reject and object without changing it.",
  _top(None, None, webhooks="[ValidatingWebhook@name]"))
_WEBHOOK = {"name": "string", "clientConfig": "WebhookClientConfig", "rules": "[RuleWithOperations]",
            "failurePolicy": "string", "matchPolicy": "string", "namespaceSelector": "LabelSelector",
            "objectSelector": "LabelSelector", "sideEffects": "string", "timeoutSeconds": "integer",
            "admissionReviewVersions": "[string]", "matchConditions": "[any]"}
t("MutatingWebhook", "MutatingWebhook describes an admission webhook and the resources and operations it "
  "applies to.", dict(_WEBHOOK, reinvocationPolicy="string"), ("name", "clientConfig", "sideEffects",
                                                               "admissionReviewVersions"))
t("ValidatingWebhook", "ValidatingWebhook describes an admission webhook and the resources and operations it "
  "applies to.", _WEBHOOK, ("name", "clientConfig", "sideEffects", "admissionReviewVersions"))
t("WebhookClientConfig", "WebhookClientConfig contains the information to make a TLS connection with the "
  "webhook", {"url": "string", "service": "any", "caBundle": "string"})
t("RuleWithOperations", "RuleWithOperations is a tuple of Operations and Resources.", {
    "operations": "[string]", "apiGroups": "[string]", "apiVersions": "[string]", "resources": "[string]",
    "scope": "string"})

def parse(notation: str) -> tuple[str, str, str | None]:
    """Return (shape, element, merge key): shape is scalar, ref, list, map or any."""
    if notation.startswith("["):
        inner = notation[1:-1]
        elem, _, key = inner.partition("@")
        return "list", elem, key or None
    if notation.startswith("{"):
        return "map", notation[1:-1], None
    if notation in T:
        return "ref", notation, None
    return "scalar", notation, None


def field_of(type_name: str, field: str) -> str | None:
    return T[type_name][1].get(field) if type_name in T else None
