"""`login` through the CLI: the daemon checks and keeps the credentials (0600, never logged),
pull and push then authenticate with them; a wrong password is one clear error; `logout`
forgets them."""

from __future__ import annotations

import os
import stat

from ..images.registry_fixtures import TOKEN_PASSWORD, TOKEN_USER


def test_push_and_pull_after_login_and_not_after_logout(daemon, token_registry):
    host = token_registry.host
    ref = f"{host}/team/box:1"
    assert daemon.cli("tag", "busybox", ref).returncode == 0
    try:
        refused = daemon.cli("push", ref)
        assert refused.returncode == 1 and "anonymous access" in refused.stderr

        wrong = daemon.cli("login", "-u", TOKEN_USER, "--password-stdin", host,
                           input="not-the-password\n")
        assert wrong.returncode == 1
        assert wrong.stderr.startswith("Error: ") and len(wrong.stderr.strip().splitlines()) == 1
        assert "check the user name and password" in wrong.stderr

        login = daemon.cli("login", "-u", TOKEN_USER, "--password-stdin", host,
                           input=TOKEN_PASSWORD + "\n")
        assert login.returncode == 0 and login.stdout == "Login Succeeded\n", login.stderr
        auth_file = os.path.join(daemon.root, "auth.json")
        assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
        assert TOKEN_PASSWORD not in daemon.log()
        assert TOKEN_PASSWORD not in daemon.cli("version").stdout

        pushed = daemon.cli("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert daemon.cli("rmi", ref).returncode == 0
        pulled = daemon.cli("pull", ref)
        assert pulled.returncode == 0 and "Digest: sha256:" in pulled.stdout, pulled.stderr

        assert daemon.cli("logout", host).stdout == f"Removing login credentials for {host}\n"
        assert daemon.cli("rmi", ref).returncode == 0
        again = daemon.cli("pull", ref)
        assert again.returncode == 1 and "anonymous access" in again.stderr
    finally:
        daemon.cli("rmi", ref)
        daemon.cli("logout", host)
