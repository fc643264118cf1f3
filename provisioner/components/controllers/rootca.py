"""The root-ca-certificate-publisher controller: `kube-root-ca.crt` in every namespace.

Pods verify the API server with it (projected service-account volumes mount it). The bundle is
--root-ca-file, else the CA of the controller manager's kubeconfig. A changed or deleted
ConfigMap is put back.
"""

from __future__ import annotations

import base64
import os

import yaml

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

NAME = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


def kubeconfig_ca(path: str) -> str:
    """The current cluster's CA (inline data or file) from a kubeconfig, as PEM text."""
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    ctx_name = doc.get("current-context", "")
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == ctx_name), {})
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or []
                    if c.get("name") == ctx.get("cluster")), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"]).decode()
    if cluster.get("certificate-authority"):
        ca = cluster["certificate-authority"]
        with open(ca if os.path.isabs(ca) else os.path.join(os.path.dirname(path), ca)) as fh:
            return fh.read()
    return ""


def desired(namespace: str, bundle: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": namespace,
                         "annotations": {"kubernetes.io/description": DESCRIPTION}},
            "data": {"ca.crt": bundle}}


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"

    def setup(self) -> None:
        opts = self.ctx.options
        if opts.root_ca_file:
            with open(opts.root_ca_file) as fh:
                self.bundle = fh.read()
        else:
            self.bundle = kubeconfig_ca(opts.kubeconfig)
        self.namespaces = self.ctx.informer("", "v1", "namespaces")
        self.configmaps = self.ctx.informer("", "v1", "configmaps")
        self.namespaces.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))
        self.configmaps.add_handler(None, lambda _o, cm: self._cm(cm), self._cm)

    def _cm(self, cm: dict) -> None:
        if cm["metadata"]["name"] == NAME:
            self.queue.add(cm["metadata"]["namespace"])

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or podutil.is_terminating(ns) or not self.bundle:
            return
        cm = self.configmaps.get(f"{key}/{NAME}")
        try:
            if cm is None:
                await self.api.create("", "v1", "configmaps", desired(key, self.bundle), key)
            elif (cm.get("data") or {}) != {"ca.crt": self.bundle} or \
                    (cm["metadata"].get("annotations") or {}).get("kubernetes.io/description") != DESCRIPTION:
                body = desired(key, self.bundle)
                body["metadata"]["annotations"] = dict(cm["metadata"].get("annotations") or {},
                                                       **body["metadata"]["annotations"])
                body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
                body["metadata"]["labels"] = cm["metadata"].get("labels")
                await self.api.replace("", "v1", "configmaps", body, key)
        except ApiStatusError as exc:
            if exc.code not in (409, 404):  # 403 is retried: RBAC may change, the namespace may go
                raise
