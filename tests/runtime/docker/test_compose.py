"""A two-service docker-compose file (Debian's docker-compose) against the runtime's Docker API:
web reaches its store by service name; `down` removes the containers and the network."""

from __future__ import annotations

import os
import shutil
import subprocess

from .conftest import wait_until

COMPOSE_FILE = """\
version: "3"
services:
  store:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo from-store > /www/index.html && exec httpd -f -p 80 -h /www"]
  web:
    image: busybox
    command: ["sh", "-c", "while true; do wget -qO- http://store/ > /tmp/got; sleep 0.2; done"]
    depends_on: [store]
"""


def test_two_services_up_reach_each_other_and_down(engine, client, tmp_path):
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is not installed (scripts/install-deps.sh installs it)"
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    env = {**os.environ, "DOCKER_HOST": f"unix://{engine.docker_socket}"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", "prtcompose", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180, check=False)

    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stderr
        names = {c.name for c in client.containers.list(
            filters={"label": "com.docker.compose.project=prtcompose"})}
        assert names == {"prtcompose_store_1", "prtcompose_web_1"}
        wait_until(lambda: run("exec", "-T", "web", "cat", "/tmp/got").stdout == "from-store\n",
                   what="web fetching from store by its service name")
    finally:
        down = run("down", "-t", "1")
    assert down.returncode == 0, down.stderr
    assert client.containers.list(all=True, filters={
        "label": "com.docker.compose.project=prtcompose"}) == []
    assert client.networks.list(names=["prtcompose_default"]) == []
