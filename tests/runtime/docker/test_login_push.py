"""docker login, push and pull through the runtime's Docker API against a registry that
demands a token (Debian's docker-registry behind the test token server)."""

from __future__ import annotations

from ..images.registry_fixtures import TOKEN_PASSWORD, TOKEN_USER


def test_cli_login_push_pull(engine, token_registry):
    host = token_registry.host
    ref = f"{host}/team/docker-api:1"
    assert engine.cli("tag", "busybox", ref).returncode == 0
    refused = engine.cli("push", ref)
    assert refused.returncode == 1
    wrong = engine.cli("login", "-u", TOKEN_USER, "--password-stdin", host,
                       input="not-the-password\n")
    assert wrong.returncode == 1 and "Error response from daemon" in wrong.stderr
    login = engine.cli("login", "-u", TOKEN_USER, "--password-stdin", host,
                       input=TOKEN_PASSWORD + "\n")
    assert login.returncode == 0 and "Login Succeeded" in login.stdout, login.stderr
    assert TOKEN_PASSWORD not in engine.log()
    pushed = engine.cli("push", ref)
    assert pushed.returncode == 0, pushed.stderr
    assert "digest: sha256:" in pushed.stdout
    assert engine.cli("rmi", ref).returncode == 0
    pulled = engine.cli("pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert engine.cli("rmi", ref).returncode == 0

