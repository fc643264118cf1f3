"""Which pull-secret entries serve which image (kubelet's keyring rules), and how both secret
types are read: pure functions, no cluster."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from provisioner.components.kubelet.pullsecrets import credentials_for, entries_of


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(name: str, keys: dict[str, str], kind: str = "kubernetes.io/dockerconfigjson"):
    entries = {key: {"auth": _b64(f"{user}:pw")} for key, user in keys.items()}
    if kind == "kubernetes.io/dockerconfigjson":
        data = {".dockerconfigjson": _b64(json.dumps({"auths": entries}))}
    else:
        data = {".dockercfg": _b64(json.dumps(entries))}
    return {"metadata": {"name": name}, "type": kind, "data": data}


def _users(image: str, *secrets: dict) -> list[str]:
    by_name = {secret["metadata"]["name"]: secret for secret in secrets}
    pod = {"spec": {"imagePullSecrets": [{"name": name} for name in by_name]}}

    async def lookup(kind: str, name: str):
        return by_name.get(name)

    auths, missing = asyncio.run(credentials_for(pod, image, lookup))
    assert missing == []
    return [auth["username"] for auth in auths]


@pytest.mark.parametrize(("key", "image", "matches"), [
    ("reg.example:5000", "reg.example:5000/team/app:1", True),
    ("https://reg.example:5000/", "reg.example:5000/team/app:1", True),
    ("http://reg.example:5000/team", "reg.example:5000/team/app:1", True),
    ("reg.example:5000/other", "reg.example:5000/team/app:1", False),
    ("reg.example:5000/te", "reg.example:5000/team/app:1", False),
    ("reg.example", "reg.example:5000/team/app:1", False),          # the port must match
    ("*.example.com", "reg.example.com/app:1", True),
    ("*.example.com", "a.reg.example.com/app:1", False),          # one label per glob
    ("https://index.docker.io/v1/", "busybox:1", True),
    ("docker.io", "library/busybox", True),
    ("reg.example:5000", "busybox:1", False),
])
def test_registry_keys_match_images_as_kubelets_keyring(key, image, matches):
    assert _users(image, _secret("s", {key: "u"})) == (["u"] if matches else [])


def test_the_most_specific_key_comes_first_across_secrets_and_types():
    host = "reg.example:5000"
    users = _users(f"{host}/team/app:1",
                   _secret("wide", {host: "wide"}),
                   _secret("narrow", {f"{host}/team": "narrow"}, "kubernetes.io/dockercfg"))
    assert users == ["narrow", "wide"]


def test_other_secret_types_and_bad_contents_give_nothing():
    assert entries_of({"type": "Opaque", "data": {".dockerconfigjson": _b64("{}")}}) == {}
    assert entries_of({"type": "kubernetes.io/dockerconfigjson",
                       "data": {".dockerconfigjson": "%%%"}}) == {}
    no_password = {"type": "kubernetes.io/dockercfg",
                   "data": {".dockercfg": _b64(json.dumps({"r:1": {"username": "u"}}))}}
    assert entries_of(no_password) == {}


def test_a_missing_secret_is_reported_by_name():
    pod = {"spec": {"imagePullSecrets": [{"name": "gone"}]}}

    async def lookup(kind: str, name: str):
        return None

    assert asyncio.run(credentials_for(pod, "reg.example:5000/app:1", lookup)) == ([], ["gone"])
