"""kubelet: static pods from staticPodPath, and the mirror pods that show them in the API.

A manifest file holds one Pod (YAML or JSON). As kubelet does, the pod is renamed
<name>-<node>, gets a UID hashed from its content and the node (so an unchanged file keeps its
UID across kubelet restarts, and an edited one makes a new pod), and the annotations
kubernetes.io/config.hash, config.source and config.seen. Its mirror pod carries
kubernetes.io/config.mirror and an ownerReference to the Node.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import os

import yaml

log = logging.getLogger("kubelet.static")
HASH = "kubernetes.io/config.hash"
SOURCE = "kubernetes.io/config.source"
SEEN = "kubernetes.io/config.seen"
MIRROR = "kubernetes.io/config.mirror"


def read_manifests(directory: str, node_name: str) -> tuple[dict[str, dict], list[str]]:
    """(uid -> pod, problems); a bad file is reported and skipped, as kubelet does."""
    pods: dict[str, dict] = {}
    problems: list[str] = []
    if not directory or not os.path.isdir(directory):
        return pods, problems
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.startswith(".") or not os.path.isfile(path):
            continue
        try:
            with open(path) as source:
                doc = yaml.safe_load(source)
            pod = from_manifest(doc, node_name, path)
        except (OSError, yaml.YAMLError, ValueError) as error:
            problems.append(f"{path}: {error}")
            continue
        pods[pod["metadata"]["uid"]] = pod
    return pods, problems


def from_manifest(doc, node_name: str, path: str) -> dict:
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        raise ValueError("a static pod manifest must hold one object of kind Pod")
    if not (doc.get("metadata") or {}).get("name"):
        raise ValueError("the pod has no metadata.name")
    if not (doc.get("spec") or {}).get("containers"):
        raise ValueError("the pod has no spec.containers")
    pod = copy.deepcopy(doc)
    meta = pod["metadata"]
    meta.setdefault("namespace", "default")
    digest = hashlib.md5(json.dumps([doc, node_name, path], sort_keys=True).encode(),
                         usedforsecurity=False).hexdigest()
    meta["name"] = f"{meta['name']}-{node_name}"
    meta["uid"] = digest
    meta["annotations"] = {**(meta.get("annotations") or {}), HASH: digest, SOURCE: "file",
                           SEEN: dt.datetime.now(dt.timezone.utc).isoformat()}
    spec = pod["spec"]
    spec["nodeName"] = node_name
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")
    pod.setdefault("apiVersion", "v1")
    return pod


def mirror_of(pod: dict, node: dict | None) -> dict:
    mirror = copy.deepcopy(pod)
    meta = mirror["metadata"]
    meta.pop("uid", None)
    meta.pop("resourceVersion", None)
    meta["annotations"][MIRROR] = pod["metadata"]["uid"]
    if node is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                    "name": node["metadata"]["name"],
                                    "uid": node["metadata"]["uid"], "controller": True}]
    mirror.pop("status", None)
    return mirror


def is_mirror(pod: dict) -> bool:
    return MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})
