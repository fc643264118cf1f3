"""imagePullSecrets: the kubelet pulls from a registry demanding basic authentication (Debian's
docker-registry with an htpasswd file) with the credentials of the pod's pull secrets
(kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg) or its ServiceAccount's; a pod
without them is left in ErrImagePull/ImagePullBackOff with the registry's 401 in its status and
events. The runtime daemon keeps no credentials for the registry: each pull carries them."""

from __future__ import annotations

import base64
import json
import os

import pytest
from kubernetes import client as k8s

from ..runtime.images.registry_fixtures import (
    TOKEN_PASSWORD,
    TOKEN_USER,
    start_registry,
    write_htpasswd,
)
from .conftest import pod_manifest, wait_for

TAGS = ("json", "account", "none")


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory, kubelet):
    """The registry holding busybox as <host>/private/busybox:<tag>, one tag per test so each
    test's pod must pull; the runtime has none of these tags and no saved credentials."""
    directory = str(tmp_path_factory.mktemp("pull-secrets-registry"))
    registry = start_registry(directory, htpasswd=write_htpasswd(directory))
    runtime = kubelet.runtime.client
    runtime.login(registry.host, TOKEN_USER, TOKEN_PASSWORD)
    try:
        for tag in TAGS:
            ref = f"{registry.host}/private/busybox:{tag}"
            runtime.tag_image("busybox:latest", ref)
            list(runtime.push(ref))
            runtime.remove_image(ref)
    finally:
        runtime.logout(registry.host)
    yield registry
    registry.stop()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(api, namespace: str, name: str, kind: str, document: dict) -> None:
    key = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson",
           "kubernetes.io/dockercfg": ".dockercfg"}[kind]
    api.create_namespaced_secret(namespace, k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name), type=kind,
        data={key: _b64(json.dumps(document))}))


def _app(image: str) -> list[dict]:
    return [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
             "command": ["sleep", "300"]}]


def _running(api, namespace: str, name: str):
    pod = api.read_namespaced_pod(name, namespace)
    statuses = pod.status.container_statuses or []
    return statuses and statuses[0].state.running and pod


def _waiting(api, namespace: str, name: str, reasons: tuple[str, ...]):
    statuses = api.read_namespaced_pod(name, namespace).status.container_statuses or []
    waiting = statuses and statuses[0].state.waiting
    return waiting and waiting.reason in reasons and waiting


def _events(api, namespace: str, pod: str) -> list:
    return [e for e in api.list_namespaced_event(namespace).items
            if e.involved_object.name == pod]


def _never_logged(kubelet) -> None:
    assert TOKEN_PASSWORD not in kubelet.logs()
    assert TOKEN_PASSWORD not in kubelet.runtime.log.read_text(errors="replace")


def test_a_dockerconfigjson_secret_lets_the_pod_pull(api, kubelet, namespace, private_registry):
    host = private_registry.host
    image = f"{host}/private/busybox:json"
    _secret(api, namespace, "regcred", "kubernetes.io/dockerconfigjson", {"auths": {
        "other.example:5000": {"auth": _b64("mallory:nope")},
        f"http://{host}/private": {"username": TOKEN_USER, "password": TOKEN_PASSWORD,
                                   "auth": _b64(f"{TOKEN_USER}:{TOKEN_PASSWORD}")}}})
    api.create_namespaced_pod(namespace, pod_manifest(
        "json-secret", kubelet.node, _app(image), imagePullSecrets=[{"name": "regcred"}]))
    wait_for(lambda: _running(api, namespace, "json-secret"), 90,
             what="the pod Running with its pulled image")
    reasons = {e.reason for e in _events(api, namespace, "json-secret")}
    assert {"Pulling", "Pulled"} <= reasons
    _never_logged(kubelet)


def test_the_service_accounts_dockercfg_secret_is_used(api, kubelet, namespace,
                                                       private_registry):
    host = private_registry.host
    image = f"{host}/private/busybox:account"
    _secret(api, namespace, "legacy", "kubernetes.io/dockercfg",
            {host: {"auth": _b64(f"{TOKEN_USER}:{TOKEN_PASSWORD}"), "email": "a@b.c"}})
    api.create_namespaced_service_account(namespace, k8s.V1ServiceAccount(
        metadata=k8s.V1ObjectMeta(name="puller"),
        image_pull_secrets=[k8s.V1LocalObjectReference(name="legacy")]))
    api.create_namespaced_pod(namespace, pod_manifest(
        "sa-secret", kubelet.node, _app(image), serviceAccountName="puller"))
    pod = api.read_namespaced_pod("sa-secret", namespace)
    assert [ref.name for ref in pod.spec.image_pull_secrets] == ["legacy"]
    wait_for(lambda: _running(api, namespace, "sa-secret"), 90,
             what="the pod Running with the account's pull secret")
    _never_logged(kubelet)


def test_without_the_secret_the_pull_fails_with_the_registrys_401(api, kubelet, namespace,
                                                                   private_registry):
    image = f"{private_registry.host}/private/busybox:none"
    api.create_namespaced_pod(namespace, pod_manifest(
        "no-secret", kubelet.node, _app(image), imagePullSecrets=[{"name": "absent"}]))
    first = wait_for(lambda: _waiting(api, namespace, "no-secret",
                                      ("ErrImagePull", "ImagePullBackOff")), 90,
                     what="ErrImagePull")
    assert "401" in first.message and image in first.message
    wait_for(lambda: _waiting(api, namespace, "no-secret", ("ImagePullBackOff",)), 90,
             what="ImagePullBackOff")
    events = _events(api, namespace, "no-secret")
    failed = [e for e in events if e.reason == "Failed" and e.type == "Warning"]
    assert failed and "401" in failed[0].message
    assert any(e.reason == "FailedToRetrieveImagePullSecret" and "absent" in e.message
               for e in events)
    saved = os.path.join(kubelet.runtime.root, "auth.json")
    assert not os.path.exists(saved) or private_registry.host not in open(saved).read()
