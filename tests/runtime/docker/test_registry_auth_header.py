"""Pull and push with the credentials of Docker's `X-Registry-Auth` header, against Debian's
docker-registry demanding basic authentication (htpasswd, bcrypt), driven by docker-py and the
docker CLI.

The credentials serve their request only: the daemon saves none of them (what `docker login`
saves is tested in test_login_push.py) and never logs them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from ..images.registry_fixtures import (
    IDENTITY_TOKEN,
    TOKEN_PASSWORD,
    TOKEN_USER,
    start_registry,
    write_htpasswd,
)
from .conftest import DOCKER_CLI

RIGHT = {"username": TOKEN_USER, "password": TOKEN_PASSWORD}
WRONG = {"username": TOKEN_USER, "password": "not-the-password"}


@pytest.fixture
def basic_registry(tmp_path):
    directory = tmp_path / "registry-basic"
    os.makedirs(directory)
    registry = start_registry(str(directory), htpasswd=write_htpasswd(str(directory)))
    yield registry
    registry.stop()


def _saved_hosts(engine) -> set[str]:
    try:
        with open(os.path.join(engine.root, "auth.json")) as source:
            return set(json.load(source).get("auths", {}))
    except FileNotFoundError:
        return set()


def _last(events: list[dict]) -> dict:
    assert events, "the daemon sent no progress line"
    return events[-1]


def test_docker_py_pushes_and_pulls_with_auth_config(engine, client, basic_registry):
    ref = f"{basic_registry.host}/team/dpy-auth"
    client.images.get("busybox").tag(ref, "1")
    try:
        anonymous = list(client.api.push(ref, tag="1", stream=True, decode=True))
        assert "401 Unauthorized" in _last(anonymous).get("error", ""), anonymous
        wrong = list(client.api.push(ref, tag="1", stream=True, decode=True, auth_config=WRONG))
        assert "401" in _last(wrong).get("error", ""), wrong
        pushed = list(client.api.push(ref, tag="1", stream=True, decode=True, auth_config=RIGHT))
        assert "error" not in _last(pushed), pushed
        digest = next(event["aux"]["Digest"] for event in pushed if "aux" in event)
        client.images.remove(f"{ref}:1")

        refused = list(client.api.pull(ref, tag="1", stream=True, decode=True, auth_config=WRONG))
        assert "401" in _last(refused).get("error", ""), refused
        pulled = client.images.pull(ref, tag="1", auth_config=RIGHT)
        assert f"{ref}:1" in pulled.tags
        assert f"{ref}@{digest}" in pulled.attrs["RepoDigests"]
    finally:
        for tag in client.images.get("busybox").tags:
            if tag.startswith(ref):
                client.images.remove(tag)
    assert basic_registry.host not in _saved_hosts(engine)
    assert TOKEN_PASSWORD not in engine.log()


def test_docker_py_identity_token_is_exchanged_at_the_token_service(engine, client,
                                                                     token_registry):
    """An identitytoken (OAuth2 refresh token) is posted to the registry's token service with
    grant_type=refresh_token, as Docker does; a wrong one is refused."""
    ref = f"{token_registry.host}/team/dpy-identity"
    client.images.get("busybox").tag(ref, "1")
    try:
        wrong = list(client.api.push(ref, tag="1", stream=True, decode=True,
                                     auth_config={"identitytoken": "stolen"}))
        assert "401" in _last(wrong).get("error", ""), wrong
        pushed = list(client.api.push(ref, tag="1", stream=True, decode=True,
                                      auth_config={"identitytoken": IDENTITY_TOKEN}))
        assert "error" not in _last(pushed), pushed
        client.images.remove(f"{ref}:1")
        pulled = client.images.pull(ref, tag="1", auth_config={"identitytoken": IDENTITY_TOKEN})
        assert f"{ref}:1" in pulled.tags
    finally:
        for tag in client.images.get("busybox").tags:
            if tag.startswith(ref):
                client.images.remove(tag)
    grants = [r for r in token_registry.tokens.requests if r.get("grant_type")]
    assert grants and all(r["grant_type"] == "refresh_token" for r in grants)
    assert IDENTITY_TOKEN not in engine.log()


def test_a_header_that_is_not_base64_json_is_refused_with_a_message(engine, client):
    response = client.api._post(client.api._url("/images/create"),
                                params={"fromImage": "127.0.0.1:1/x", "tag": "1"},
                                headers={"X-Registry-Auth": "%%% not base64 %%%"})
    assert response.status_code == 400
    assert "X-Registry-Auth" in response.json()["message"]


def _cli(engine, config_dir: str, *args: str, stdin: str | None = None):
    env = {**os.environ, "DOCKER_HOST": f"unix://{engine.docker_socket}",
           "DOCKER_CONFIG": config_dir}
    return subprocess.run([DOCKER_CLI, *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False, input=stdin)


def test_docker_cli_sends_the_credentials_of_its_config_file(engine, basic_registry, tmp_path):
    """No `docker login` through this daemon: the credentials are only in the CLI's config,
    so the pushes and pulls that work prove the header is honoured."""
    host = basic_registry.host
    ref = f"{host}/team/cli-auth:1"
    bare, configured = str(tmp_path / "bare"), str(tmp_path / "configured")
    os.makedirs(bare)
    os.makedirs(configured)
    token = base64.b64encode(f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()
    with open(os.path.join(configured, "config.json"), "w") as out:
        json.dump({"auths": {host: {"auth": token}}}, out)
    assert _cli(engine, bare, "tag", "busybox", ref).returncode == 0
    try:
        refused = _cli(engine, bare, "push", ref)
        assert refused.returncode == 1 and "401" in refused.stdout + refused.stderr
        pushed = _cli(engine, configured, "push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert "digest: sha256:" in pushed.stdout
        assert _cli(engine, bare, "rmi", ref).returncode == 0
        denied = _cli(engine, bare, "pull", ref)
        assert denied.returncode == 1 and "401" in denied.stderr
        pulled = _cli(engine, configured, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
    finally:
        _cli(engine, bare, "rmi", ref)
    assert host not in _saved_hosts(engine)


def test_docker_cli_login_then_push_and_pull(engine, basic_registry, tmp_path):
    host = basic_registry.host
    ref = f"{host}/team/cli-login:1"
    config = str(tmp_path / "config")
    os.makedirs(config)
    login = _cli(engine, config, "login", "-u", TOKEN_USER, "--password-stdin", host,
                 stdin=TOKEN_PASSWORD + "\n")
    assert login.returncode == 0 and "Login Succeeded" in login.stdout, login.stderr
    assert _cli(engine, config, "tag", "busybox", ref).returncode == 0
    try:
        pushed = _cli(engine, config, "push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert _cli(engine, config, "rmi", ref).returncode == 0
        pulled = _cli(engine, config, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
    finally:
        _cli(engine, config, "rmi", ref)
    assert TOKEN_PASSWORD not in engine.log()
