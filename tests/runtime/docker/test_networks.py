"""User-defined networks through the runtime's Docker API: containers on one network reach each
other by name and alias (docker-py and the docker CLI), connect/disconnect, removal rules."""

from __future__ import annotations

import docker
import pytest

from .conftest import wait_until

SERVE = "mkdir /www; echo stored > /www/index.html; exec httpd -f -p 80 -h /www"


def test_containers_reach_each_other_by_name_and_alias(engine, client, remove_after):
    network = client.networks.create("dpy-net", labels={"app": "shop"})
    remove_after += ["dpy-store", "dpy-late"]
    try:
        client.containers.run("busybox", ["sh", "-c", SERVE], name="dpy-store", detach=True,
                              network="dpy-net",
                              networking_config={"dpy-net": client.api.create_endpoint_config(
                                  aliases=["db"])})
        fetch = "wget -qO- http://dpy-store/ && wget -qO- http://db/"
        ran = engine.cli("run", "--rm", "--network", "dpy-net", "busybox", "sh", "-c", fetch)
        assert ran.returncode == 0 and ran.stdout == "stored\nstored\n", ran.stderr
        outside = engine.cli("run", "--rm", "busybox", "grep", "-q", "dpy-store", "/etc/hosts")
        assert outside.returncode != 0
        # a running container that joins later learns the names too
        late = client.containers.run("busybox", ["sleep", "300"], name="dpy-late", detach=True)
        network.connect(late, aliases=["late"])
        wait_until(lambda: late.exec_run(["wget", "-qO-", "http://db/"]).output == b"stored\n",
                   what="the late member resolving db")
        network.reload()
        assert {c.name for c in network.containers} == {"dpy-store", "dpy-late"}
        late.reload()
        assert late.attrs["NetworkSettings"]["Networks"]["dpy-net"]["Aliases"] == ["late"]
        assert [n.name for n in client.networks.list(filters={"label": "app=shop"})] == \
            ["dpy-net"]
        with pytest.raises(docker.errors.APIError) as busy:
            network.remove()
        assert "has active endpoints" in str(busy.value)
        network.disconnect(late)
        network.reload()
        assert {c.name for c in network.containers} == {"dpy-store"}
    finally:
        for name in ("dpy-store", "dpy-late"):
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        network.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("dpy-net")


def test_cli_network_ls_and_predefined_networks(engine):
    listed = engine.cli("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert {"bridge bridge", "host host", "none null"} <= set(listed.stdout.splitlines())
    refused = engine.cli("network", "rm", "bridge")
    assert refused.returncode == 1 and "pre-defined network" in refused.stderr
    unknown = engine.cli("run", "--rm", "--network", "no-such-net", "busybox", "true")
    assert unknown.returncode != 0 and "network no-such-net not found" in unknown.stderr
