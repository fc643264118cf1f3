"""Named volumes through the runtime's Docker API: create/list/inspect/remove/prune, and
containers sharing data through a volume mounted by name (docker-py and the docker CLI)."""

from __future__ import annotations

import docker
import pytest


def test_named_volume_shared_between_containers(engine, client, remove_after):
    volume = client.volumes.create("dpy-data", labels={"purpose": "test"})
    assert volume.attrs["Driver"] == "local" and volume.attrs["Labels"] == {"purpose": "test"}
    client.containers.run("busybox", ["sh", "-c", "echo kept > /data/file"], remove=True,
                          volumes={"dpy-data": {"bind": "/data", "mode": "rw"}})
    assert client.containers.run("busybox", ["cat", "/data/file"], remove=True,
                                 volumes=["dpy-data:/data:ro"]) == b"kept\n"
    remove_after.append("dpy-vol-user")
    user = client.containers.create("busybox", ["true"], name="dpy-vol-user",
                                    volumes=["dpy-data:/data"])
    user.reload()
    assert user.attrs["Mounts"][0]["Type"] == "volume"
    assert user.attrs["Mounts"][0]["Name"] == "dpy-data"
    with pytest.raises(docker.errors.APIError) as in_use:
        volume.remove()
    assert in_use.value.status_code == 409
    assert [v.name for v in client.volumes.list(filters={"label": "purpose=test"})] == \
        ["dpy-data"]
    user.remove()
    volume.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("dpy-data")


def test_volume_made_on_use_and_pruned_by_the_cli(engine):
    ran = engine.cli("run", "--rm", "-v", "cli-auto:/store", "busybox",
                     "sh", "-c", "echo x > /store/y")
    assert ran.returncode == 0, ran.stderr
    listed = engine.cli("volume", "ls", "--format", "{{.Name}}")
    assert "cli-auto" in listed.stdout.split()
    inspected = engine.cli("volume", "inspect", "--format", "{{.Driver}}", "cli-auto")
    assert inspected.stdout.strip() == "local"
    pruned = engine.cli("volume", "prune", "--all", "--force")
    assert pruned.returncode == 0 and "cli-auto" in pruned.stdout
    assert "cli-auto" not in engine.cli("volume", "ls", "--format", "{{.Name}}").stdout.split()
    bad = engine.cli("volume", "create", "bad/name")
    assert bad.returncode == 1 and "invalid characters" in bad.stderr
